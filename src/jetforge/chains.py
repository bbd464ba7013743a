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
from typing import TYPE_CHECKING, Protocol

from jetforge.context import built_dockerfile, read_context
from jetforge.core.lockfile import plan_mismatch
from jetforge.core.plan import Plan, PlanOptions, Stage, plan_build
from jetforge.core.resolve import Resolution, expand_requests, resolve
from jetforge.digests import Digests
from jetforge.engine.table import choose_engine
from jetforge.errors import JetforgeError, RegistryError, StageFailedError, UsageError
from jetforge.files import held
from jetforge.trust import trust_context

if TYPE_CHECKING:
    from jetforge.build import BuildOptions
    from jetforge.cache.builds import BuildCache
    from jetforge.core.catalog import Catalog
    from jetforge.engine.base import Engine
    from jetforge.engine.cli_engine import CliEngine
    from jetforge.lock import Pinned
    from jetforge.platform import Platform
    from jetforge.reporter import Reporter
    from jetforge.results import Summary
    from jetforge.settings import Settings


class Workspace(Protocol):
    """Where a command runs: the package catalog, platform, environment, settings and
    directories, and where its notes and warnings go (the CLI's session is one)."""

    @property
    def catalog(self) -> Catalog: ...
    @property
    def platform(self) -> Platform: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def cache_dir(self) -> Path: ...
    @property
    def data_dir(self) -> Path: ...

    env: Mapping[str, str]
    cwd: Path

    def note(self, message: str) -> None:
        """One informational line."""

    def warn(self, message: str) -> None:
        """One warning line."""

    def report_problems(self, *, each: bool) -> None:
        """Report the catalog's broken package definitions (one line, or each)."""


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
    where: Workspace,
    reporting: Callable[[], AbstractContextManager[Reporter]],
) -> Iterator[ChainOutcome]:
    """Build every chain of ``request``, yielding each outcome as it ends; a failed stage
    raises :class:`StageFailedError` unless ``skip_errors``. ``reporting`` gives the
    progress display of one chain."""
    from jetforge.build import Executor
    from jetforge.lock import pinned_base

    checked = check_request(request, where)
    locked, planning = checked.locked, checked.planning
    kind = choose_engine(request.engine, where.env, where.settings.engine)
    engine = kind.connect(where.env, memo=engine_memo(where))
    base = base_reference(request, where)
    if locked is not None:
        base = pinned_base(engine, base, locked)
        planning = replace(planning, base_image=base)
    base_id = _ensure_base(where, engine, base)
    planning = replace(planning, build_mode=engine.build_mode, base_id=base_id)
    plans = checked.plans(where, planning)
    options = _build_options(request, where, engine, plans)
    if locked is not None:
        options = [replace(chosen, locked=locked) for chosen in options]
    where.data_dir.mkdir(parents=True, exist_ok=True)
    if checked.farm:
        from jetforge.farm.run import farm_chains

        ends = farm_chains(
            request.workers, where, engine, (base, base_id), plans, options, reporting
        )
        with _building(where, engine, plans), contextlib.closing(ends):
            # a failure stops the farm's other work at once
            for end in ends:
                if end.failure is not None and not request.skip_errors:
                    raise end.failure
                chosen = options[plans.index(end.plan)]
                yield ChainOutcome(end.plan, chosen.logs_dir, end.summary, end.failure)
        return
    for number, (plan, chosen) in enumerate(zip(plans, options, strict=True), start=1):
        if len(plans) > 1:
            where.note(f"chain {number}/{len(plans)}: {plan.final_image}")
        try:
            with _building(where, engine, [plan]), reporting() as reporter:
                summary = Executor(plan, engine, chosen, reporter).execute()
        except StageFailedError as failure:
            if not request.skip_errors:
                raise
            yield ChainOutcome(plan, chosen.logs_dir, failure=failure)
            continue
        yield ChainOutcome(plan, chosen.logs_dir, summary)


def engine_memo(where: Workspace) -> Path:
    """Where what connecting learns about the engine's program is kept."""
    return where.cache_dir / "engines.json"


@contextlib.contextmanager
def _building(where: Workspace, engine: Engine, plans: list[Plan]) -> Iterator[None]:
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
            path = where.cache_dir / "building" / f"{digest}.lock"
            stack.enter_context(held(path, functools.partial(_waiting, where, final)))
        yield


def _waiting(where: Workspace, final: str, holder: str) -> None:
    where.note(f"waiting for another jetforge build of {final} (process {holder})")


