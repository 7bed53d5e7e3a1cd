"""Where the local runtime keeps its persistent state.

Every emulator persists under one directory (default ``.edgerag/state`` in the project root, or
``$EDGERAG_STATE_DIR``), one subfolder per binding kind, one file or folder per resource — keyed by the
resource's identity in the wrangler config (D1 ``database_id``, KV ``id``, R2 ``bucket_name``,
Vectorize ``index_name``, queue name), so two workers bound to the same resource share it, as they
would at the edge.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StateDir", "default_state_dir"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_state_dir(project_root: Path, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    override = env.get("EDGERAG_STATE_DIR")
    return Path(override) if override else project_root / ".edgerag" / "state"


@dataclass(frozen=True)
class StateDir:
    root: Path

    def path_for(self, kind: str, name: str, suffix: str = "") -> Path:
        """A path for resource ``name`` of binding ``kind`` (``d1``, ``kv``, ...), parents created."""
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / (_SAFE.sub("_", name) + suffix)
