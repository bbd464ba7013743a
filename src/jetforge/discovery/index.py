"""The discovery index: what reading each package directory gave, kept on disk so that a
run reads again only what changed since.

An entry holds one directory's variants (requirements parsed) or its definition error,
and the warnings reading it left, with what they were computed from: the directory's
entries (names, sizes, modification and change times, inodes), the format it was read
in, and the files its variants name elsewhere. The entry of a directory whose variants a
config script computes holds, besides, while what that script read is what it was
(:class:`~jetforge.discovery.reads.Reads`: the variables it looked up, the files it read
or imported, the directories it listed, anywhere) and the platform and the scripts' setup
are the same; so a script runs again only when its own inputs changed, whatever another
script read or wrote. A script's failure (an exception, an exit, a timeout) is an answer
like any other, kept with what the script read. An index belongs to one list of search
directories and one jetforge (the stamps of its own files), so a changed jetforge or
data file never reads an old one.

When every directory and file the last walk looked at is as it was, the walk is not
done again; when, besides, what every script read holds and the platform and the skipped
patterns are the same, the last answer is the answer: its listing (what ``list`` prints,
plain data) and its catalog, each decoded only when asked for.

The index is one stash file (:mod:`jetforge.host.stash`: plain data, private, replaced
atomically, files that have not settled left out) per list of search directories; the
values are turned into plain data and back by :mod:`jetforge.discovery.records`. One that
cannot be read, or is not this user's own, counts as empty.
"""

from __future__ import annotations

import os
import struct
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jetforge
from jetforge.discovery.reads import Reads, merged
from jetforge.host.stash import (
    FileStamp,
    dump,
    file_stamp,
    is_settled,
    key_text,
    load,
    read_stash_views,
    write_stash_parts,
)

if TYPE_CHECKING:
    from jetforge.core.catalog import Catalog
    from jetforge.discovery.records import Entry
    from jetforge.discovery.walk import PackageDir, Walk

    Stamps = tuple[tuple[str, FileStamp | None], ...]

# 2: a stash file of plain data (1 was a pickle); 3: the files scripts read; 4: what each
# script read, with its entry, and the answer's listing
FORMAT = 4
VARIABLE = "JETFORGE_NO_INDEX"


def code_stamp() -> list[Any]:
    """The stamps of jetforge's own files (code and data): an index made by another
    jetforge is never read."""
    top = os.path.dirname(jetforge.__file__)  # noqa: PTH120 - no Path objects: start-up time
    found: list[Any] = []
    for directory, subdirectories, files in os.walk(top):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("__"))
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".toml")):
                path = f"{directory}/{name}"
                found.append((path, file_stamp(path)))
    return found


class LastWalk:
    """What the last complete walk found, and the stamps that tell whether it still holds:
    every directory and file it looked at (``paths``) and, in the same order, what each
    was (``stamps``: :data:`_STAMP` per path, missing ones :data:`_MISSING`), compared as
    one run of bytes (a warm run stats every path and compares once)."""

    __slots__ = ("found", "paths", "stamps", "warnings")

    def __init__(
        self,
        found: bytes | memoryview,  # the package directories' records (a stash part): only a
        warnings: Sequence[str],  # run that reads directories decodes them
        paths: list[str],
        stamps: bytes,
    ) -> None:
        self.found = found
        self.warnings = tuple(warnings)
        self.paths = paths
        self.stamps = stamps

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LastWalk) and (
            self.found,
            self.warnings,
            self.paths,
            self.stamps,
        ) == (other.found, other.warnings, other.paths, other.stamps)

    __hash__ = None  # type: ignore[assignment]

    @property
    def directories(self) -> tuple[PackageDir, ...]:
        """The package directories the walk found, in order."""
        from jetforge.discovery.records import Decoder, decoding  # a run that reads

        decoder = Decoder()
        with decoding():
            return tuple(decoder.package_dir(record) for record in load(self.found))

    @property
    def seen(self) -> Stamps:
        """Every directory and file the walk looked at, with its stamp."""
        stamps = [None if stamp == _MISSING else stamp for stamp in _STAMP.iter_unpack(self.stamps)]
        return tuple(zip(self.paths, stamps, strict=True))

    def holds(self) -> bool:
        """Whether every directory and file the walk looked at is as it was."""
        stat, pack, missing = os.stat, _STAMP.pack, _STAMP.pack(*_MISSING)
        now = []
        for path in self.paths:
            try:
                found = stat(path)
            except OSError:
                now.append(missing)
                continue
            now.append(pack(found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino))
        return b"".join(now) == self.stamps

    def record(self) -> dict[str, Any]:
        """The walk as plain data, but what it found (a part of its own): the paths by
        directory (``[[head, [name…]]…]``, each path ``head + name``), the stamps as hex."""
        grouped: list[list[Any]] = []
        for path in self.paths:
            head, separator, name = path.rpartition("/")
            head += separator
            if not grouped or grouped[-1][0] != head:
                grouped.append([head, []])
            grouped[-1][1].append(name)
        return {"warnings": list(self.warnings), "paths": grouped, "stamps": self.stamps.hex()}

    @classmethod
    def of(cls, found: bytes, walk: Walk) -> LastWalk:
        """The last walk of ``walk``, which found ``found``."""
        paths = [path for path, _ in walk.seen]
        stamps = b"".join(_STAMP.pack(*(stamp or _MISSING)) for _, stamp in walk.seen)
        return cls(found, walk.warnings, paths, stamps)

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any] | None, found: bytes | memoryview
    ) -> LastWalk | None:
        """The walk of :meth:`record` and ``found`` (None: none)."""
        if record is None:
            return None
        paths = [str(head) + str(name) for head, names in record["paths"] for name in names]
        stamps = bytes.fromhex(record["stamps"])
        if len(stamps) != len(paths) * _STAMP.size:
            raise ValueError("walk")
        return cls(found, [str(line) for line in record["warnings"]], paths, stamps)


