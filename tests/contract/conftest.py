"""Shared by every contract suite in this folder.

Each suite defines its own binding fixture parametrised over ``BACKENDS``. Today only ``"local"``
(the emulators in ``edgerag_local``, built on ``tmp_path``) can run; ``"workerd"`` would proxy the same
calls to real bindings through a deployed test worker, which needs a network this machine lacks.
"""

BACKENDS = ["local"]  # "workerd" would proxy the same calls to real bindings in a deployed test worker
