"""The discovery index's values as plain data, and back.

The index (:mod:`jetforge.discovery.index`) keeps its directory entries (:class:`Entry`:
specs, requirements, predicates), catalogs (variants) and package directories in a stash
file (:mod:`jetforge.host.stash`), which holds only plain data. The ``*_record`` functions
turn each value into lists, objects, strings, numbers, booleans and null; a
:class:`Decoder` turns records back into the values, making each path, specifier and
version once (a warm ``list`` of a large tree decodes thousands of them). A record that
does not decode raises (the index then counts as empty); nothing in a record is ever
run.

The specs, requirements and variants are made as :mod:`pickle` and :mod:`copy` make
dataclass instances, by filling the instance's fields without calling ``__init__``: a
frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which
takes about half the time of a warm ``list``'s decoding. Their classes have no
``__post_init__`` (a test checks), and every field is filled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from jetforge.core.catalog import Catalog, Variant
from jetforge.core.names import base_name
from jetforge.core.requirement import Predicate, Requirement
from jetforge.core.spec import PackageSpec
from jetforge.discovery.reads import Reads
from jetforge.discovery.walk import PackageDir
from jetforge.errors import DefinitionError
from jetforge.host.stash import FileStamp, load

Parsed = tuple[PackageSpec, tuple[Requirement, ...], tuple[Predicate, ...]]
Stamps = tuple[tuple[str, FileStamp | None], ...]

_SPEC_FIELDS = dataclasses.fields(PackageSpec)
# A spec's record leaves out the fields that have their default (most of them).
_DEFAULTS = {f.name: f.default for f in _SPEC_FIELDS if f.default is not dataclasses.MISSING}
_PATHS = frozenset({"path", "source"})
_PAIRS = "build_args"
_TUPLES = tuple(name for name, default in _DEFAULTS.items() if default == ())
_new = object.__new__
_fill = object.__setattr__  # _fill(instance, "__dict__", fields): every field at once


def spec_record(spec: PackageSpec) -> dict[str, Any]:
    """``spec`` as an object of its fields that differ from their defaults."""
    record: dict[str, Any] = {}
    for item in _SPEC_FIELDS:
        value = getattr(spec, item.name)
        if item.name in _DEFAULTS and value == _DEFAULTS[item.name]:
            continue
        if item.name in _PATHS:
            value = str(value)
        elif item.name == _PAIRS:
            value = [[name, text] for name, text in value]
        elif isinstance(value, tuple):
            value = list(value)
        record[item.name] = value
    return record


def requirement_record(requirement: Requirement) -> list[Any]:
    """``[name, tag, specifier or null, text]``."""
    specifier = None if requirement.specifier is None else str(requirement.specifier)
    return [requirement.name, requirement.tag, specifier, requirement.text]


def predicate_record(predicate: Predicate) -> list[Any]:
    """``[kind, text, specifier or null, word, negate, L4T off Jetson or null]``."""
    specifier = None if predicate.specifier is None else str(predicate.specifier)
    off = None if predicate.l4t_off_jetson is None else str(predicate.l4t_off_jetson)
    return [predicate.kind, predicate.text, specifier, predicate.word, predicate.negate, off]


def parsed_record(parsed: Parsed) -> list[Any]:
    """A spec with its parsed requirements: ``[spec, [requirement…], [predicate…]]``."""
    spec, depends, requires = parsed
    return [
        spec_record(spec),
        [requirement_record(item) for item in depends],
        [predicate_record(item) for item in requires],
    ]


def variant_record(variant: Variant) -> list[Any]:
    """``[spec, [requirement…], [predicate…], unavailable, layered]``."""
    return [
        *parsed_record((variant.spec, variant.depends, variant.requires)),
        variant.unavailable,
        variant.layered,
    ]


def problem_record(problem: DefinitionError) -> list[Any]:
    """``[path, problem, line or null]``."""
    return [str(problem.path), problem.problem, problem.line]


def catalog_record(catalog: Catalog) -> dict[str, Any]:
    """``{"variants": […], "problems": […], "warnings": […]}``."""
    return {
        "variants": [variant_record(variant) for variant in catalog.variants],
        "problems": [problem_record(problem) for problem in catalog.problems],
        "warnings": list(catalog.warnings),
    }


def lookup_record(catalog: Catalog) -> dict[str, list[int]]:
    """Each name the catalog's lookups answer to (a variant name, a base name, an alias
    and its base name), with the positions of its variants, in discovery order."""
    lookup: dict[str, list[int]] = {}
    for number, variant in enumerate(catalog.variants):
        alias = variant.spec.alias
        names = {variant.name, variant.spec.base_name, *alias, *(base_name(a) for a in alias)}
        for name in names:
            lookup.setdefault(name, []).append(number)
    return lookup


def stamps_record(stamps: Sequence[tuple[str, FileStamp | None]]) -> list[Any]:
    """``[[name, stamp or null]…]``, each stamp a list of four numbers."""
    return [[name, None if stamp is None else list(stamp)] for name, stamp in stamps]


def package_dir_record(found: PackageDir) -> list[Any]:
    """``[path, [file…], format, stamp, root]``."""
    return [
        str(found.path),
        sorted(found.files),
        found.format,
        stamps_record(found.stamp),
        str(found.root),
    ]


def stamps_from_record(record: Sequence[Sequence[Any]]) -> Stamps:
    """The stamps of :func:`stamps_record`. (A stamp that is not four numbers is kept as it
    is: it equals no file's stamp, so what it stands for is read again.)"""
    return tuple((str(name), None if stamp is None else tuple(stamp)) for name, stamp in record)


@contextlib.contextmanager
def decoding() -> Iterator[None]:
    """Pause the cycle collector while records are decoded: they make tens of thousands of
    objects without a cycle among them, and each collection on the way would walk every
    object the command holds (about a third of a warm run's decoding time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Decoder:
    """Turns records back into values; equal paths, specifiers and versions become one
    value each, made once (a path from its parent's, which costs a fraction of parsing)."""

    def __init__(self) -> None:
        self._paths: dict[str, Path] = {}
        self._specifiers: dict[str, SpecifierSet] = {}
        self._versions: dict[str, Version] = {}

    def path(self, text: str) -> Path:
        """The path ``text`` (as ``str(path)`` wrote it)."""
        found = self._paths.get(text)
        if found is None:
            head, _, name = text.rpartition("/")
            found = self.path(head) / name if head and name else Path(text)
            self._paths[text] = found
        return found

    def specifier(self, text: str | None) -> SpecifierSet | None:
        """The specifier set ``text`` (None: none)."""
        if text is None:
            return None
        found = self._specifiers.get(text)
        if found is None:
            found = self._specifiers[text] = SpecifierSet(text)
        return found

    def version(self, text: str | None) -> Version | None:
        """The version ``text`` (None: none)."""
        if text is None:
            return None
        found = self._versions.get(text)
        if found is None:
            found = self._versions[text] = Version(text)
        return found

    def spec(self, record: dict[str, Any]) -> PackageSpec:
        """The spec of :func:`spec_record`."""
        values = {**_DEFAULTS, **record}
        if len(values) != len(_SPEC_FIELDS):
            raise ValueError(f"a spec record with other fields: {sorted(record)}")
        values["path"] = self.path(values["path"])
        values["source"] = self.path(values["source"])
        for name in _TUPLES:
            if name in record:
                values[name] = tuple(values[name])
        if _PAIRS in record:
            values[_PAIRS] = tuple((str(key), str(text)) for key, text in values[_PAIRS])
        spec: PackageSpec = _new(PackageSpec)
        _fill(spec, "__dict__", values)
        return spec

    def requirement(self, record: Sequence[Any]) -> Requirement:
        """The requirement of :func:`requirement_record`."""
        name, tag, specifier, text = record
        requirement: Requirement = _new(Requirement)
        fields = {"name": name, "tag": tag, "specifier": self.specifier(specifier), "text": text}
        _fill(requirement, "__dict__", fields)
        return requirement

    def predicate(self, record: Sequence[Any]) -> Predicate:
        """The predicate of :func:`predicate_record`."""
        kind, text, specifier, word, negate, off = record
        return Predicate(kind, text, self.specifier(specifier), word, negate, self.version(off))

    def parsed(self, record: Sequence[Any]) -> Parsed:
        """The spec and requirements of :func:`parsed_record`."""
        spec, depends, requires = record
        return (
            self.spec(spec),
            tuple(self.requirement(item) for item in depends),
            tuple(self.predicate(item) for item in requires),
        )

    def variant(self, record: Sequence[Any]) -> Variant:
        """The variant of :func:`variant_record`."""
        spec, depends, requires, unavailable, layered = record
        variant: Variant = _new(Variant)
        fields = {
            "spec": self.spec(spec),
            "depends": tuple(self.requirement(item) for item in depends),
            "requires": tuple(self.predicate(item) for item in requires),
            "unavailable": unavailable,
            "layered": layered,
        }
        _fill(variant, "__dict__", fields)
        return variant

    def problem(self, record: Sequence[Any]) -> DefinitionError:
        """The definition error of :func:`problem_record`."""
        path, problem, line = record
        return DefinitionError(self.path(path), problem, line)

    def catalog(self, record: dict[str, Any]) -> Catalog:
        """The catalog of :func:`catalog_record`."""
        return Catalog(
            tuple(self.variant(item) for item in record["variants"]),
            tuple(self.problem(item) for item in record["problems"]),
            tuple(record["warnings"]),
        )

    def package_dir(self, record: Sequence[Any]) -> PackageDir:
        """The package directory of :func:`package_dir_record`."""
        path, files, kind, stamp, root = record
        return PackageDir(
            self.path(path), frozenset(files), kind, stamps_from_record(stamp), self.path(root)
        )


class IndexVariants:
    """The variants of the discovery index's answer as a catalog's
    :class:`~jetforge.core.catalog.VariantSource`: ``lookup`` (:func:`lookup_record`) and
    one record part per variant (:func:`variant_record`), each decoded when first asked
    for. A part that does not decode gives way to ``fallback`` (the catalog read again from
    the tree), which then answers."""

    def __init__(
        self,
        lookup: Mapping[str, Sequence[int]],
        parts: Sequence[bytes],
        fallback: Callable[[], Catalog],
    ) -> None:
        self._lookup = lookup
        self._parts = parts
        self._fallback = fallback
        self._read: Catalog | None = None
        self._decoder = Decoder()
        self._made: dict[int, Variant] = {}

    def lookup_names(self) -> Collection[str]:
        """Every name lookups answer to."""
        return self._read.names() if self._read is not None else self._lookup.keys()

    def lookup(self, name: str) -> tuple[Variant, ...]:
        """The variants answering to ``name``, in discovery order."""
        if self._read is None:
            try:
                return self._variants(self._lookup.get(name, ()))
            except Exception:  # a damaged index: the tree answers
                self._read = self._fallback()
        return self._read.lookup(name)

    def every(self) -> tuple[Variant, ...]:
        """Every variant, in discovery order."""
        if self._read is None:
            try:
                return self._variants(range(len(self._parts)))
            except Exception:  # a damaged index: the tree answers
                self._read = self._fallback()
        return self._read.variants

    def _variants(self, numbers: Iterable[int]) -> tuple[Variant, ...]:
        made = self._made
        with decoding():
            for number in numbers:
                if number not in made:
                    made[number] = self._decoder.variant(load(self._parts[number]))
        return tuple(made[number] for number in numbers)


@dataclass(frozen=True, slots=True)
class Entry:
    """What reading one package directory gave; ``reads``: what its config scripts read
    (None: no script ran for it)."""

    stamp: tuple[tuple[str, FileStamp | None], ...]
    format: str  # the search directory's: jc, jetforge or auto
    is_jc: bool
    elsewhere: Stamps  # files the variants name outside the directory's own entries
    parsed: tuple[Parsed, ...] = ()
    problem: tuple[str, str, int | None] | None = None
    warnings: tuple[str, ...] = ()
    scripted: bool = False
    reads: Reads | None = None


def entry_record(entry: Entry) -> dict[str, Any]:
    """``entry`` as plain data."""
    return {
        "stamp": stamps_record(entry.stamp),
        "format": entry.format,
        "is_jc": entry.is_jc,
        "elsewhere": stamps_record(entry.elsewhere),
        "parsed": [parsed_record(parsed) for parsed in entry.parsed],
        "problem": None if entry.problem is None else list(entry.problem),
        "warnings": list(entry.warnings),
        "scripted": entry.scripted,
        "reads": None if entry.reads is None else entry.reads.record(),
    }


def entry_from_record(record: Mapping[str, Any], decoder: Decoder) -> Entry:
    """The entry of :func:`entry_record`."""
    problem = record["problem"]
    reads = record["reads"]
    return Entry(
        stamps_from_record(record["stamp"]),
        str(record["format"]),
        bool(record["is_jc"]),
        stamps_from_record(record["elsewhere"]),
        tuple(decoder.parsed(parsed) for parsed in record["parsed"]),
        None if problem is None else (str(problem[0]), str(problem[1]), problem[2]),
        tuple(record["warnings"]),
        bool(record["scripted"]),
        None if reads is None else Reads.from_record(reads),
    )
