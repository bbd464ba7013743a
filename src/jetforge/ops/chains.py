"""Build the chains a request names (SPEC section 6): resolve, connect the engine, make
sure of the base image, plan, set up the package cache and the registry lookup, then run
each plan's executor. The CLI turns its arguments into a :class:`BuildRequest` and
renders what :func:`build_chains` yields; nothing here prints.

Imported by builds only: a simulated build needs :func:`simulated_plans`, which imports
neither the executor, the package cache, the registry client nor the progress display.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.plan import Plan, PlanOptions, Stage, plan_build
from jetforge.core.resolve import Resolution, expand_requests, resolve
from jetforge.engine.table import choose_engine
from jetforge.errors import JetforgeError, RegistryError, StageFailedError, UsageError
from jetforge.host.context import read_context
from jetforge.host.digests import Digests
from jetforge.host.files import held
from jetforge.host.trust import trust_context

if TYPE_CHECKING:
    from jetforge.cache.builds import BuildCache
    from jetforge.engine.base import Engine
    from jetforge.engine.cli_engine import CliEngine
    from jetforge.ops.executor import BuildOptions
    from jetforge.ops.lockstep import Pinned
    from jetforge.ops.results import Summary
    from jetforge.ops.workspace import Workspace
    from jetforge.reporter import Reporter


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What to build and how: ``jetforge build``'s options once parsed."""

    packages: tuple[str, ...]
    name: str | None = None
    base: str | None = None
    multiple: bool = False
    skip_errors: bool = False
    skip_tests: tuple[str, ...] = ()
    test_only: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    build_flags: str = ""
    push: str | None = None
    no_github_api: bool = False
    logs: Path | None = None  # one directory for this build's logs (--logs)
    use_proxy: bool = False
    ca_bundle: str | None = None
    engine: str | None = None
    workers: tuple[str, ...] = ()  # --workers: names of jetforge.toml's workers
    rebuild: bool = False
    resume: str = ""  # the command that resumes a failed build
    lock_file: Path | None = None  # --lock: a copy of the lockfile goes there
    locked: Path | None = None  # --locked: the lockfile the build must match
    # jetforge lock: ``locked``'s pins apply, except to ``upgrade``'s names, and nothing
    # else may move; the chain may differ from the lockfile's
    refresh: bool = False
    upgrade: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChainOutcome:
    """One chain's result: its summary, or (with ``skip_errors``) the failure."""

    plan: Plan
    logs_dir: Path
    summary: Summary | None = None
    failure: StageFailedError | None = None


@dataclass(frozen=True, slots=True)
class Simulation:
    """The plans a build would run, with the engine program and the flags it would add."""

    plans: list[Plan]
    program: str
    extra: tuple[str, ...] = ()
    base_id: str | None = None  # the keys' base: its id, or (None) its name
    # per plan, the Dockerfile text its build writes and builds for a stage (by index)
    # when it is not the package's own (the plan's edits, a lock's pins, RUN mounts)
    dockerfiles: tuple[dict[int, str], ...] = ()


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
    locked, planning = checked.locked, checked.planning
    engine = choose_engine(request.engine, workspace.env, workspace.settings.engine).connect(
        workspace.env
    )
    workspace.note(builder_line(engine))
    base = base_reference(request, workspace)
    if locked is not None:
        base = pinned_base(engine, base, locked)
        planning = replace(planning, base_image=base)
    base_id = _ensure_base(workspace, engine, base)
    planning = replace(planning, build_mode=engine.build_mode, base_id=base_id)
    plans = checked.plans(workspace, planning)
    options = _build_options(request, workspace, engine, plans)
    if locked is not None:
        options = [replace(chosen, locked=locked) for chosen in options]
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    if checked.farm:
        from jetforge.ops.farm.run import farm_chains

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
    request: BuildRequest, workspace: Workspace, engine: Engine, plans: list[Plan]
) -> list[BuildOptions]:
    """How each plan is executed: its logs directory, tests, push, registry lookup and the
    package cache's flags."""
    from jetforge.ops.executor import BuildOptions

    package_cache = build_cache(workspace, engine)
    logs = _logs_dir(request, workspace)
    remote = None if request.rebuild else _registry_lookup(workspace)
    return [
        BuildOptions(
            logs_dir=logs / plan.final_image.name if len(plans) > 1 else logs,
            data_dir=workspace.data_dir,
            results_dir=workspace.state_dir / "test-results",
            state_dir=workspace.state_dir,
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
        )
        for plan in plans
    ]


