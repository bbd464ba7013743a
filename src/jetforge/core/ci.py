"""The affected set of a CI run (docs/ci.md): which stages of planned chains must be built
because a file of their package changed, or because they are built on one that did.

Pure: the plans, the changed files and the target name come in as values; reading git is
:mod:`jetforge.host.git`'s, choosing and planning the chains :mod:`jetforge.ops.ci`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jetforge.core.plan import Plan, Stage
    from jetforge.core.platform import Platform

MATRIX_LIMIT = 256  # GitHub Actions' most jobs per matrix


@dataclass(frozen=True, slots=True)
class CiStage:
    """One stage a CI run builds: its key and its parent's (the base image's reference
    for a chain's first stage), the variants ``jetforge build`` is given to build it (its
    chain up to it), the image name every stage of that chain is built under, its wave
    (how many stages of the set it waits for), its runner labels and why it is in the
    set."""

    target: str
    key: str
    parent: str
    package: str
    chain: tuple[str, ...]
    image: str
    wave: int
    runner_labels: tuple[str, ...]
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The stage as JSON-ready data (``ci plan --json``)."""
        return {
            "target": self.target,
            "key": self.key,
            "parent": self.parent,
            "package": self.package,
            "chain": list(self.chain),
            "image": self.image,
            "wave": self.wave,
            "runner_labels": list(self.runner_labels),
            "reasons": list(self.reasons),
        }


def runner_labels(platform: Platform) -> tuple[str, ...]:
    """The self-hosted runner labels a stage for ``platform`` needs: the family (``jetson``
    or ``server``), the CPU architecture, and on a Jetson the newest SM it builds for
    (``sm87`` is Orin, ``sm110`` Thor), since its tests run on that GPU."""
    if platform.is_jetson:
        return ("jetson", platform.arch, f"sm{max(platform.gpu_archs)}")
    return ("server", platform.arch)


def changed_files_of(directory: Path, changed: Iterable[Path]) -> tuple[str, ...]:
    """The files of ``changed`` (absolute, resolved) that lie in the package directory
    ``directory`` and count for its stage key, relative to it and sorted: names beginning
    with ``.`` or ``__`` never enter a key."""
    root = directory.resolve()
    found = []
    for path in changed:
        if not path.is_relative_to(root):
            continue
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if not any(part.startswith((".", "__")) for part in relative.parts):
            found.append(str(relative))
    return tuple(sorted(found))


def affected_stages(
    target: str,
    plans: Sequence[Plan],
    changed: Sequence[Path] | None,
) -> tuple[CiStage, ...]:
    """The stages of ``plans`` (one target's) that a CI run builds: with ``changed``
    (``--since``), each stage whose package directory holds a changed file and every stage
    after it in its chain (its key depends on theirs); without, every stage. The CA trust
    stage is never listed (a runner's build makes its own); it stays a parent. A stage
    several chains share (one key) is built once, in the longest of them, so that the
    stages after it there find it under their chain's image name."""
    chosen: dict[str, tuple[tuple[int, str], CiStage]] = {}
    for plan in plans:
        labels = runner_labels(plan.platform)
        image = str(plan.final_image)
        causes: list[str] = []
        wave = -1
        for position, stage in enumerate(plan.stages):
            if stage.index == 0:  # the CA trust stage: every build on the runner makes its own
                continue
            own = _own_reasons(stage, changed)
            reasons = own if own else tuple(f"depends on {name}" for name in causes)
            if own:
                causes.append(stage.package)
            if not reasons:
                continue
            wave += 1
            parent = plan.stages[position - 1].key if position else plan.base_image
            chain = tuple(s.package for s in plan.stages[: position + 1] if s.index > 0)
            candidate = CiStage(
                target, stage.key, parent, stage.package, chain, image, wave, labels, reasons
            )
            rank = (-len(plan.stages), image)
            if stage.key not in chosen or rank < chosen[stage.key][0]:
                chosen[stage.key] = (rank, candidate)
    return tuple(sorted((found for _, found in chosen.values()), key=stage_order))


def _own_reasons(stage: Stage, changed: Sequence[Path] | None) -> tuple[str, ...]:
    if changed is None:
        return ("no --since: every stage",)
    files = changed_files_of(stage.context, changed)
    return tuple(f"changed {file}" for file in files)


def stage_order(stage: CiStage) -> tuple[str, int, str, str]:
    """How stages are listed: by target, wave, variant, key."""
    return (stage.target, stage.wave, stage.package, stage.key)


def waves(stages: Iterable[CiStage]) -> dict[tuple[str, int], list[CiStage]]:
    """The stages grouped by target and wave, in :func:`stage_order`."""
    grouped: dict[tuple[str, int], list[CiStage]] = {}
    for stage in sorted(stages, key=stage_order):
        grouped.setdefault((stage.target, stage.wave), []).append(stage)
    return grouped


def chunks(items: Sequence[CiStage], size: int = MATRIX_LIMIT) -> list[Sequence[CiStage]]:
    """``items`` in slices of at most ``size`` (one matrix each)."""
    return [items[start : start + size] for start in range(0, len(items), size)]