def _build_options(
    request: BuildRequest, where: Workspace, engine: Engine, plans: list[Plan]
) -> list[BuildOptions]:
    """How each plan is executed: its logs directory, tests, push, registry lookup and the
    package cache's flags."""
    from jetforge.build import BuildOptions

    package_cache = build_cache(where, engine)
    logs = _logs_dir(request, where)
    remote = None if request.rebuild else _registry_lookup(where)
    return [
        BuildOptions(
            logs_dir=logs / plan.final_image.name if len(plans) > 1 else logs,
            data_dir=where.data_dir,
            results_dir=where.cache_dir / "test-results",
            rebuild=request.rebuild,
            skip_tests=request.skip_tests,
            test_only=request.test_only,
            push=request.push,
            resume=request.resume,
            remote=remote,
            build_extra=package_cache.build_extra,
            run_mounts=package_cache.run_mounts,
            lock=True,
            lock_file=where.cwd / request.lock_file if request.lock_file else None,
        )
        for plan in plans
    ]


def simulated_plans(request: BuildRequest, where: Workspace) -> Simulation:
    """The plans of ``request`` without building, refused where a build refuses them
    (:func:`check_request`, and a locked build's chain, platform and base): with an engine
    that answers, exactly what a build would run (its build mode, the base image's id, the
    cache's flags, the Dockerfiles it writes); without one, the plan from the base image's
    reference and the configured engine's usual mode (the base image's id unchecked)."""
    checked = check_request(request, where)
    planning = checked.planning
    kind = choose_engine(request.engine, where.env, where.settings.engine)
    try:
        engine = kind.connect(where.env, memo=engine_memo(where))
    except JetforgeError:
        plans = checked.plans(where, replace(planning, build_mode=kind.default_build_mode))
        return Simulation(plans, kind.name, dockerfiles=_dockerfiles(plans, ()))
    base = base_reference(request, where)
    if checked.locked is not None:
        from jetforge.lock import pinned_base

        base = pinned_base(engine, base, checked.locked)
        planning = replace(planning, base_image=base)
    info = engine.inspect(base)
    if info is None:
        where.note(f"base image {base} is not here: keys use its name (a build pulls it)")
    base_id = info.id if info else None
    plans = checked.plans(where, replace(planning, build_mode=engine.build_mode, base_id=base_id))
    cache = build_cache(where, engine)
    dockerfiles = _dockerfiles(plans, cache.run_mounts)
    return Simulation(plans, engine.program, cache.build_extra, base_id, dockerfiles)


