"""``jetforge ci plan``: the affected set of a CI run (docs/ci.md), per target platform.

Each selected variant is resolved into its own chain and planned as ``build --simulate``
plans without an engine (:mod:`jetforge.ops.planning`): the keys come from the base
image's reference and the engine's usual build mode. With ``since`` git says which files
changed (:mod:`jetforge.host.git`); :func:`jetforge.core.ci.affected_stages` chooses the
stages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.ci import CiStage, affected_stages, chunks, stage_order, waves
from jetforge.core.resolve import expand_requests, resolve
from jetforge.errors import FailureError, JetforgeError, UsageError
from jetforge.host.commands import Runner
from jetforge.host.files import (
    UnreadableFileError,
    UnwritableFileError,
    check_regular_or_absent,
    check_writable,
    write_named,
)
from jetforge.host.git import changed_files, repository_top
from jetforge.host.runner import run_process
from jetforge.ops.planning import BuildRequest, make_plans, plan_options

if TYPE_CHECKING:
    from jetforge.core.plan import Plan
    from jetforge.core.resolve import Resolution
    from jetforge.ops.workspace import Workspace


@dataclass(frozen=True, slots=True)
class CiRequest:
    """What ``ci plan`` (and the generators) are asked: the variants (or ``every`` one),
    the targets (none: the workspace's platform) and the revision changes count from."""

    packages: tuple[str, ...] = ()
    every: bool = False
    targets: tuple[str, ...] = ()
    since: str | None = None


@dataclass(frozen=True, slots=True)
class CiPlan:
    """The affected set: its stages in :func:`jetforge.core.ci.stage_order`, the revision
    it counts from, the changed files git named, and the variants that did not resolve
    (``every``: left out, each with its one-line reason)."""

    stages: tuple[CiStage, ...]
    since: str | None = None
    changed: tuple[Path, ...] = ()
    skipped: tuple[tuple[str, str, str], ...] = field(default=())  # target, variant, why

    def to_json(self) -> dict[str, object]:
        """``ci plan --json``."""
        return {
            "since": self.since,
            "stages": [stage.to_json() for stage in self.stages],
        }


def check_request(request: CiRequest) -> None:
    """A request names variants or ``every`` one, not both or neither."""
    if request.every and request.packages:
        raise UsageError("ci: name PACKAGEs or --all, not both")
    if not request.every and not request.packages:
        raise UsageError("ci: name at least one PACKAGE, or --all ('jetforge list' shows them)")


def plan_ci(request: CiRequest, workspace: Workspace, runner: Runner = run_process) -> CiPlan:
    """The affected set of ``request``: the chains of every target planned, the changed
    files read once."""
    check_request(request)
    changed = None if request.since is None else _changed(request.since, workspace, runner)
    stages: list[CiStage] = []
    skipped: list[tuple[str, str, str]] = []
    for target in request.targets or (None,):
        place = _for_target(workspace, target)
        name = target or place.platform.target or place.platform.tag_postfix
        plans, failed = _plans(request, place)
        skipped += [(name, variant, why) for variant, why in failed]
        stages += affected_stages(name, plans, changed)
    return CiPlan(
        tuple(sorted(stages, key=stage_order)), request.since, changed or (), tuple(skipped)
    )


def _for_target(workspace: Workspace, target: str | None) -> Workspace:
    if target is None:
        return workspace
    return replace(workspace, choices=replace(workspace.choices, target=target))


def _plans(request: CiRequest, workspace: Workspace) -> tuple[list[Plan], list[tuple[str, str]]]:
    """The plan of each selected variant's chain, and (``every``) the variants that did
    not resolve with why."""
    catalog = workspace.catalog
    workspace.report_problems(each=False)
    chains: list[Resolution] = []
    failed: list[tuple[str, str]] = []
    if request.every:
        names = sorted({v.name for v in catalog.variants if v.is_available})
        for name in names:
            try:
                chains.append(resolve(catalog, [name], workspace.env))
            except JetforgeError as error:
                failed.append((name, str(error)))
    else:
        for name in expand_requests(catalog, list(request.packages)):
            chains.append(resolve(catalog, [name], workspace.env))
    build = BuildRequest(packages=request.packages)
    mode = workspace.engine_kind(None).default_build_mode
    options = replace(plan_options(build, workspace), build_mode=mode, created="")
    return make_plans(workspace, chains, options), failed


def _changed(since: str, workspace: Workspace, runner: Runner) -> tuple[Path, ...]:
    """The changed files of every git work tree that holds a package directory."""
    tops = []
    for root in workspace.package_roots:
        top = repository_top(root.path, runner, workspace.env)
        if top is not None and top not in tops:
            tops.append(top)
    if not tops:
        raise UsageError("--since: no package directory is in a git work tree")
    return tuple(
        sorted({p for top in tops for p in changed_files(top, since, runner, workspace.env)})
    )


def output_name(target: str, wave: int, chunk: int) -> str:
    """The name of one matrix among the plan job's outputs (and the job that runs it):
    ``build_jp6_2_w1_c0`` for chunk 0 of wave 1 of target ``jp6.2`` (letters, digits and
    ``_`` only: a job id, and an output name expressions read as a property)."""
    safe = "".join(char if char.isascii() and char.isalnum() else "_" for char in target)
    return f"build_{safe}_w{wave}_c{chunk}"


def matrix_outputs(plan: CiPlan) -> list[str]:
    """``ci plan --github-output``: one ``NAME=MATRIX`` line per non-empty matrix (a
    target's wave, in chunks of at most 256 stages), the matrix as compact JSON."""
    lines = []
    for (target, wave), found in waves(plan.stages).items():
        for number, part in enumerate(chunks(found)):
            include = [_matrix_entry(stage) for stage in part]
            text = json.dumps({"include": include}, separators=(",", ":"), sort_keys=True)
            lines.append(f"{output_name(target, wave, number)}={text}")
    return lines


def _matrix_entry(stage: CiStage) -> dict[str, str]:
    return {
        "target": stage.target,
        "package": stage.package,
        "key": stage.key,
        "chain": " ".join(stage.chain),
        "image": stage.image,
    }


def count_matrices(plan: CiPlan) -> dict[str, list[int]]:
    """Per target, how many matrices each wave needs (for the generators)."""
    found: dict[str, list[int]] = {}
    for (target, _), stages in waves(plan.stages).items():
        found.setdefault(target, []).append(len(chunks(stages)))
    return found


def plan_lines(plan: CiPlan, *, why: bool) -> Sequence[str]:
    """``ci plan``'s text: one line per stage (target, wave, variant, key), and with
    ``why`` the reasons under each."""
    lines = []
    for stage in plan.stages:
        lines.append(f"{stage.target}  wave {stage.wave}  {stage.package}  {stage.key[:12]}")
        if why:
            lines += [f"  {reason}" for reason in stage.reasons]
    return lines


def write_pipeline(path: Path, text: str) -> Path:
    """Write a generated pipeline to ``path`` (replaced whole); where it cannot go is one
    line naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        check_writable(path, "pipeline file", through=False)
        write_named(path, text.encode("utf-8"), "pipeline file", through=False)
    except UnwritableFileError as error:
        raise UsageError(f"--output: {error}") from None
    except OSError as error:
        raise FailureError(f"--output: cannot write {path}: {error.strerror or error}") from None
    return path


def append_outputs(path: Path, lines: Sequence[str]) -> None:
    """Append ``lines`` to the step output file ``path`` (``$GITHUB_OUTPUT``)."""
    try:
        check_regular_or_absent(path, "step output file")
        with path.open("a", encoding="utf-8") as out:
            out.writelines(f"{line}\n" for line in lines)
    except UnreadableFileError as error:
        raise UsageError(f"--github-output: {error}") from None
    except OSError as error:
        raise FailureError(
            f"--github-output: cannot write {path}: {error.strerror or error}"
        ) from None
