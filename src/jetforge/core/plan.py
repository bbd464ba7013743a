"""Plan a build: every stage's Dockerfile, context, arguments, tag, tests and stage key.

Planning is pure apart from reading the package files that the stage keys hash; it
decides everything, and execution only walks the plan.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.catalog import Variant
from jetforge.core.dockerfile import Context, edit_dockerfile, has_github_api
from jetforge.core.labels import stage_key, stage_labels
from jetforge.core.names import TRUST_STAGE, in_file_name
from jetforge.core.pins import Pinning, Pins
from jetforge.core.tags import (
    ImageRef,
    final_image,
    parse_image_ref,
    reference_problem,
    stage_image,
)
from jetforge.errors import UsageError

if TYPE_CHECKING:
    from jetforge.core.lockdata import LockData
    from jetforge.core.platform import Platform
    from jetforge.core.resolve import Resolution


@dataclass(frozen=True, slots=True)
class StageTest:
    """One test of a package: the entry as written and the argv run inside the image."""

    package: str
    entry: str
    argv: tuple[str, ...]
    package_dir: Path
    workdir: str = "/test"


@dataclass(frozen=True, slots=True)
class Stage:
    """One container build of one variant on top of the previous stage's image."""

    index: int
    package: str
    image: ImageRef
    base: ImageRef
    dockerfile: Path
    context: Path
    build_args: tuple[tuple[str, str], ...]
    build_flags: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    key: str
    tests: tuple[StageTest, ...]
    edits: tuple[str, ...] = ()
    pins: str = ""  # a locked build's instructions (jetforge.core.pins), after the last FROM
    locked_id: str = ""  # the image the lockfile names for this stage, when it may be reused

    @property
    def is_meta(self) -> bool:
        """A meta-package stage only records the chain; it has no Dockerfile of its own."""
        return self.dockerfile.parent != self.context

    @property
    def slug(self) -> str:
        """``NN-<variant>`` used for log file names."""
        return f"{self.index:02d}-{in_file_name(self.package)}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered stages that produce one final image."""

    platform: Platform
    chain: tuple[str, ...]
    base_image: str
    final_image: ImageRef
    build_mode: str
    stages: tuple[Stage, ...]


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """What the user chose on the command line that shapes a plan."""

    name: str | None = None
    base_image: str | None = None
    base_id: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    build_flags: str = ""
    build_mode: str = "buildkit"
    created: str = ""
    trust_context: Path | None = None
    no_github_api: bool = False
    outputs: tuple[Path, ...] = ()  # jetforge's own directories: never part of a context key
    locked: LockData | None = None  # a lockfile read back: every stage is pinned
    upgrade: tuple[str, ...] = ()  # names the pins leave free (jetforge lock --upgrade)


def argv_for_test(entry: str) -> tuple[str, ...]:
    """How a test entry runs inside the image (docs/builds.md, "Tests")."""
    words = shlex.split(entry)
    if words and words[0].endswith(".py"):
        return ("python3", f"/test/{words[0]}", *words[1:])
    if words and words[0].endswith(".sh"):
        return ("bash", f"/test/{words[0]}", *words[1:])
    return ("sh", "-c", entry)


def argv_for_jc_test(entry: str) -> tuple[str, ...]:
    """How jetson-containers runs a test entry: through ``/bin/bash -c``, a ``.py`` script
    with ``python3``, a ``.sh`` script with ``/bin/bash``, anything else as ``/test/<entry>``
    (arguments included), from the image's own working directory."""
    program = entry.split(" ")[0]
    if program.endswith(".py"):
        line = f"python3 /test/{entry}"
    elif program.endswith(".sh"):
        line = f"/bin/bash /test/{entry}"
    else:
        line = f"/test/{entry}"
    return ("/bin/bash", "-c", line)


JC_BUILD_ARGS = (("NVIDIA_DRIVER_CAPABILITIES", "all"),)


