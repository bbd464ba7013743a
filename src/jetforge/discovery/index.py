"""The discovery index: what reading each package directory gave, kept on disk so that a
run reads again only what changed since.

An entry holds one directory's variants (requirements parsed) or its definition error,
and the warnings reading it left, with what they were computed from: the directory's
entries (names, sizes, modification and change times, inodes), the format it was read
in, and the files its variants name elsewhere. Directories whose variants config scripts
compute are one group: their entries hold while every one of them, every Python file of
the search directories, the platform, the scripts' setup, every environment variable and
every other file or directory a script read are what they were; else every script runs
again (a script may import any file of the tree). A script's failure (an exception, an
exit, a timeout) is an answer like any other, kept with what the script read. An index
belongs to one list of search directories and one jetforge (the stamps of its own
files), so a changed jetforge or data file never reads an old one.

When every directory and file the last walk looked at is as it was, the walk is not
done again; when, besides, the scripts would see what they saw and the platform and the
skipped patterns are the same, the last catalog is the answer.

A file changed within a second before a scan is not trusted to the index (a second
change within the file system's time resolution could leave its stamp as it was). The
index is one pickle file per list of search directories, in a private directory,
replaced atomically; one that cannot be read counts as empty.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PosixPath
from typing import TYPE_CHECKING, Any

import jetforge
from jetforge.discovery.walk import FileStamp, PackageDir, Walk, file_stamp

if TYPE_CHECKING:
    from jetforge.core.catalog import Catalog
    from jetforge.core.requirement import Predicate, Requirement
    from jetforge.core.spec import PackageSpec

    Parsed = tuple[PackageSpec, tuple[Requirement, ...], tuple[Predicate, ...]]

FORMAT = 2
VARIABLE = "JETFORGE_NO_INDEX"
SETTLED_NS = 1_000_000_000  # how long a file must be unchanged before the index trusts it

Stamps = tuple[tuple[str, FileStamp | None], ...]

# What a command server (jetforge.server) read ahead of its commands: index file ->
# (its stamp, what it holds, its catalog). An index file is replaced, never rewritten in
# place, so a file with the same stamp holds the same.
_AHEAD: dict[str, tuple[FileStamp, dict[str, Any], Catalog | None]] = {}
AHEAD_FILES = 4  # index files (lists of search directories) a server keeps read ahead
# The index files this process read from the disk or wrote (for the server to read ahead).
READ_OR_WRITTEN: list[str] = []


@dataclass(frozen=True, slots=True)
class Entry:
    """What reading one package directory gave."""

    stamp: tuple[tuple[str, FileStamp | None], ...]
    format: str  # the search directory's: jc, jetforge or auto
    is_jc: bool
    elsewhere: Stamps  # files the variants name outside the directory's own entries
    parsed: tuple[Parsed, ...] = ()
    problem: tuple[str, str, int | None] | None = None
    warnings: tuple[str, ...] = ()
    scripted: bool = False


@dataclass
class Scripts:
    """The inputs of the config-script group besides its directories."""

    key: tuple[object, ...] = ()
    env: dict[str, str | None] = field(default_factory=dict)
    whole_env: bool = False  # a script looked at every variable
    files: dict[str, FileStamp | None] = field(default_factory=dict)  # files scripts read

    def holds(self, key: tuple[object, ...], env: Mapping[str, str]) -> bool:
        """Whether the scripts would see what they saw when the entries were made."""
        if key != self.key:
            return False
        if self.whole_env:
            if dict(env) != self.env:
                return False
        elif any(env.get(name) != value for name, value in self.env.items()):
            return False
        return all(file_stamp(path) == stamp for path, stamp in self.files.items())


def code_stamp() -> Stamps:
    """The stamps of jetforge's own files (code and data): an index made by another
    jetforge is never read."""
    top = Path(jetforge.__file__).parent
    found = []
    for directory, subdirectories, files in os.walk(top):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("__"))
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".toml")):
                path = f"{directory}/{name}"
                found.append((path, file_stamp(path)))
    return tuple(found)


@dataclass(frozen=True)
class LastWalk:
    """What the last complete walk found, and the stamps that tell whether it still holds."""

    found: bytes  # the package directories, pickled: only a run that reads needs them
    warnings: tuple[str, ...]
    sources: Stamps
    seen: Stamps

    @property
    def directories(self) -> tuple[PackageDir, ...]:
        """The package directories the walk found, in order."""
        found: tuple[PackageDir, ...] = pickle.loads(self.found)  # noqa: S301 - ours
        return found

    def holds(self) -> bool:
        """Whether every directory and file the walk looked at is as it was."""
        return all(file_stamp(path) == stamp for path, stamp in self.seen)


class _Pickler(pickle.Pickler):
    """Keeps paths as one string each: unpickled, a path parses once, not part by part
    (thousands of them are most of the time a warm run takes)."""

    def reducer_override(self, obj: object) -> Any:
        if type(obj) is PosixPath:
            return PosixPath, (str(obj),)
        return NotImplemented


def _dumps(value: object) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return out.getvalue()


class Index:
    """The entries of one list of search directories; :meth:`open` reads it, :meth:`save`
    writes what changed. An index opened with no path holds nothing and saves nothing."""

    def __init__(self, path: Path | None, identity: tuple[object, ...]) -> None:
        self.path = path
        self.identity = identity
        self.scripts = Scripts()
        self.last_walk: LastWalk | None = None
        self.started = time.time_ns()
        self._entries: dict[str, Entry] | None = None
        self._kept: dict[str, Any] = {}
        self._catalog: Catalog | None = None  # the kept catalog, read ahead
        self._changed = False

    @classmethod
    def open(cls, directory: Path | None, roots: Sequence[tuple[str, str]]) -> Index:
        """The index of ``roots`` (paths and formats) under ``directory`` (None: none)."""
        identity = (FORMAT, sys.version_info[:2], tuple(roots), code_stamp())
        if directory is None:
            return cls(None, identity)
        name = f"{zlib.crc32(repr(tuple(roots)).encode()):08x}"  # the identity tells apart
        index = cls(directory / f"{name}.pickle", identity)
        index._load()
        return index

    def _load(self) -> None:
        assert self.path is not None
        ahead = _AHEAD.get(str(self.path))
        if ahead is not None and ahead[0] == file_stamp(self.path):
            kept, self._catalog = ahead[1], ahead[2]
            if kept["identity"] == self.identity:
                self._kept, self.scripts, self.last_walk = kept, kept["scripts"], kept["walk"]
            return
        try:
            kept = pickle.loads(self.path.read_bytes())  # noqa: S301 - our own private file
            READ_OR_WRITTEN.append(str(self.path))
            if kept["identity"] == self.identity:
                self._kept = kept
                self.scripts = kept["scripts"]
                self.last_walk = kept["walk"]
        except FileNotFoundError:
            return
        except Exception:  # a damaged or foreign index is an empty one
            self._kept, self.scripts, self.last_walk = {}, Scripts(), None

    @property
    def entries(self) -> dict[str, Entry]:
        """The directory entries (read from the file when first needed)."""
        if self._entries is None:
            self._entries = {}
            if "entries" in self._kept:
                try:
                    self._entries = pickle.loads(self._kept["entries"])  # noqa: S301 - ours
                except Exception:  # a damaged index is an empty one
                    self._entries = {}
        return self._entries

    @property
    def is_empty(self) -> bool:
        """Whether nothing was found (a first run: every directory will be read)."""
        return "entries" not in self._kept

    def catalog(self, key: tuple[object, ...]) -> Catalog | None:
        """The last catalog when it was made for ``key``."""
        kept = self._kept.get("catalog")
        if kept is None or kept[0] != key:
            return None
        if self._catalog is not None:
            return self._catalog
        try:
            catalog: Catalog = pickle.loads(kept[1])  # noqa: S301 - our own private file
        except Exception:  # a damaged index is an empty one
            return None
        return catalog

    def lookup(self, found: PackageDir, scripts_hold: bool) -> Entry | None:
        """The entry of ``found`` while it holds, else None."""
        entry = self.entries.get(str(found.path))
        if (
            entry is None
            or entry.stamp != found.stamp
            or entry.format != found.format
            or (entry.scripted and not scripts_hold)
            or any(file_stamp(path) != stamp for path, stamp in entry.elsewhere)
        ):
            return None
        return entry

    def scripts_hold(
        self, key: tuple[object, ...], env: Mapping[str, str], found: Sequence[PackageDir]
    ) -> bool:
        """Whether every script result of the index holds: same inputs, and every script
        directory still there as it was."""
        if not self.scripts.holds(key, env):
            return False
        stamps = {str(directory.path): directory for directory in found}
        for path, entry in self.entries.items():
            if entry.scripted:
                now = stamps.get(path)
                if now is None or now.stamp != entry.stamp or now.format != entry.format:
                    return False
        return True

    def put(self, path: Path, entry: Entry, written: Stamps = ()) -> bool:
        """Keep ``entry`` for ``path`` when its files have settled, apart from those its
        config script has just ``written`` (their stamps are the script's own work)."""
        if self.path is None:  # an index that keeps nothing
            return False
        own = set(written)
        stamp = tuple(item for item in entry.stamp if item not in own)
        if self._settled(stamp) and self._settled(entry.elsewhere):
            self.entries[str(path)] = entry
            self._changed = True
            return True
        return False

    def drop(self, path: Path) -> None:
        """Forget ``path`` (read again, and not kept)."""
        if self.entries.pop(str(path), None) is not None:
            self._changed = True

    def keep_scripts(
        self,
        key: tuple[object, ...],
        sources: Stamps,
        reads: Mapping[str, str | None],
        whole_env: Mapping[str, str] | None,
        files: Mapping[str, FileStamp | None],
        *,
        merge: bool,
    ) -> None:
        """Record what the scripts of this run saw (with ``merge``, besides what the kept
        script entries saw: a file keeps the stamp it had when first read); unsettled
        Python files, or files scripts read, keep nothing."""
        if not self._settled(sources) or not self._settled(tuple(files.items())):
            key = ("unsettled",)
        env = dict(self.scripts.env) if merge else {}
        env.update(reads)
        kept = dict(self.scripts.files) if merge else {}
        for path, stamp in files.items():
            kept.setdefault(path, stamp)
        scripts = Scripts(key, env, self.scripts.whole_env and merge, kept)
        if whole_env is not None:
            scripts = dataclasses.replace(scripts, env=dict(whole_env), whole_env=True)
        if scripts != self.scripts:
            self.scripts = scripts
            self._changed = True

    def forget_missing(self, present: set[str]) -> None:
        """Drop the entries of directories that are gone."""
        for path in [path for path in self.entries if path not in present]:
            self.drop(Path(path))

    def keep_walk(self, directories: Sequence[PackageDir], walk: Walk) -> bool:
        """Keep the walk for the next run when everything it saw has settled."""
        if self.path is None or not self._settled(tuple(walk.seen)):
            return False
        last = LastWalk(
            _dumps(tuple(directories)), tuple(walk.warnings), tuple(walk.sources), tuple(walk.seen)
        )
        if last != self.last_walk:
            self.last_walk = last
            self._changed = True
        return True

    def keep_catalog(self, key: tuple[object, ...], catalog: Catalog | None) -> None:
        """Keep ``catalog`` as the answer for ``key`` (None: keep none). Only a run that
        read from the index (or read everything) makes one, so it is always the newest."""
        self._catalog = None
        if self.path is None:
            return
        if catalog is None:
            if self._kept.pop("catalog", None) is not None:
                self._changed = True
            return
        self._kept["catalog"] = (key, _dumps(catalog))
        self._changed = True

    def save(self) -> None:
        """Write the index when it changed (atomically; a failure keeps the old one)."""
        if self.path is None or not self._changed:
            return
        data = {
            "identity": self.identity,
            "scripts": self.scripts,
            "walk": self.last_walk,
            "catalog": self._kept.get("catalog"),
            "entries": _dumps(self.entries),
        }
        import tempfile  # here, not at the top: start-up time

        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(data)
                Path(temporary).replace(self.path)
                READ_OR_WRITTEN.append(str(self.path))
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            return  # the next run reads the tree again: slower, never wrong

    def _settled(self, stamps: Stamps) -> bool:
        limit = self.started - SETTLED_NS
        return all(stamp is None or stamp[2] < limit for _, stamp in stamps)


def read_ahead(path: str) -> None:
    """Read the index file ``path`` and its catalog into this process's memory, for the
    commands it will fork (a command server does so between commands)."""
    stamp = file_stamp(path)  # first: what is read is at least as new as the stamp says
    if stamp is None:
        _AHEAD.pop(path, None)
        return
    if path in _AHEAD and _AHEAD[path][0] == stamp:
        return
    _AHEAD.pop(path, None)
    try:
        kept = pickle.loads(Path(path).read_bytes())  # noqa: S301 - our own private file
        catalog = kept.get("catalog")
        _AHEAD[path] = (stamp, kept, None if catalog is None else pickle.loads(catalog[1]))  # noqa: S301
    except Exception:  # noqa: S110 - a damaged or vanished index: the commands read it
        pass
    while len(_AHEAD) > AHEAD_FILES:  # the least recently read go first
        del _AHEAD[next(iter(_AHEAD))]
