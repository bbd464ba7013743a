"""Build the chains a request names (docs/builds.md): checked and planned
(:mod:`jetforge.ops.planning`), the engine connected, the base image made sure of, the
package cache and the registry lookup set up, then each plan's executor run, one at a time
or on a build farm. The CLI turns its arguments into a :class:`BuildRequest` and renders
what :func:`build_chains` yields; nothing here prints.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.plan import Plan, Stage
from jetforge.errors import RegistryError, StageFailedError, UsageError
from jetforge.host.files import UnwritableFileError, check_only_files, held
from jetforge.ops.planning import (
    BuildRequest,
    base_reference,
    build_cache,
    check_request,
    logs_root,
)

if TYPE_CHECKING:
    from jetforge.engine.base import Engine
    from jetforge.engine.cli_engine import CliEngine
    from jetforge.ops.executor import BuildOptions
    from jetforge.ops.results import Summary
    from jetforge.ops.workspace import Workspace
    from jetforge.reporter import Reporter


@dataclass(frozen=True, slots=True)
class ChainOutcome:
    """One chain's result: its summary, or (with ``skip_errors``) the failure."""

    plan: Plan
    logs_dir: Path
    summary: Summary | None = None
    failure: StageFailedError | None = None


def build_chains(
    request: BuildRequest,
    workspace: Workspace,
    reporting: Callable[[], AbstractContextManager[Reporter]],
) -> Iterator[ChainOutcome]:
    """Build every chain of ``request``, yielding each outcome as it ends; a failed stage
    raises :class:`StageFailedError` unless ``skip_errors``. ``reporting`` gives the
    progress display of one chain."""
    from jetforge.ops.executor import Executor
    from jetforge.ops.lockstep import pinned_base

    checked = check_request(request, workspace)
    if checked.farm:
        from jetforge.ops.farm.connect import reach_registry

        reach_registry(workspace)  # before the engine is asked anything
    locked, planning = checked.locked, checked.planning
    records = workspace.records_dir  # checked before the engine is asked
    engine = workspace.engine(request.engine)
    workspace.note(builder_line(engine))
    base = base_reference(request, workspace)
    if locked is not None:
        base = pinned_base(engine, base, locked)
        planning = replace(planning, base_image=base)
    base_id = _ensure_base(workspace, engine, base)
    planning = replace(planning, build_mode=engine.build_mode, base_id=base_id)
    plans = checked.plans(workspace, planning)
    options = _build_options(request, workspace, engine, plans, records)
    if locked is not None:
        options = [replace(chosen, locked=locked) for chosen in options]
    workspace.make_data_dir()
    if checked.farm:
        from jetforge.ops.farm.connect import farm_chains

        ends = farm_chains(
            request.workers, workspace, engine, (base, base_id), plans, options, reporting
        )
        with _building(workspace, engine, plans), contextlib.closing(ends):
            # a failure stops the farm's other work at once
            for end in ends:
                if end.failure is not None and not request.skip_errors:
                    raise end.failure
                chosen = options[plans.index(end.plan)]
                yield ChainOutcome(end.plan, chosen.logs_dir, end.summary, end.failure)
        return
    for number, (plan, chosen) in enumerate(zip(plans, options, strict=True), start=1):
        if len(plans) > 1:
            workspace.note(f"chain {number}/{len(plans)}: {plan.final_image}")
        try:
            with _building(workspace, engine, [plan]), reporting() as reporter:
                summary = Executor(plan, engine, chosen, reporter).execute()
        except StageFailedError as failure:
            if not request.skip_errors:
                raise
            yield ChainOutcome(plan, chosen.logs_dir, failure=failure)
            continue
        yield ChainOutcome(plan, chosen.logs_dir, summary)


@contextlib.contextmanager
def _building(workspace: Workspace, engine: Engine, plans: list[Plan]) -> Iterator[None]:
    """Hold, on this host, the final images of ``plans`` on ``engine``'s kind while they
    build (two daemons of one kind wait for each other too: rare, and only slower).

    A stage is built on its parent by the parent's stage image name: another jetforge
    process building the same final image would move those names in between, and a stage
    would be built on another parent than the one it records. The second build waits,
    then reuses what the first built."""
    finals = sorted({str(plan.final_image) for plan in plans})
    with contextlib.ExitStack() as stack:
        for final in finals:
            digest = hashlib.sha256(f"{engine.name}|{final}".encode()).hexdigest()[:32]
            path = workspace.cache_dir / "building" / f"{digest}.lock"
            stack.enter_context(held(path, functools.partial(_waiting, workspace, final)))
        yield