# A file's stamp (size, modification and change times, inode) as the walk keeps it, and
# what stands for a missing one.
_STAMP = struct.Struct("<qqqQ")
_MISSING = (-1, -1, -1, 0)


class Answer:
    """The last answer and what it holds for: its question (the key text of the formats,
    platform, skipped patterns and scripts' setup) and what its scripts read. Its listing,
    its catalog (the names lookups answer to, the problems and warnings) and each of the
    catalog's variants are stash parts, decoded when asked for."""

    __slots__ = ("_count", "_variant_parts", "catalog_part", "listing_part", "question", "reads")

    def __init__(
        self,
        question: str,
        reads: Reads,
        listing_part: bytes | memoryview,
        catalog_part: bytes | memoryview,
        variant_parts: Sequence[bytes] | memoryview,
        count: int | None = None,
    ) -> None:
        self.question = question
        self.reads = reads
        self.listing_part = listing_part
        self.catalog_part = catalog_part
        self._variant_parts = variant_parts  # as read: the parts still joined (one split)
        self._count = count

    @property
    def variant_parts(self) -> Sequence[bytes]:
        """One record part per variant of the catalog (none when the file holds another
        number of them than its head says: a damaged index, read from the tree again)."""
        if isinstance(self._variant_parts, memoryview):
            parts = bytes(self._variant_parts).split(b"\n") if self._variant_parts else []
            self._variant_parts = parts if len(parts) == self._count else []
        return self._variant_parts


# The parts of an index file (jetforge.host.stash): what a warm run reads first, then the
# sections that only some runs decode, then one part per variant of the answer's catalog.
HEAD, FOUND, LISTING, CATALOG, ENTRIES = range(5)
_NONE = b"null"


