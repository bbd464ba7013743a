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

The index is one stash file (:mod:`jetforge.host.stash`: plain data, private, replaced
atomically, files that have not settled left out) per list of search directories; the
values are turned into plain data and back by :mod:`jetforge.discovery.records`. One that
cannot be read, or is not this user's own, counts as empty.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jetforge
from jetforge.discovery.records import (
    Decoder,
    Entry,
    Stamps,
    catalog_record,
    decoding,
    entry_from_record,
    entry_record,
    package_dir_record,
    stamps_from_record,
    stamps_record,
)
from jetforge.discovery.walk import PackageDir, Walk
from jetforge.host.stash import (
    FileStamp,
    dump,
    file_stamp,
    is_settled,
    key_text,
    load,
    read_stash_parts,
    write_stash_parts,
)

if TYPE_CHECKING:
    from jetforge.core.catalog import Catalog

FORMAT = 3  # 2: a stash file of plain data (1 was a pickle); 3: the files scripts read
VARIABLE = "JETFORGE_NO_INDEX"


@dataclass
class Scripts:
    """The inputs of the config-script group besides its directories: ``key`` is the
    text (:func:`jetforge.host.stash.key_text`) of the Python files' stamps, the platform and
    the scripts' setup."""

    key: str = ""
    env: dict[str, str | None] = field(default_factory=dict)
    whole_env: bool = False  # a script looked at every variable
    files: dict[str, FileStamp | None] = field(default_factory=dict)  # files scripts read

    def holds(self, key: tuple[object, ...], env: Mapping[str, str]) -> bool:
        """Whether the scripts would see what they saw when the entries were made."""
        if key_text(key) != self.key:
            return False
        if self.whole_env:
            if dict(env) != self.env:
                return False
        elif any(env.get(name) != value for name, value in self.env.items()):
            return False
        return all(file_stamp(path) == stamp for path, stamp in self.files.items())

    def record(self) -> dict[str, Any]:
        """The inputs as plain data."""
        files = stamps_record(tuple(self.files.items()))
        return {"key": self.key, "env": self.env, "whole_env": self.whole_env, "files": files}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Scripts:
        """The inputs of :meth:`record`."""
        env = record["env"]
        if not isinstance(env, dict):
            raise TypeError("env")
        files = dict(stamps_from_record(record["files"]))
        return cls(str(record["key"]), dict(env), bool(record["whole_env"]), files)


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


@dataclass(frozen=True, slots=True)
class LastWalk:
    """What the last complete walk found, and the stamps that tell whether it still holds."""

    found: bytes  # the package directories' records (a stash part): only a run that reads
    warnings: tuple[str, ...]  # needs them
    sources: Stamps
    seen: Stamps

    @property
    def directories(self) -> tuple[PackageDir, ...]:
        """The package directories the walk found, in order."""
        decoder = Decoder()
        with decoding():
            return tuple(decoder.package_dir(record) for record in load(self.found))

    def holds(self) -> bool:
        """Whether every directory and file the walk looked at is as it was."""
        return all(file_stamp(path) == stamp for path, stamp in self.seen)

    def record(self) -> dict[str, Any]:
        """The walk as plain data, but what it found (a part of its own)."""
        return {
            "warnings": list(self.warnings),
            "sources": stamps_record(self.sources),
            "seen": stamps_record(self.seen),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None, found: bytes) -> LastWalk | None:
        """The walk of :meth:`record` and ``found`` (None: none)."""
        if record is None:
            return None
        return cls(
            found,
            tuple(record["warnings"]),
            stamps_from_record(record["sources"]),
            stamps_from_record(record["seen"]),
        )


# The parts of an index file (jetforge.host.stash): what a warm run reads first, then the
# sections that only some runs decode.
HEAD, FOUND, CATALOG, ENTRIES = range(4)
_NONE = b"null"