def _waiting(workspace: Workspace, final: str, holder: str) -> None:
    workspace.note(f"waiting for another jetforge build of {final} (process {holder})")


def builder_line(engine: Engine) -> str:
    """What a build says once at its start: the builder its stages use, what that costs,
    and the fix when it is not a good one."""
    builder = engine.builder()
    fix = f"; fix: {builder.remedy}" if builder.remedy and not builder.good else ""
    return f"builder: {builder.detail}{fix}"


def _build_options(
    request: BuildRequest, workspace: Workspace, engine: Engine, plans: list[Plan], records: Path
) -> list[BuildOptions]:
    """How each plan is executed: its logs directory, tests, push, registry lookup, the
    package cache's flags and ``records``, the checked state directory."""
    from jetforge.ops.executor import BuildOptions

    package_cache = build_cache(workspace, engine)
    logs = _logs_dir(request, workspace)
    remote = None if request.rebuild else _registry_lookup(workspace)
    return [
        BuildOptions(
            logs_dir=logs / plan.final_image.name if len(plans) > 1 else logs,
            data_dir=workspace.data_dir,
            results_dir=records / "test-results",
            state_dir=records,
            rebuild=request.rebuild,
            skip_tests=request.skip_tests,
            test_only=request.test_only,
            push=request.push,
            resume=request.resume,
            remote=remote,
            build_extra=package_cache.build_extra,
            run_mounts=package_cache.run_mounts,
            lock=True,
            lock_file=workspace.cwd / request.lock_file if request.lock_file else None,
            lock_option=request.lock_option,
        )
        for plan in plans
    ]


def _registry_lookup(workspace: Workspace) -> Callable[[Stage], str | None] | None:
    """A finder of stage images in the configured registries (docs/builds.md, "Reuse"), or None.

    A stage image is looked up as ``<registry>/<namespace>/NAME:TAG-<variant>`` (workspace
    ``--push`` puts it) and reused when its ``jetforge.stage-key`` label matches. An
    unreachable registry is reported once and then left alone.
    """
    from jetforge.core.labels import STAGE_KEY
    from jetforge.host.credentials import CredentialStore
    from jetforge.host.registry import RegistryClient, registry_locations

    locations = registry_locations(workspace.settings.registries, workspace.env)
    if not locations:
        return None
    client = RegistryClient(CredentialStore(workspace.env), timeout=5.0)
    arch = workspace.platform.arch
    down: set[str] = set()

    def find(stage: Stage) -> str | None:
        for location in locations:
            if str(location) in down:
                continue
            reference = location.repository(stage.image.name).with_tag(stage.image.tag)
            try:
                remote = client.inspect(reference, arch)
            except RegistryError as error:
                down.add(str(location))
                workspace.warn(f"{error}; not looked at again in this build")
                continue
            if remote is not None and remote.labels.get(STAGE_KEY) == stage.key:
                return str(reference)
        return None

    return find


def _ensure_base(workspace: Workspace, engine: CliEngine, base: str) -> str:
    """The base image's id, pulling it when it is not present."""
    info = engine.inspect(base)
    if info is None:
        workspace.note(f"pulling base image {base}")
        engine.pull(base, lambda _line: None)
        info = engine.inspect(base)
    if info is None:
        raise UsageError(
            f"base image '{base}' is neither present nor pullable; create it with "
            f"'jetforge bootstrap --distro {workspace.platform.distro} --tag {base}' "
            "or choose another with --base"
        )
    return info.id


def _logs_dir(request: BuildRequest, workspace: Workspace) -> Path:
    """A new, unique ``logs/<YYYYMMDD_HHMMSS>`` (or ``--logs``) directory, readable by its
    owner only (logs hold build commands and their output)."""
    root = logs_root(request, workspace)
    try:
        if request.logs is not None:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(root, os.W_OK):
                raise PermissionError(13, "not writable")
            check_only_files(root, "log directory")  # it may hold what earlier builds left
            return root
        stamp = time.strftime("%Y%m%d_%H%M%S")
        for attempt in range(1000):
            path = root / (stamp if attempt == 0 else f"{stamp}_{attempt}")
            try:
                path.mkdir(mode=0o700, parents=True)
            except FileExistsError:
                continue
            return path
    except UnwritableFileError as error:
        raise UsageError(f"--logs: {error}") from None
    except OSError as error:
        option = "--logs" if request.logs is not None else "logs directory"
        raise UsageError(
            f"{option}: cannot use {root}: {error.strerror or error} (name a writable directory)"
        ) from None
    raise UsageError(f"cannot create a log directory under {root}")
