"""Context file digests remembered between runs.

A stage key covers the digest of every file of the stage's build context, so every plan
reads and hashes every such file. A file whose stamp (size, modification and change
times, inode) is what it was when it was hashed has the same content, so its digest is
taken from here instead. The digests are one stash file (:mod:`jetforge.host.stash`: plain
data, private, replaced atomically; a file that had not settled when it was hashed is not
remembered, so an edit is never missed); one that cannot be read counts as empty, and
one that cannot be written is left as it was (the next run hashes again: slower, never
wrong).
"""

from __future__ import annotations

import time
from pathlib import Path

from jetforge.host.context import context_lstat, file_digest
from jetforge.host.stash import is_settled, read_stash, stat_stamp, write_stash

KEPT = 50_000  # at most this many files are remembered (those used last first)


class Digests:
    """The digests kept in ``path`` (None: none kept); :meth:`digest` is the ``digest``
    of :func:`jetforge.host.context.read_context`, :meth:`save` writes what changed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.started = time.time_ns()
        # file -> [stamp (four numbers), digest], as the stash file holds them
        self._known: dict[str, list[object]] = {}
        self._used: dict[str, list[object]] = {}
        self._changed = False
        known = read_stash(path)
        if isinstance(known, dict):  # else nothing kept yet, or damaged: an empty one
            self._known = known

    def digest(self, file: Path) -> str | None:
        """``file``'s digest (see :func:`jetforge.host.context.file_digest`)."""
        info = context_lstat(file)
        stamp = list(stat_stamp(info))
        name = str(file)
        kept = self._known.get(name)
        if isinstance(kept, list) and len(kept) == 2 and kept[0] == stamp:
            digest = kept[1]
            if isinstance(digest, str):
                self._used[name] = kept
                return digest
        found = file_digest(file, info)
        if found is not None and is_settled(stamp, self.started):
            self._used[name] = [stamp, found]
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
        write_stash(self.path, merged)