class Index:
    """The entries of one list of search directories; :meth:`open` reads it, :meth:`save`
    writes what changed. An index opened with no path holds nothing and saves nothing.

    The file's first part holds ``identity`` (the index format, Python's version, the
    search directories and the stamps of jetforge's own files), ``scripts``, ``walk`` and
    the question (``catalog``) the last catalog answers; the next parts, decoded only when
    needed, what the walk found, that catalog and the directory entries."""

    def __init__(self, path: Path | None, identity: str) -> None:
        self.path = path
        self.identity = identity
        self.scripts = Scripts()
        self.last_walk: LastWalk | None = None
        self.started = time.time_ns()
        self._entries: dict[str, Entry] | None = None
        self._parts: list[bytes] = []  # the file's, when its identity is this index's
        self._answer: tuple[str, bytes] | None = None  # the last catalog's question and part
        self._changed = False

    @classmethod
    def open(cls, directory: Path | None, roots: Sequence[tuple[str, str]]) -> Index:
        """The index of ``roots`` (paths and formats) under ``directory`` (None: none)."""
        identity = key_text([FORMAT, sys.version_info[:2], roots, code_stamp()])
        if directory is None:
            return cls(None, identity)
        name = f"{zlib.crc32(repr(tuple(roots)).encode()):08x}"  # the identity tells apart
        index = cls(directory / f"{name}.json", identity)
        index._load()
        return index

    def _load(self) -> None:
        assert self.path is not None
        parts = read_stash_parts(self.path)
        if parts is None:
            return
        read = _Read.of(parts, self.identity)
        if read is None or read.identity != self.identity:
            return  # a damaged index, or another jetforge's: an empty one
        self._parts, self.scripts, self.last_walk = read.parts, read.scripts(), read.walk
        self._answer = read.answer

    @property
    def entries(self) -> dict[str, Entry]:
        """The directory entries (decoded when first needed)."""
        if self._entries is None:
            self._entries = {}
            if self._parts:
                try:
                    decoder = Decoder()
                    with decoding():
                        self._entries = {
                            str(path): entry_from_record(record, decoder)
                            for path, record in load(self._parts[ENTRIES]).items()
                        }
                except Exception:  # a damaged index is an empty one
                    self._entries = {}
        return self._entries

    @property
    def is_empty(self) -> bool:
        """Whether nothing was found (a first run: every directory will be read)."""
        return not self._parts

    def catalog(self, key: tuple[object, ...]) -> Catalog | None:
        """The last catalog when it was made for ``key``."""
        if self._answer is None or self._answer[0] != key_text(key):
            return None
        return _decode_catalog(self._answer[1])

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
        settled = self._settled(sources) and self._settled(tuple(files.items()))
        text = key_text(key) if settled else "unsettled"
        env = dict(self.scripts.env) if merge else {}
        env.update(reads)
        kept = dict(self.scripts.files) if merge else {}
        for path, stamp in files.items():
            kept.setdefault(path, stamp)
        scripts = Scripts(text, env, self.scripts.whole_env and merge, kept)
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
            dump([package_dir_record(found) for found in directories]),
            tuple(walk.warnings),
            tuple(walk.sources),
            tuple(walk.seen),
        )
        if last != self.last_walk:
            self.last_walk = last
            self._changed = True
        return True

    def keep_catalog(self, key: tuple[object, ...], catalog: Catalog | None) -> None:
        """Keep ``catalog`` as the answer for ``key`` (None: keep none). Only a run that
        read from the index (or read everything) makes one, so it is always the newest."""
        if self.path is None:
            return
        if catalog is None:
            if self._answer is not None:
                self._answer = None
                self._changed = True
            return
        self._answer = (key_text(key), dump(catalog_record(catalog)))
        self._changed = True

    def save(self) -> None:
        """Write the index when it changed (atomically; a failure keeps the old one)."""
        if self.path is None or not self._changed:
            return
        walk = self.last_walk
        head = {
            "identity": self.identity,
            "scripts": self.scripts.record(),
            "walk": None if walk is None else walk.record(),
            "catalog": None if self._answer is None else self._answer[0],
        }
        entries = {path: entry_record(entry) for path, entry in self.entries.items()}
        parts = [
            dump(head),
            _NONE if walk is None else walk.found,
            _NONE if self._answer is None else self._answer[1],
            dump(entries),
        ]
        write_stash_parts(self.path, parts)  # when it cannot: the next run reads the tree again

    def _settled(self, stamps: Stamps) -> bool:
        return all(is_settled(stamp, self.started) for _, stamp in stamps)


@dataclass(frozen=True, slots=True)
class _Read:
    """An index file as read: its parts and what its first part holds (the walk decoded
    only for the index it belongs to: ``identity``)."""

    parts: list[bytes]
    identity: str
    scripts_record: Mapping[str, Any]
    walk: LastWalk | None
    answer: tuple[str, bytes] | None  # the last catalog's question and part

    @classmethod
    def of(cls, parts: list[bytes], identity: str) -> _Read | None:
        """The file of ``parts`` (its walk decoded when it belongs to ``identity``); None
        when it is damaged."""
        try:
            with decoding():
                head = load(parts[HEAD]) if len(parts) == ENTRIES + 1 else None
                if not isinstance(head, dict):
                    return None
                found = str(head["identity"])
                scripts = head["scripts"]
                Scripts.from_record(scripts)  # checked here, made per command
                walk = None
                if identity == found:
                    walk = LastWalk.from_record(head["walk"], parts[FOUND])
                question = head["catalog"]
                answer = None
                if question is not None and parts[CATALOG] != _NONE:
                    answer = (str(question), parts[CATALOG])
        except Exception:  # a damaged index is an empty one
            return None
        return cls(parts, found, scripts, walk, answer)

    def scripts(self) -> Scripts:
        """The scripts' inputs (a value of its own: an index changes its scripts)."""
        return Scripts.from_record(self.scripts_record)


def _decode_catalog(part: bytes) -> Catalog | None:
    """The catalog of an index's catalog part; None when it does not decode."""
    try:
        with decoding():
            return Decoder().catalog(load(part))
    except Exception:  # a damaged index is an empty one
        return None