def _dockerfiles(plans: list[Plan], run_mounts: tuple[str, ...]) -> tuple[dict[int, str], ...]:
    """For each plan, the Dockerfiles its build writes (by stage index) where they differ
    from the package's own by more than the stage key reset every build adds: the plan's
    edits, a lock's pins, the package cache's mounts."""
    return tuple(
        {
            s.index: built_dockerfile(s, run_mounts)
            for s in plan.stages
            if s.edits or s.pins or run_mounts
        }
        for plan in plans
    )


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request as a build checks it before the engine is asked anything: its chains,
    the lockfile it takes, and its plan options (the lockfile's pins in them)."""

    chains: list[Resolution]
    locked: Pinned | None
    planning: PlanOptions
    farm: bool

    def plans(self, where: Workspace, planning: PlanOptions) -> list[Plan]:
        """The plans with ``planning`` (these options, completed); a locked build's are
        refused unless they are its lockfile's chain, on its platform and base image (the
        base when ``planning`` has its id)."""
        plans = make_plans(where, self.chains, planning)
        locked = self.locked
        if locked is not None:
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


def check_request(request: BuildRequest, where: Workspace) -> CheckedRequest:
    """What a build refuses before the engine is asked anything, for ``build`` and
    ``build --simulate`` alike: the packages, ``--lock`` and ``--locked``, the lockfile and
    ``--upgrade``, the ``--workers`` and their registry."""
    from jetforge.lock import check_lock_options, read_pinned

    chains = resolve_chains(request, where)
    check_lock_options(request.lock_file, request.locked, request.multiple, where.cwd)
    locked = None
    if request.locked is not None:
        locked = read_pinned(where.cwd / request.locked, request.upgrade, refresh=request.refresh)
    farm = request.workers not in ((), ("local",))
    if farm:
        from jetforge.farm.run import check_farm

        check_farm(request.workers, where)
    planning = plan_options(request, where)
    if locked is not None:
        planning = replace(planning, locked=locked.lock, upgrade=locked.upgrade)
    return CheckedRequest(chains, locked, planning, farm)


def resolve_chains(request: BuildRequest, where: Workspace) -> list[Resolution]:
    """Resolve every chain the request asks for (one, or one per package with
    ``multiple``); bad requests fail here, before the engine is asked anything."""
    if not request.packages:
        raise UsageError("build: name at least one PACKAGE ('jetforge list' shows them)")
    catalog = where.catalog
    where.report_problems(each=False)
    requests = expand_requests(catalog, list(request.packages))
    groups = [[one] for one in requests] if request.multiple else [requests]
    return [resolve(catalog, group, where.env) for group in groups]


def base_reference(request: BuildRequest, where: Workspace) -> str:
    """The first stage's base: ``--base``, the config file's image for the distro, or the
    platform's default (SPEC section 7)."""
    platform = where.platform
    return (
        request.base or where.settings.base_image_for(str(platform.distro)) or platform.base_image
    )


def plan_options(request: BuildRequest, where: Workspace) -> PlanOptions:
    """The plan options of the request; the build mode and base id come later."""
    return PlanOptions(
        name=request.name,
        base_image=base_reference(request, where),
        build_args=(*_proxy_args(request, where.env), *request.build_args),
        build_flags=request.build_flags,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        trust_context=trust_context(request.ca_bundle, where.env, where.cache_dir),
        no_github_api=request.no_github_api,
        outputs=(_logs_root(request, where), where.cache_dir),
    )


def make_plans(where: Workspace, chains: list[Resolution], planning: PlanOptions) -> list[Plan]:
    """The plan of each chain; context files are hashed once until they change."""
    digests = Digests(where.cache_dir / "digests")
    read = functools.partial(read_context, digest=digests.digest)
    plans = [plan_build(chain, where.platform, planning, read) for chain in chains]
    digests.save()
    return plans


def build_cache(where: Workspace, engine: Engine) -> BuildCache:
    """The package cache for one build: sources probed, secrets written, and every note
    and warning (one line each) passed on."""
    from jetforge.cache.builds import prepare_build_cache
    from jetforge.cache.server import CachePaths
    from jetforge.cache.sources import mirrors_from, pypi_from

    settings = where.settings
    setup = prepare_build_cache(
        CachePaths.under(where.cache_dir),
        mirrors=mirrors_from(settings.cache_urls, where.env),
        pypi=pypi_from(settings.pypi_url, where.env),
        build_mode=engine.build_mode,
        secrets=engine.supports_secrets,
        platform=where.platform.tag_postfix,
        env=where.env,
    )
    for line in setup.warnings:
        where.warn(line)
    for line in setup.notes:
        where.note(line)
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


def _registry_lookup(where: Workspace) -> Callable[[Stage], str | None] | None:
    """A finder of stage images in the configured registries (SPEC 6.4), or None.

    A stage image is looked up as ``<registry>/<namespace>/NAME:TAG-<variant>`` (where
    ``--push`` puts it) and reused when its ``jetforge.stage-key`` label matches. An
    unreachable registry is reported once and then left alone.
    """
    from jetforge.core.labels import STAGE_KEY
    from jetforge.credentials import CredentialStore
    from jetforge.registry import RegistryClient, registry_locations

    locations = registry_locations(where.settings.registries, where.env)
    if not locations:
        return None
    client = RegistryClient(CredentialStore(where.env), timeout=5.0)
    arch = where.platform.arch
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
                where.warn(f"registry {location}: {error}; not looked at again in this build")
                continue
            if remote is not None and remote.labels.get(STAGE_KEY) == stage.key:
                return str(reference)
        return None

    return find


def _ensure_base(where: Workspace, engine: CliEngine, base: str) -> str:
    """The base image's id, pulling it when it is not present."""
    info = engine.inspect(base)
    if info is None:
        where.note(f"pulling base image {base}")
        engine.pull(base, lambda _line: None)
        info = engine.inspect(base)
    if info is None:
        raise UsageError(
            f"base image '{base}' is neither present nor pullable; create it with "
            f"'jetforge bootstrap --distro {where.platform.distro} --tag {base}' "
            "or choose another with --base"
        )
    return info.id


def _logs_root(request: BuildRequest, where: Workspace) -> Path:
    """``--logs``, else the directory the dated log directories go to."""
    if request.logs is not None:
        return where.cwd / request.logs
    return where.settings.logs_dir or where.cwd / "logs"


def _logs_dir(request: BuildRequest, where: Workspace) -> Path:
    """A new, unique ``logs/<YYYYMMDD_HHMMSS>`` (or ``--logs``) directory, readable by its
    owner only (logs hold build commands and their output)."""
    root = _logs_root(request, where)
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
