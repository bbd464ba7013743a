"""Reading package directories: the part of discovery that parses files and runs config
scripts, for the directories the discovery index does not answer. Imported when a run
has something to read (start-up time)."""

from __future__ import annotations

import dataclasses
import shlex
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetforge.core.requirement import (
    Predicate,
    Requirement,
    RequirementSyntaxError,
    parse_jc_predicate,
    parse_predicate,
    parse_requirement,
)
from jetforge.core.spec import PackageSpec, is_inside, parse_package_dir
from jetforge.discovery.answers import MalformedAnswerError, answered_specs
from jetforge.discovery.index import Index, LastWalk
from jetforge.discovery.jc.scan import (
    JcReader,
    dockerfile_problem,
    is_jc_directory,
    needs_worker,
)
from jetforge.discovery.records import Entry, Stamps
from jetforge.discovery.scripts import MALFORMED, ScriptHost, ScriptLostError
from jetforge.discovery.walk import (
    PackageDir,
    PackageRoot,
    Walk,
    iter_directories,
    restamp,
    special_files,
)
from jetforge.errors import DefinitionError
from jetforge.host.files import file_kind
from jetforge.host.platform_data import load_tables
from jetforge.host.stash import file_stamp

if TYPE_CHECKING:
    from jetforge.core.platform import Platform


def read_tree(
    search: Sequence[PackageRoot],
    platform: Platform,
    env: Mapping[str, str],
    setup: Mapping[str, object],
    store: Index,
    last: LastWalk | None,
) -> tuple[list[Entry], Walk, bool]:
    """The entries of every package directory of ``search``, in order, from ``store``
    where they hold and read otherwise (``last``: the last walk, when it holds), the walk,
    and whether the index now holds every entry. ``store`` is updated, not saved."""
    with ScriptHost(platform, env, setup) as host:
        if store.is_empty:  # a first run: the worker loads while the tree is walked
            host.start()
        walk = Walk(stamps=store.path is not None)
        if last is None:
            directories = list(iter_directories(search, walk))
        else:
            directories = list(last.directories)
            walk = Walk(list(last.warnings), list(last.seen))
        store.keep_scripts_key((platform, setup))
        entries = [store.lookup(found, env) for found in directories]
        texts: dict[Path, str] = {}  # Dockerfiles read to tell the format, for the parse
        special = {found.path for found in directories if special_files(found)}  # unread
        is_jc = {
            found.path: found.format == "jc"
            or (
                found.format == "auto"
                and found.path not in special
                and is_jc_directory(found.path, found.files, texts)
            )
            for found, entry in zip(directories, entries, strict=True)
            if entry is None
        }
        scripted = {
            found.path
            for found in directories
            if found.path in is_jc
            and found.path not in special
            and (needs_worker if is_jc[found.path] else _has_script)(found.path, found.files)
        }
        host.expect(
            [
                ("jc" if is_jc[found.path] else "jetforge", found.path, found.files)
                for found in directories
                if found.path in scripted
            ]
        )
        trees = setup.get("roots", [])
        jc_reader = JcReader(
            host, [Path(tree) for tree in trees] if isinstance(trees, list) else []
        )
        complete = True
        read = list(entries)
        # The directories whose scripts run in a worker come last: meanwhile it runs them.
        for number in sorted(
            (number for number, entry in enumerate(entries) if entry is None),
            key=lambda number: directories[number].path in scripted,
        ):
            found = directories[number]
            entry, keep = _read(found, is_jc[found.path], host, jc_reader, texts, walk.stamps)
            written: Stamps = ()
            if entry.scripted and walk.stamps:  # a script may write into its directory
                after = restamp(found).stamp
                written = tuple(set(after) - set(found.stamp))
                entry = dataclasses.replace(entry, stamp=after, reads=host.reads(found.path))
            complete &= keep and store.put(found.path, entry, written)
            if not keep:
                store.drop(found.path)
            read[number] = entry
            host.collect()
    store.forget_missing({str(found.path) for found in directories})
    complete &= store.keep_walk(directories, walk)
    return [entry for entry in read if entry is not None], walk, complete


def _has_script(_directory: Path, files: frozenset[str]) -> bool:
    return "config.py" in files


def _unscripted(
    directory: Path, files: frozenset[str], texts: Mapping[Path, str]
) -> list[PackageSpec] | None:
    """A jetforge-format directory's variants when no config script derives them; None
    when one does (they come from a script worker then)."""
    if _has_script(directory, files):
        return None
    specs = list(parse_package_dir(directory, files, texts))
    return None if any(spec.config for spec in specs) else specs


def _check_special(found: PackageDir) -> None:
    """A package file of ``found`` that is there but is not a regular file (a FIFO, a
    device, a socket) is a definition error of the package, naming it: reading it would
    block or read garbage, and leaving the package out would hide it."""
    for name in special_files(found):
        path = found.path / name
        try:
            kind = file_kind(path.stat().st_mode)
        except OSError as error:
            kind = f"unreadable ({error.strerror or error})"
        raise DefinitionError(path, f"is {kind}, not a regular file (a package file must be one)")