class Index:
    """The entries of one list of search directories; :meth:`open` reads it, :meth:`save`
    writes what changed. An index opened with no path holds nothing and saves nothing.

    The file's first part holds ``identity`` (the index format, Python's version, the
    search directories and the stamps of jetforge's own files), ``scripts`` (the key text
    of the platform and the scripts' setup its script entries were made for), ``walk``
    and ``answer`` (the last answer's question and what its scripts read); the next parts,
    decoded only when needed, what the walk found, the answer's listing and catalog, and
    the directory entries."""

    def __init__(self, path: Path | None, identity: str) -> None:
        self.path = path
        self.identity = identity
        self.scripts_key: str | None = None
        self.last_walk: LastWalk | None = None
        self.started = time.time_ns()
        self._entries: dict[str, Entry] | None = None
        self._parts: list[memoryview] = []  # the file's, when its identity is this index's
        self._answer: Answer | None = None
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
        # the variants' parts stay one until a run decodes the catalog (a warm list does not)
        parts = read_stash_views(self.path, ENTRIES + 1)
        if parts is None or len(parts) <= ENTRIES:
            return
        try:
            head = load(parts[HEAD])
            if head["identity"] != self.identity:
                return  # another jetforge's: an empty one
            walk = LastWalk.from_record(head["walk"], parts[FOUND])
            answer = head["answer"]
            variants = parts[ENTRIES + 1] if len(parts) > ENTRIES + 1 else memoryview(b"")
            if answer is None and variants:
                return  # a damaged index
            if answer is not None:
                answer = Answer(
                    str(answer["question"]),
                    Reads.from_record(answer["reads"]),
                    parts[LISTING],
                    parts[CATALOG],
                    variants,
                    int(answer["variants"]),
                )
            scripts = head["scripts"]
        except Exception:  # a damaged index is an empty one
            return
        self._parts, self.last_walk, self._answer = parts[: ENTRIES + 1], walk, answer
        self.scripts_key = None if scripts is None else str(scripts)

    @property
    def entries(self) -> dict[str, Entry]:
        """The directory entries (decoded when first needed)."""
        if self._entries is None:
            self._entries = {}
            if self._parts:
                from jetforge.discovery.records import Decoder, decoding, entry_from_record

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

    def answer(self, question: str, env: Mapping[str, str]) -> Answer | None:
        """The last answer when it was made for ``question`` and what its scripts read
        holds in ``env`` (the walk's holding is the caller's to check)."""
        found = self._answer
        if found is None or found.question != question or not found.reads.hold(env):
            return None
        return found

    def lookup(self, found: PackageDir, env: Mapping[str, str]) -> Entry | None:
        """The entry of ``found`` while it holds (for a script's entry: while what the
        script read holds in ``env``), else None."""
        entry = self.entries.get(str(found.path))
        if (
            entry is None
            or entry.stamp != found.stamp
            or entry.format != found.format
            or (entry.scripted and (entry.reads is None or not entry.reads.hold(env)))
            or any(file_stamp(path) != stamp for path, stamp in entry.elsewhere)
        ):
            return None
        return entry

    def keep_scripts_key(self, key: tuple[object, ...]) -> None:
        """The platform and scripts' setup of this run: script entries made for others
        are forgotten (their scripts run again)."""
        text = key_text(key)
        if text == self.scripts_key:
            return
        for path in [path for path, entry in self.entries.items() if entry.scripted]:
            self.drop(Path(path))
        self.scripts_key = text
        self._changed = True

    def put(self, path: Path, entry: Entry, written: Stamps = ()) -> bool:
        """Keep ``entry`` for ``path`` when its files have settled, apart from those its
        config script has just ``written`` (their stamps are the script's own work)."""
        if self.path is None:  # an index that keeps nothing
            return False
        own = set(written)
        stamp = tuple(item for item in entry.stamp if item not in own)
        reads = () if entry.reads is None else entry.reads.files
        if self._settled(stamp) and self._settled(entry.elsewhere) and self._settled(reads):
            self.entries[str(path)] = entry
            self._changed = True
            return True
        return False

    def drop(self, path: Path) -> None:
        """Forget ``path`` (read again, and not kept)."""
        if self.entries.pop(str(path), None) is not None:
            self._changed = True

    def forget_missing(self, present: set[str]) -> None:
        """Drop the entries of directories that are gone."""
        for path in [path for path in self.entries if path not in present]:
            self.drop(Path(path))

    def keep_walk(self, directories: Sequence[PackageDir], walk: Walk) -> bool:
        """Keep the walk for the next run when everything it saw has settled."""
        if self.path is None or not self._settled(tuple(walk.seen)):
            return False
        from jetforge.discovery.records import package_dir_record  # a run that walked

        last = LastWalk.of(dump([package_dir_record(found) for found in directories]), walk)
        if last != self.last_walk:
            self.last_walk = last
            self._changed = True
        return True

    def keep_answer(self, question: str, catalog: Catalog | None) -> None:
        """Keep ``catalog`` as the answer to ``question`` (None: keep none), with what the
        scripts of every entry read. Only a run that read from the index (or read
        everything) makes one, so it is always the newest."""
        if self.path is None:
            return
        if catalog is None:
            if self._answer is not None:
                self._answer = None
                self._changed = True
            return
        from jetforge.discovery.records import lookup_record, problem_record, variant_record

        reads = merged(entry.reads for entry in self.entries.values() if entry.reads is not None)
        listing = dump(catalog.listing().record())
        head = {
            "lookup": lookup_record(catalog),
            "problems": [problem_record(problem) for problem in catalog.problems],
            "warnings": list(catalog.warnings),
        }
        variants = [dump(variant_record(variant)) for variant in catalog.variants]
        self._answer = Answer(question, reads, listing, dump(head), variants)
        self._changed = True

    def save(self) -> None:
        """Write the index when it changed (atomically; a failure keeps the old one)."""
        if self.path is None or not self._changed:
            return
        from jetforge.discovery.records import entry_record  # a run that read

        walk, answer = self.last_walk, self._answer
        head = {
            "identity": self.identity,
            "scripts": self.scripts_key,
            "walk": None if walk is None else walk.record(),
            "answer": None
            if answer is None
            else {
                "question": answer.question,
                "reads": answer.reads.record(),
                "variants": len(answer.variant_parts),
            },
        }
        entries = {path: entry_record(entry) for path, entry in self.entries.items()}
        parts = [
            dump(head),
            _NONE if walk is None else walk.found,
            _NONE if answer is None else answer.listing_part,
            _NONE if answer is None else answer.catalog_part,
            dump(entries),
            *(() if answer is None else answer.variant_parts),
        ]
        write_stash_parts(self.path, parts)  # when it cannot: the next run reads the tree again

    def _settled(self, stamps: Stamps) -> bool:
        return all(is_settled(stamp, self.started) for _, stamp in stamps)