def simulated_plans(request: BuildRequest, workspace: Workspace) -> Simulation:
    """The plans of ``request`` without building, refused where a build refuses them
    (:func:`check_request`, and a locked build's chain, platform and base): with an engine
    that answers, exactly what a build would run (its build mode, the base image's id, the
    cache's flags, the Dockerfiles it writes); without one, the plan from the base image's
    reference and the configured engine's usual mode (the base image's id unchecked)."""
    checked = check_request(request, workspace)
    planning = checked.planning
    kind = choose_engine(request.engine, workspace.env, workspace.settings.engine)
    try:
        engine = kind.connect(workspace.env)
    except JetforgeError:
        plans = checked.plans(workspace, replace(planning, build_mode=kind.default_build_mode))
        return Simulation(plans, kind.name, dockerfiles=_dockerfiles(plans, ()))
    base = base_reference(request, workspace)
    if checked.locked is not None:
        from jetforge.ops.lockstep import pinned_base

        base = pinned_base(engine, base, checked.locked)
        planning = replace(planning, base_image=base)
    info = engine.inspect(base)
    if info is None:
        workspace.note(f"base image {base} is not here: keys use its name (a build pulls it)")
    base_id = info.id if info else None
    plans = checked.plans(
        workspace, replace(planning, build_mode=engine.build_mode, base_id=base_id)
    )
    cache = build_cache(workspace, engine)
    dockerfiles = _dockerfiles(plans, cache.run_mounts)
    return Simulation(plans, engine.program, cache.build_extra, base_id, dockerfiles)


def _dockerfiles(plans: list[Plan], run_mounts: tuple[str, ...]) -> tuple[dict[int, str], ...]:
    """For each plan, the Dockerfiles its build writes (by stage index) where they differ
    from the package's own by more than the stage key reset every build adds: the plan's
    edits, a lock's pins, the package cache's mounts."""
    return tuple(
        {s.index: _built(s, run_mounts) for s in plan.stages if s.edits or s.pins or run_mounts}
        for plan in plans
    )


