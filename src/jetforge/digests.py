"""Context file digests remembered between runs.

A stage key covers the digest of every file of the stage's build context, so every plan
reads and hashes every such file. A file whose stamp (size, modification and change
times, inode) is what it was when it was hashed has the same content, so its digest is
taken from here instead. As in the discovery index, a file changed within a second before
it was hashed is not remembered (a second change within the file system's time
resolution could leave its stamp as it was). The digests are one file in the cache
directory, replaced atomically; one that cannot be read counts as empty, and one that
cannot be written is left as it was (the next run hashes again: slower, never wrong).
"""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path

from jetforge.context import context_lstat, file_digest
from jetforge.discovery.walk import FileStamp, stat_stamp

SETTLED_NS = 1_000_000_000
KEPT = 50_000  # at most this many files are remembered (those used last first)


class Digests:
    """The digests kept in ``path`` (None: none kept); :meth:`digest` is the ``digest``
    of :func:`jetforge.context.read_context`, :meth:`save` writes what changed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.started = time.time_ns()
        self._known: dict[str, tuple[FileStamp, str]] = {}
        self._used: dict[str, tuple[FileStamp, str]] = {}
        self._changed = False
        if path is not None:
            try:
                known = marshal.loads(path.read_bytes())  # noqa: S302 - our own private file
                if isinstance(known, dict):
                    self._known = known
            except (OSError, ValueError, EOFError, TypeError):
                pass  # nothing kept yet, or a damaged file: an empty one

    def digest(self, file: Path) -> str | None:
        """``file``'s digest (see :func:`jetforge.context.file_digest`)."""
        info = context_lstat(file)
        stamp = stat_stamp(info)
        name = str(file)
        kept = self._known.get(name)
        if kept is not None and kept[0] == stamp:
            self._used[name] = kept
            return kept[1]
        found = file_digest(file, info)
        if found is not None and max(stamp[1], stamp[2]) < self.started - SETTLED_NS:
            self._used[name] = (stamp, found)
            self._changed = True
        return found

    def save(self) -> None:
        """Write the digests when new ones were found: those used in this run, then the
        others kept, up to :data:`KEPT`."""
        if self.path is None or not self._changed:
            return
        merged = dict(self._used)
        for name, kept in self._known.items():
            if len(merged) >= KEPT:
                break
            merged.setdefault(name, kept)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary.write_bytes(marshal.dumps(merged))
            temporary.replace(self.path)
        except OSError:
            temporary.unlink(missing_ok=True)
