"""A ``docker-bake.json`` for the chains a request names, for BuildKit builders driven by
``docker buildx bake`` (``jetforge bake``).

The chains are resolved and planned as ``build --simulate`` plans them
(:func:`jetforge.ops.planning.simulated_plans`), so each target carries its stage's labels,
stage key included, and a later ``jetforge build`` of the same packages reuses the images
by key. Each target takes its parent through a named context, ``target:<parent>``, which
the stage's ``FROM ${BASE_IMAGE}`` resolves to. Relative paths in the file are taken from
its own directory, where bake runs; :func:`bake_file` is pure, :func:`write_bake` writes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.dockerfile import edit_dockerfile
from jetforge.core.names import TRUST_STAGE
from jetforge.core.plan import Plan, Stage
from jetforge.errors import FailureError, UsageError
from jetforge.host.files import (
    UnwritableFileError,
    check_writable,
    named_output,
    read_regular,
    write_named,
)
from jetforge.host.registry import RegistryLocation, oci_architecture, registry_locations
from jetforge.ops.planning import simulated_plans

if TYPE_CHECKING:
    from jetforge.ops.planning import BuildRequest
    from jetforge.ops.workspace import Workspace

BAKE_FILE = "docker-bake.json"
DEFAULT_GROUP = "default"  # the final stage of every chain
STAGES_GROUP = "stages"  # every stage: what a later `jetforge build` reuses
MAX_TAG = 128

# Engine build flags that a bake target can say, and the attribute each becomes: a flag
# with a value (``--shm-size 1g`` or ``--shm-size=1g``), or a switch (``--pull``).
_VALUE_FLAGS = {"--shm-size": "shm-size", "--ulimit": "ulimits", "--target": "target"}
_SWITCHES = {"--pull": "pull", "--no-cache": "no-cache"}
_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class BakeFile:
    """A bake file's document and what must lie beside it: Dockerfiles (name, text) and
    build contexts to copy there (directory name, source directory)."""

    document: dict[str, object]
    targets: tuple[str, ...] = ()  # in build order
    default: tuple[str, ...] = ()  # the last stage of each chain
    dockerfiles: tuple[tuple[str, str], ...] = ()
    contexts: tuple[tuple[str, Path], ...] = ()

    @property
    def text(self) -> str:
        """The file's text: sorted keys, so the same plans give the same bytes."""
        return json.dumps(self.document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class BakeOutcome:
    """What :func:`write_bake` wrote: the bake file, its targets and default group."""

    path: Path
    targets: tuple[str, ...]
    default: tuple[str, ...]


def target_name(stage: Stage) -> str:
    """The stage's bake target: its variant and the start of its key (``frame-2-0-1a2b…``).

    Lowercase letters and digits joined by single ``-``: a valid bake target name and a
    valid image name, since the name is also the named context a child's ``FROM`` reads.
    """
    head = _UNSAFE.sub("-", stage.package.lower()).strip("-") or "stage"
    return f"{head}-{stage.key[:12]}"


def bake_attributes(flags: Sequence[str], source: str) -> dict[str, object]:
    """The bake attributes of a stage's engine build flags; a flag that a bake target
    cannot say is an error naming ``source`` (the option or the package)."""
    found: dict[str, object] = {}
    ulimits: list[str] = []
    words = list(flags)
    while words:
        word = words.pop(0)
        flag, equals, value = word.partition("=")
        if flag in _SWITCHES and not equals:
            found[_SWITCHES[flag]] = True
            continue
        if flag not in _VALUE_FLAGS:
            known = ", ".join(sorted((*_VALUE_FLAGS, *_SWITCHES)))
            raise UsageError(
                f"{source}: build flag '{word}' has no docker-bake.json equivalent "
                f"(bake takes {known})"
            )
        if not equals:
            if not words:
                raise UsageError(f"{source}: build flag '{flag}' needs a value")
            value = words.pop(0)
        if flag == "--ulimit":
            ulimits.append(value)
        else:
            found[_VALUE_FLAGS[flag]] = value
    if ulimits:
        found["ulimits"] = ulimits
    return found


def bake_file(
    plans: Sequence[Plan],
    directory: Path,
    *,
    cache: RegistryLocation | None = None,
    read_text: Callable[[Path], str] = lambda path: path.read_text(encoding="utf-8"),
) -> BakeFile:
    """The bake file of ``plans`` that will lie in ``directory``: one target per stage
    (stages that several chains share, by key, once), ``default`` with every chain's last
    stage, ``stages`` with all of them in build order.

    With ``cache`` (the first configured registry) the targets are tagged workspace
    ``jetforge build`` looks for stage images there, and read and write their BuildKit
    cache next to them; without it they are tagged with the local stage image names.
    """
    targets: dict[str, dict[str, object]] = {}
    tags: dict[str, list[str]] = {}
    dockerfiles: dict[str, str] = {}
    contexts: dict[str, Path] = {}
    default: list[str] = []
    for plan in plans:
        parent = ""
        for stage in plan.stages:
            name = target_name(stage)
            image = _image(stage, cache)
            if name in targets:
                # shared by an earlier chain: built once, tagged with each chain's name
                if image not in tags[name]:
                    tags[name].append(image)
            else:
                target, text, copied = _target(stage, name, parent, directory, cache, read_text)
                tags[name] = [image]
                target["tags"] = tags[name]
                target["platforms"] = [f"linux/{oci_architecture(plan.platform.arch)}"]
                targets[name] = target
                dockerfiles[f"{name}.Dockerfile"] = text
                if copied is not None:
                    contexts[name] = copied
            parent = name
        if parent and parent not in default:
            default.append(parent)
    document: dict[str, object] = {
        "group": {
            DEFAULT_GROUP: {"targets": default},
            STAGES_GROUP: {"targets": list(targets)},
        },
        "target": targets,
    }
    return BakeFile(
        document,
        tuple(targets),
        tuple(default),
        tuple(dockerfiles.items()),
        tuple(contexts.items()),
    )


def _target(
    stage: Stage,
    name: str,
    parent: str,
    directory: Path,
    cache: RegistryLocation | None,
    read_text: Callable[[Path], str],
) -> tuple[dict[str, object], str, Path | None]:
    """One stage's target, and what it needs beside the bake file: the text of its
    Dockerfile as the stage builds it (:func:`edit_dockerfile`), and a context directory
    to copy, if any."""
    args = dict(stage.build_args)
    target: dict[str, object] = {}
    if parent:
        # The parent's named context stands for its image: FROM ${BASE_IMAGE} reads it.
        args["BASE_IMAGE"] = parent
        target["contexts"] = {parent: f"target:{parent}"}
    copied: Path | None = None
    if stage.package == TRUST_STAGE and stage.index == 0:
        # A generated context in jetforge's cache: copied, so the files travel whole.
        copied, context, context_dir = stage.context, name, directory / name
    else:
        context, context_dir = _relative(stage.context, directory), stage.context
    dockerfile = _relative(directory / f"{name}.Dockerfile", context_dir)
    text = edit_dockerfile(read_text(stage.dockerfile), stage.edits, stage.pins)
    target.update(
        context=context,
        dockerfile=dockerfile,  # bake reads it relative to the context
        args=args,
        labels=dict(stage.labels),
        **bake_attributes(stage.build_flags, stage.package),
    )
    if cache is not None:
        tag = f"{stage.image.tag}-cache"
        if len(tag) > MAX_TAG:
            tag = f"cache-{stage.key}"
        ref = cache.repository(stage.image.name).with_tag(tag)
        target["cache-from"] = [f"type=registry,ref={ref}"]
        target["cache-to"] = [f"type=registry,ref={ref},mode=max"]
    return target, text, copied


def _image(stage: Stage, cache: RegistryLocation | None) -> str:
    """Where the stage image goes: the registry's name for it (``jetforge build`` pulls
    stage images from there), else the local stage image name."""
    if cache is None:
        return str(stage.image)
    return str(cache.repository(stage.image.name).with_tag(stage.image.tag))


def _relative(path: Path, start: Path) -> str:
    """``path`` from ``start``, both taken as the file system has them (bake and the
    engine follow ``..`` physically, past symbolic links)."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def write_bake(request: BuildRequest, workspace: Workspace, directory: Path) -> BakeOutcome:
    """Plan ``request`` as ``build --simulate`` does and write ``docker-bake.json`` and
    the files its targets need into ``directory``."""
    bake_attributes(shlex.split(request.build_flags), "--build-flags")
    directory = (workspace.cwd / directory).resolve()  # as bake will see it: no links, no ".."
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--output: {directory} is not a directory")
    simulation = simulated_plans(request, workspace)
    for plan in simulation.plans:
        for stage in plan.stages:
            if directory.is_relative_to(stage.context.resolve()):
                raise UsageError(
                    f"--output: {directory} lies in the build context of {stage.package} "
                    "(files written there would change its stage key); choose another "
                    "directory"
                )
    if simulation.base_id is None:
        workspace.warn(
            "the stage keys come from the base image's name, not its id (no engine "
            "answered, or the base image is not here): a later 'jetforge build' will not "
            "find these images by key; pull the base image and run 'jetforge bake' again"
        )
    locations = registry_locations(workspace.settings.registries, workspace.env)
    made = bake_file(simulation.plans, directory, cache=locations[0] if locations else None)
    path = directory / BAKE_FILE
    outputs = _outputs(made, directory)
    try:
        for target, _ in outputs:  # all refused or none, before anything is made
            check_writable(target, "bake output", through=False, parents=True)
        for target, source in outputs:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_output(target, source)
    except UnwritableFileError as error:
        raise UsageError(f"--output: {error}") from None
    except OSError as error:
        failed = error.filename or directory
        raise FailureError(f"--output: cannot write {failed}: {error.strerror or error}") from None
    return BakeOutcome(path, made.targets, made.default)


def _outputs(made: BakeFile, directory: Path) -> list[tuple[Path, str | Path]]:
    """Every file :func:`write_bake` writes into ``directory``, with its text or the file
    it copies: the Dockerfiles, the copied contexts' files, the bake file last (a bake
    file on disk never names a Dockerfile that is not written yet)."""
    found: list[tuple[Path, str | Path]] = [
        (directory / name, text) for name, text in made.dockerfiles
    ]
    for name, source in made.contexts:
        for current, dirs, names in os.walk(source):
            dirs.sort()
            relative = Path(current).relative_to(source)
            found += [
                (directory / name / relative / file, Path(current) / file) for file in sorted(names)
            ]
    found.append((directory / BAKE_FILE, made.text))
    return found


def _write_output(target: Path, source: str | Path) -> None:
    """Write one file of the bake output (a regular file, replaced whole): a text, or a
    context file's bytes and permission bits (the engine's COPY keeps them)."""
    if isinstance(source, str):
        write_named(target, source.encode("utf-8"), "bake output", through=False)
        return
    data = read_regular(source, "build context file")
    with named_output(
        target, "bake output", through=False, mode=stat.S_IMODE(source.stat().st_mode)
    ) as out:
        out.write(data)