def _built(stage: Stage, run_mounts: tuple[str, ...]) -> str:
    from jetforge.cache.builds import built_dockerfile  # here, not at the top: start-up time

    return built_dockerfile(stage, run_mounts)


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request as a build checks it before the engine is asked anything: its chains,
    the lockfile it takes, and its plan options (the lockfile's pins in them)."""

    chains: list[Resolution]
    locked: Pinned | None
    planning: PlanOptions
    farm: bool

    def plans(self, workspace: Workspace, planning: PlanOptions) -> list[Plan]:
        """The plans with ``planning`` (these options, completed); a locked build's are
        refused unless they are its lockfile's chain, on its platform and base image (the
        base when ``planning`` has its id)."""
        plans = make_plans(workspace, self.chains, planning)
        locked = self.locked
        if locked is not None:
            from jetforge.core.lockfile import plan_mismatch  # a locked build's

            problem = plan_mismatch(
                locked.lock,
                plans[0],
                planning.base_id,
                chain=locked.strict,
                base="base" not in locked.upgrade,
            )
            if problem:
                raise UsageError(f"{locked.option} {locked.path}: {problem}")
        return plans


def check_request(request: BuildRequest, workspace: Workspace) -> CheckedRequest:
    """What a build refuses before the engine is asked anything, for ``build`` and
    ``build --simulate`` alike: the packages, ``--lock`` and ``--locked``, the lockfile and
    ``--upgrade``, the ``--workers`` and their registry."""
    chains = resolve_chains(request, workspace)
    locked = None
    if request.lock_file is not None or request.locked is not None:
        # here, not at the top: start-up time (a build without a lockfile needs none of it)
        from jetforge.ops.lockstep import check_lock_options, read_pinned

        check_lock_options(request.lock_file, request.locked, request.multiple, workspace.cwd)
        if request.locked is not None:
            locked = read_pinned(
                workspace.cwd / request.locked, request.upgrade, refresh=request.refresh
            )
    farm = request.workers not in ((), ("local",))
    if farm:
        from jetforge.ops.farm.run import check_farm

        check_farm(request.workers, workspace)
    planning = plan_options(request, workspace)
    if locked is not None:
        planning = replace(planning, locked=locked.lock, upgrade=locked.upgrade)
    return CheckedRequest(chains, locked, planning, farm)


def resolve_chains(request: BuildRequest, workspace: Workspace) -> list[Resolution]:
    """Resolve every chain the request asks for (one, or one per package with
    ``multiple``); bad requests fail here, before the engine is asked anything."""
    if not request.packages:
        raise UsageError("build: name at least one PACKAGE ('jetforge list' shows them)")
    catalog = workspace.catalog
    workspace.report_problems(each=False)
    requests = expand_requests(catalog, list(request.packages))
    groups = [[one] for one in requests] if request.multiple else [requests]
    return [resolve(catalog, group, workspace.env) for group in groups]


def base_reference(request: BuildRequest, workspace: Workspace) -> str:
    """The first stage's base: ``--base``, the config file's image for the distro, or the
    platform's default (SPEC section 7)."""
    platform = workspace.platform
    return (
        request.base
        or workspace.settings.base_image_for(str(platform.distro))
        or platform.base_image
    )


def plan_options(request: BuildRequest, workspace: Workspace) -> PlanOptions:
    """The plan options of the request; the build mode and base id come later."""
    return PlanOptions(
        name=request.name,
        base_image=base_reference(request, workspace),
        build_args=(*_proxy_args(request, workspace.env), *request.build_args),
        build_flags=request.build_flags,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # (no datetime: start-up)
        trust_context=trust_context(request.ca_bundle, workspace.env, workspace.cache_dir),
        no_github_api=request.no_github_api,
        outputs=(_logs_root(request, workspace), workspace.cache_dir),
    )


def make_plans(workspace: Workspace, chains: list[Resolution], planning: PlanOptions) -> list[Plan]:
    """The plan of each chain; context files are hashed once until they change."""
    digests = Digests(workspace.cache_dir / "digests.json")
    read = functools.partial(read_context, digest=digests.digest)
    plans = [plan_build(chain, workspace.platform, planning, read) for chain in chains]
    digests.save()
    return plans


def build_cache(workspace: Workspace, engine: Engine) -> BuildCache:
    """The package cache for one build: sources probed, secrets written, and every note
    and warning (one line each) passed on."""
    from jetforge.cache.builds import prepare_build_cache
    from jetforge.cache.control import CachePaths
    from jetforge.cache.sources import mirrors_from, pypi_from

    settings = workspace.settings
    setup = prepare_build_cache(
        CachePaths.under(workspace.cache_dir),
        mirrors=mirrors_from(settings.cache_urls, workspace.env),
        pypi=pypi_from(settings.pypi_url, workspace.env),
        build_mode=engine.build_mode,
        secrets=engine.supports_secrets,
        platform=workspace.platform.tag_postfix,
        env=workspace.env,
    )
    for line in setup.warnings:
        workspace.warn(line)
    for line in setup.notes:
        workspace.note(line)
    return setup


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")


def _proxy_args(request: BuildRequest, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The host's proxy variables as build args (``use_proxy``); engines keep these
    predefined arguments out of the image history."""
    if not request.use_proxy:
        return ()
    return tuple(
        (variable, env[variable])
        for name in _PROXY_VARIABLES
        for variable in (name, name.lower())
        if env.get(variable)
    )


def _registry_lookup(workspace: Workspace) -> Callable[[Stage], str | None] | None:
    """A finder of stage images in the configured registries (SPEC 6.4), or None.

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
                workspace.warn(f"registry {location}: {error}; not looked at again in this build")
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


def _logs_root(request: BuildRequest, workspace: Workspace) -> Path:
    """``--logs``, else the directory the dated log directories go to."""
    if request.logs is not None:
        return workspace.cwd / request.logs
    return workspace.settings.logs_dir or workspace.cwd / "logs"


def _logs_dir(request: BuildRequest, workspace: Workspace) -> Path:
    """A new, unique ``logs/<YYYYMMDD_HHMMSS>`` (or ``--logs``) directory, readable by its
    owner only (logs hold build commands and their output)."""
    root = _logs_root(request, workspace)
    try:
        if request.logs is not None:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(root, os.W_OK):
                raise PermissionError(13, "not writable")
            return root
        stamp = time.strftime("%Y%m%d_%H%M%S")
        for attempt in range(1000):
            path = root / (stamp if attempt == 0 else f"{stamp}_{attempt}")
            try:
                path.mkdir(mode=0o700, parents=True)
            except FileExistsError:
                continue
            return path
    except OSError as error:
        option = "--logs" if request.logs is not None else "logs directory"
        raise UsageError(
            f"{option}: cannot use {root}: {error.strerror or error} (name a writable directory)"
        ) from None
    raise UsageError(f"cannot create a log directory under {root}")
