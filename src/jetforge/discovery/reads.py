"""What config scripts read (:class:`Reads`), and whether it still is what it was.

The script worker notes what each directory's scripts read as they read it
(:mod:`jetforge.discovery.audit`); the discovery index keeps it with the directory's entry,
so that a script runs again only when what it read changed, whatever the other scripts
read. The index's last answer holds while what every script read holds (:func:`merged`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jetforge.host.stash import FileStamp, file_stamp, key_text

Stamps = tuple[tuple[str, FileStamp | None], ...]


@dataclass(frozen=True, slots=True)
class Reads:
    """What one directory's config scripts read besides the directory's own entries: each
    variable they looked up with its value then (None: unset), a digest of the whole
    environment when they looked at all of it (:func:`env_digest`), and the stamps of the
    files they read and directories they listed (None: missing, as when an import looked
    for a file that is not there)."""

    env: tuple[tuple[str, str | None], ...] = ()
    whole_env: str | None = None
    files: Stamps = ()

    def hold(self, env: Mapping[str, str]) -> bool:
        """Whether the scripts would read what they read, in ``env``."""
        if any(env.get(name) != value for name, value in self.env):
            return False
        if self.whole_env is not None and env_digest(env) != self.whole_env:
            return False
        return all(file_stamp(path) == stamp for path, stamp in self.files)

    def record(self) -> dict[str, Any]:
        """The reads as plain data."""
        return {
            "env": [[name, value] for name, value in self.env],
            "whole_env": self.whole_env,
            "files": [[path, None if stamp is None else list(stamp)] for path, stamp in self.files],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Reads:
        """The reads of :meth:`record` (a stamp that is not four numbers equals no file's:
        what it stands for is read again)."""
        env = tuple(
            (str(name), None if value is None else str(value)) for name, value in record["env"]
        )
        whole = record["whole_env"]
        files = tuple(
            (str(path), None if stamp is None else tuple(stamp)) for path, stamp in record["files"]
        )
        return cls(env, None if whole is None else str(whole), files)


def env_digest(env: Mapping[str, str]) -> str:
    """A digest of every variable of ``env``: a script that looked at all of them (or
    started a program, which got them) holds while none changes."""
    import hashlib  # here, not at the top: only such scripts need it

    return hashlib.sha256(key_text(sorted(env.items())).encode()).hexdigest()


def merged(every: Iterable[Reads]) -> Reads:
    """What a set of scripts read, together: it holds when each one's reads hold."""
    env: dict[str, str | None] = {}
    whole: str | None = None
    files: dict[tuple[str, FileStamp | None], None] = {}
    for reads in every:
        env.update(reads.env)
        whole = reads.whole_env or whole
        files.update(dict.fromkeys(reads.files))
    return Reads(tuple(sorted(env.items())), whole, tuple(files))
