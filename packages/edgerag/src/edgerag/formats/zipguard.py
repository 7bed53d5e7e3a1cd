"""Open DOCX/XLSX containers (ZIP files) without letting a zip bomb exhaust memory.

:class:`GuardedZip` refuses a container with more entries than ``MAX_ZIP_ENTRIES`` or whose members
declare more than ``MAX_ZIP_UNCOMPRESSED_BYTES`` in total, and, because declared sizes can lie, counts
the bytes it really inflates against the same budget while reading (:meth:`GuardedZip.read` and
:meth:`GuardedZip.open`). Every refusal is an :class:`~edgerag.extract.ExtractionError` naming the limit.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, cast

from edgerag.extract import ExtractionError

if TYPE_CHECKING:
    from edgerag.formats import FormatLimits

__all__ = ["GuardedZip"]

_READ = 64 * 1024


class GuardedZip:
    """A ZIP container checked against :class:`~edgerag.formats.FormatLimits` (``what``: "DOCX file")."""

    def __init__(self, data: bytes, what: str, limits: FormatLimits) -> None:
        self.what = what
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
            raise ExtractionError(f"the {what} is damaged (not a readable ZIP container): {exc}") from exc
        if len(infos) > limits.max_zip_entries:
            raise ExtractionError(
                f"the {what} has {len(infos):,} entries, more than the limit of {limits.max_zip_entries:,} "
                "(MAX_ZIP_ENTRIES)"
            )
        declared = sum(info.file_size for info in infos)
        self._budget = limits.max_zip_uncompressed_bytes
        self._used = 0
        if declared > self._budget:
            raise ExtractionError(self._too_big(declared))
        self.names = frozenset(info.filename for info in infos)

    def _too_big(self, size: int) -> str:
        return (
            f"the {self.what} expands to more than {self._budget:,} bytes (MAX_ZIP_UNCOMPRESSED_BYTES; "
            f"{size:,} so far): it looks like a zip bomb"
        )

    def read(self, name: str) -> bytes:
        """A member's bytes, counted against the budget (``KeyError`` if there is no such member)."""
        parts: list[bytes] = []
        with self.open(name) as stream:
            while chunk := stream.read(_READ):
                parts.append(chunk)
        return b"".join(parts)

    def open(self, name: str) -> IO[bytes]:
        """A member as a stream that fails once the container's budget is spent."""
        try:
            raw = self._zip.open(name)
        except KeyError:
            raise
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
            raise ExtractionError(f"the {self.what} is damaged: {name}: {exc}") from exc
        return cast(IO[bytes], io.BufferedReader(_Counted(raw, self), _READ))

    def _spend(self, count: int) -> None:
        self._used += count
        if self._used > self._budget:
            raise ExtractionError(self._too_big(self._used))


class _Counted(io.RawIOBase):
    def __init__(self, raw: IO[bytes], guard: GuardedZip) -> None:
        self._raw, self._guard = raw, guard

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(min(len(buffer), _READ))
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            raise ExtractionError(f"the {self._guard.what} is damaged: {exc}") from exc
        self._guard._spend(len(data))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()
