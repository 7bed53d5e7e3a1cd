"""The progress marker of a sliced ingestion run, stored as JSON in ``documents.ingest_cursor``.

A cursor says where the next slice starts and what the run has done so far:

- ``sha256``, ``model``, ``chunking``: what the run is computing. A cursor whose file, embedding
  model or chunk sizes differ from this delivery's is from another run (a re-upload, a redeploy with
  new settings) and is discarded: the run starts again from nothing;
- ``position``: the format's position of the section the next slice starts in
  (:mod:`edgerag.formats.resume`; ``None``: the first section), and ``char``: where in that
  section's text the next chunk begins (the ``char_start`` of the first chunk not yet staged);
- ``offset``: where that section begins in the document's full text (chunk offsets, and the
  ``MAX_DOCUMENT_CHARS`` budget, are counted in the full text);
- ``seq``: the next chunk's seq, i.e. how many chunks are staged; ``vectors``: one past the highest
  seq any slice may have written to Vectorize (raised before each slice's upserts, so a failed run's
  cleanup knows every id to delete);
- ``timings``: milliseconds per stage summed over the slices so far; ``slices``: slices committed.

The JSON text itself is what the compare-and-set compares (:mod:`edgerag.store.staging`), so
:meth:`Cursor.dump` must be deterministic: keys sorted, no whitespace.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Cursor"]


@dataclass(frozen=True)
class Cursor:
    sha256: str
    model: str
    chunking: tuple[int, int]
    position: tuple[int, ...] | None = None
    char: int = 0
    offset: int = 0
    seq: int = 0
    vectors: int = 0
    slices: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def load(cls, text: str | None) -> Cursor | None:
        """The cursor in ``text``, or None (no run, or one this code cannot read: start again)."""
        if not text:
            return None
        try:
            data: dict[str, Any] = json.loads(text)
            position = data.get("position")
            return cls(
                sha256=str(data["sha256"]),
                model=str(data["model"]),
                chunking=(int(data["chunking"][0]), int(data["chunking"][1])),
                position=None if position is None else tuple(int(p) for p in position),
                char=int(data["char"]),
                offset=int(data["offset"]),
                seq=int(data["seq"]),
                vectors=int(data["vectors"]),
                slices=int(data["slices"]),
                timings={str(k): float(v) for k, v in dict(data["timings"]).items()},
            )
        except (ValueError, TypeError, KeyError, IndexError):
            return None

    def same_run(self, other: Cursor) -> bool:
        return (self.sha256, self.model, self.chunking) == (other.sha256, other.model, other.chunking)

    def with_vectors(self, vectors: int) -> Cursor:
        return replace(self, vectors=max(self.vectors, vectors))