def _check_tests(spec: PackageSpec) -> None:
    """A test file the spec names (in its directory) that is there but is not a regular
    file is a definition error: the test would block on a FIFO, or run a device. A missing
    one is left to the test, as before."""
    for entry in spec.test:
        name = _test_file(spec, entry)
        if name is None or not is_inside(name):
            continue
        try:
            mode = (spec.path / name).stat().st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            raise DefinitionError(
                spec.source,
                f"{spec.name}: test '{name}' is {file_kind(mode)}, not a regular file (a "
                f"test script must be a regular file in {spec.path})",
            )


def _test_file(spec: PackageSpec, entry: str) -> str | None:
    """The file in the package directory that a test entry runs, if any: jc runs its
    first word from ``/test`` whatever it is, jetforge a ``.py`` or ``.sh`` script."""
    if spec.format == "jc":
        return entry.split(" ")[0] or None
    try:
        words = shlex.split(entry)
    except ValueError:
        return None
    return words[0] if words and words[0].endswith((".py", ".sh")) else None


def _has_dockerfile(spec: PackageSpec, found: PackageDir) -> PackageSpec:
    """``spec``, when its Dockerfile is a file (one the walk listed needs no look)."""
    if spec.path == found.path and any(
        name == spec.dockerfile and stamp is not None for name, stamp in found.stamp
    ):
        return spec
    if spec.dockerfile and not (spec.path / spec.dockerfile).is_file():
        raise DefinitionError(
            spec.source, f"{spec.name}: {dockerfile_problem(spec.path, spec.dockerfile)}"
        )
    return spec


def _parse_requirements(
    spec: PackageSpec,
) -> tuple[tuple[Requirement, ...], tuple[Predicate, ...]]:
    try:
        depends = tuple(parse_requirement(text) for text in spec.depends)
        if spec.format == "jc":
            off_jetson = load_tables().jc_l4t
            requires = tuple(parse_jc_predicate(text, off_jetson) for text in spec.requires)
        else:
            requires = tuple(parse_predicate(text) for text in spec.requires)
    except RequirementSyntaxError as error:
        raise DefinitionError(spec.source, f"{spec.name}: {error}") from None
    return depends, requires


def _read(
    found: PackageDir,
    is_jc: bool,
    host: ScriptHost,
    jc_reader: JcReader,
    texts: Mapping[Path, str],
    stamps: bool,
) -> tuple[Entry, bool]:
    """Read one package directory into an entry, and whether the index may keep it
    (``stamps``: the stamps of files elsewhere that its variants name, for the index)."""
    entry = Entry(found.stamp, found.format, is_jc, ())
    scripted = False
    try:
        _check_special(found)
        if is_jc:
            scripted = needs_worker(found.path, found.files)
            specs, notes = jc_reader.read(found.path, found.files)
        else:
            unscripted = _unscripted(found.path, found.files, texts)
            if unscripted is None:  # a script's error, too, holds only while its inputs do
                scripted = True
                specs = _answered(host.ask("jetforge", found.path, found.files), found.path)
            else:
                specs = unscripted
            specs, notes = [_has_dockerfile(spec, found) for spec in specs], []
        for spec in specs:
            _check_tests(spec)
        parsed = tuple((spec, *_parse_requirements(spec)) for spec in specs)
    except ScriptLostError as error:  # an overrun or a dead worker: not for keeping
        return dataclasses.replace(entry, problem=_problem(error)), False
    except DefinitionError as error:
        return dataclasses.replace(entry, problem=_problem(error), scripted=scripted), True
    except (OSError, UnicodeDecodeError) as error:
        problem = DefinitionError(found.path, f"cannot read package: {error}")
        return dataclasses.replace(entry, problem=_problem(problem)), False
    return Entry(
        found.stamp,
        found.format,
        is_jc,
        _elsewhere(found, specs) if stamps else (),
        parsed,
        None,
        tuple(notes),
        scripted,
    ), True


def _problem(error: DefinitionError) -> tuple[str, str, int | None]:
    return str(error.path), error.problem, error.line


def _elsewhere(found: PackageDir, specs: Sequence[PackageSpec]) -> Stamps:
    """The stamps of files the variants name that are not entries of their directory."""
    own = {name for name, _ in found.stamp}
    paths = {
        str(spec.path / name)
        for spec in specs
        for name in (spec.dockerfile, *spec.config)
        if name and not (spec.path == found.path and name in own)
    }
    return tuple((path, file_stamp(path)) for path in sorted(paths))


def _answered(answer: dict[str, Any], directory: Path) -> list[PackageSpec]:
    """The variants of a worker's answer for ``directory``; any other shape is the
    directory's (unkept) error: a script may have written the line."""
    try:
        return answered_specs(answer["specs"])
    except (KeyError, TypeError, MalformedAnswerError):
        raise ScriptLostError(directory / "config.py", MALFORMED) from None