def merge_build_args(*groups: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Merge argument groups in order; a later value wins but keeps the first position."""
    merged: dict[str, str] = {}
    for group in groups:
        merged.update(group)
    return tuple(merged.items())


def plan_build(
    resolution: Resolution,
    platform: Platform,
    options: PlanOptions,
    read: Callable[..., Context],
) -> Plan:
    """Plan every stage of ``resolution``'s chain for ``platform``; ``read`` reads a build
    context (:func:`jetforge.host.context.read_context`).

    With ``options.trust_context`` the chain starts with the generated CA trust stage
    (index 0, not part of the chain label); see :mod:`jetforge.host.trust`.
    """
    final = final_image(resolution.requested[-1].spec, platform, options.name)
    problem = reference_problem(final) or reference_problem(stage_image(final, "x"))
    if problem:
        source = "--name" if options.name else f"the image of {resolution.requested[-1].name}"
        raise UsageError(f"{source}: {problem}")
    base_image = options.base_image or platform.base_image
    parent_image, parent_key = parse_image_ref(base_image), options.base_id or base_image
    plain_parent = parent_key  # the parent's key without a lock's pins
    flags = tuple(shlex.split(options.build_flags))
    chain: list[str] = []
    stages: list[Stage] = []
    locked = options.locked
    pinning = Pinning(locked.stages, options.upgrade) if locked is not None else None

    def add(
        index: int, name: str, directory: Path, context: Context, variant: Variant | None
    ) -> None:
        nonlocal parent_image, parent_key, plain_parent
        is_jc = variant is not None and variant.spec.format == "jc"
        build_args = merge_build_args(
            (("BASE_IMAGE", str(parent_image)),),
            JC_BUILD_ARGS if is_jc else platform.build_args(),
            variant.spec.build_args if variant else (),
            options.build_args,
        )
        stage_flags = (*shlex.split(variant.spec.build_flags if variant else ""), *flags)
        edits = ("no-github-api",) if options.no_github_api and has_github_api(context) else ()

        def key_of(parent: str, pins: Pins) -> str:
            return stage_key(
                parent=parent,
                dockerfile_text=edit_dockerfile(context.dockerfile_text, edits, pins.instruction()),
                files=context.files,
                build_args=build_args,
                build_flags=stage_flags,
                build_mode=options.build_mode,
            )

        plain = key_of(plain_parent, Pins())
        pins, key, locked_id = Pins(), plain, ""
        if pinning is not None:
            pins = pinning.after(name)
            key = key_of(parent_key, pins)
            locked_id = pinning.locked_image({plain, key})
        image = stage_image(final, name)
        labels = stage_labels(
            key=key,
            package=name,
            chain=chain,
            platform=platform.label,
            title=str(image),
            created=options.created,
        )
        stages.append(
            Stage(
                index=index,
                package=name,
                image=image,
                base=parent_image,
                dockerfile=context.dockerfile,
                context=directory,
                build_args=build_args,
                build_flags=stage_flags,
                labels=labels,
                key=key,
                tests=_tests(variant) if variant else (),
                edits=edits,
                pins=pins.instruction(),
                locked_id=locked_id,
            )
        )
        parent_image, parent_key, plain_parent = image, key, plain

    if options.trust_context is not None:
        trust = read(options.trust_context, "Dockerfile", exclude=options.outputs)
        add(0, TRUST_STAGE, options.trust_context, trust, None)
    for index, variant in enumerate(resolution.chain, start=1):
        chain.append(variant.name)
        context = read(variant.spec.path, variant.spec.dockerfile, exclude=options.outputs)
        add(index, variant.name, variant.spec.path, context, variant)
    return Plan(platform, tuple(chain), base_image, final, options.build_mode, tuple(stages))


def _tests(variant: Variant) -> tuple[StageTest, ...]:
    if variant.spec.format == "jc":
        return tuple(
            StageTest(variant.name, entry, argv_for_jc_test(entry), variant.spec.path, "")
            for entry in variant.spec.test
        )
    return tuple(
        StageTest(variant.name, entry, argv_for_test(entry), variant.spec.path)
        for entry in variant.spec.test
    )


LOGS_PLACEHOLDER = Path("<logs>")  # a plan shown before the build names its logs so


def built_dockerfile_path(stage: Stage, logs_dir: Path) -> Path:
    """Where the build of ``stage`` writes the Dockerfile it builds (in its logs)."""
    return logs_dir / f"{stage.slug}.Dockerfile"


def as_built(stage: Stage, logs_dir: Path = LOGS_PLACEHOLDER) -> Stage:
    """``stage`` building the Dockerfile its build writes to ``logs_dir``."""
    return replace(stage, dockerfile=built_dockerfile_path(stage, logs_dir))


def parent_placeholder(plan: Plan, stage: Stage, base_id: str | None) -> str:
    """The ``jetforge.parent`` label a plan shows for ``stage`` before the build: the base
    image's id for the first stage (when known), else ``<NN-name>`` for the image of the
    stage before, whose id the build knows once it has chosen or built it."""
    position = plan.stages.index(stage)
    if position == 0:
        return base_id or ""
    return f"<{plan.stages[position - 1].slug}>"


def plan_json(
    plan: Plan, commands: Mapping[int, Sequence[str]], dockerfiles: Mapping[int, str] | None = None
) -> dict[str, object]:
    """The plan as JSON-ready data; ``commands`` maps a stage index to its engine argv,
    ``dockerfiles`` (``build --simulate``) to the Dockerfile text its build writes when
    that is not the package's own (``dockerfile_text``: the edits, a lock's pins)."""
    return {
        "platform": plan.platform.to_json(),
        "chain": list(plan.chain),
        "base_image": plan.base_image,
        "final_image": str(plan.final_image),
        "build_mode": plan.build_mode,
        "stages": [
            {
                "index": stage.index,
                "package": stage.package,
                "image": str(stage.image),
                "base": str(stage.base),
                "dockerfile": str(stage.dockerfile),
                "context": str(stage.context),
                "build_args": dict(stage.build_args),
                "build_flags": list(stage.build_flags),
                "labels": dict(stage.labels),
                "key": stage.key,
                "tests": [test.entry for test in stage.tests],
                "edits": list(stage.edits),
                "command": list(commands.get(stage.index, ())),
                **(
                    {"dockerfile_text": dockerfiles[stage.index]}
                    if dockerfiles and stage.index in dockerfiles
                    else {}
                ),
            }
            for stage in plan.stages
        ],
    }
