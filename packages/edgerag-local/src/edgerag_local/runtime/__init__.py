"""The local host that runs the workers on the emulated bindings: wrangler configs (:mod:`.config`), the
``env`` each worker gets (:mod:`.env`), the HTTP host and consumers (:mod:`.host`, :mod:`.consumers`),
cron (:mod:`.cron`), the state directory (:mod:`.state`), opening a stack (:mod:`.stack`,
:mod:`.threaded`), worker bundles (:mod:`.bundle`) and the demo tenant (:mod:`.demo`)."""
