"""``jetforge doctor``: checks of what builds and runs need, each a value with a remedy.

:func:`iter_checks` probes (the config file, the engine and its builder, GPU access, disk,
workers, registries, package sources, the platform) and yields the checks in report
order. The ``check_*`` functions are pure: they turn what was probed into a
:class:`Check`. A ``problem`` is something that
stops a build (no engine, a stopped daemon, a full disk, an unparsable platform override);
anything that only limits what works is a ``warning``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from jetforge.cache.control import CachePaths, read_state
from jetforge.cache.sources import Probe, is_cache_off, mirrors_from, probe_build_sources, pypi_from
from jetforge.core.platform import Platform
from jetforge.engine.base import Builder, Engine, EngineInfo
from jetforge.engine.table import DEFAULT, ENGINES, choose_engine, engine_class, engine_names
from jetforge.errors import EngineUnavailableError, PlatformError, UsageError
from jetforge.host.devices import HOST_ROOT_VARIABLE, HostProbe, choose_gpu, probe_host
from jetforge.host.platform import detect_platform
from jetforge.host.registry import (
    RegistryLocation,
    probe_registry,
    registry_locations,
    version_url,
)
from jetforge.host.settings import Settings, load_settings
from jetforge.host.workers import Worker
from jetforge.ops.workspace import Workspace

Status = Literal["ok", "warning", "problem"]
OK: Status = "ok"
WARNING: Status = "warning"
PROBLEM: Status = "problem"
GIB = 1024**3
WARN_FREE_BYTES = 20 * GIB
MIN_FREE_BYTES = 5 * GIB
URL_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: what was checked, how it stands, and how to fix it."""

    name: str
    status: Status
    detail: str
    remedy: str = ""

    def line(self) -> str:
        """``problem  engine    the daemon is not running; fix: systemctl start docker``."""
        fix = f"; fix: {self.remedy}" if self.remedy else ""
        return f"{self.status:<8} {self.name:<9} {self.detail}{fix}"

    def to_json(self) -> dict[str, str]:
        """The check as a JSON object."""
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "remedy": self.remedy,
        }


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check found something that stops a build, else 0."""
    return 1 if any(check.status == PROBLEM for check in checks) else 0


def check_engine(name: str, info: EngineInfo) -> Check:
    """The engine answered; its version and data root."""
    root = f", data root {info.data_root}" if info.data_root else ""
    return Check("engine", OK, f"{name} {info.version or '(version unknown)'} is running{root}")


def check_worker(worker: Worker, found: EngineInfo | EngineUnavailableError) -> Check:
    """A configured worker: its engine answered at its endpoint, or why not (a build that
    names it cannot start)."""
    where = worker.endpoint or "its default socket"
    if isinstance(found, EngineUnavailableError):
        detail = f"{worker.name}: {worker.engine} at {where}: {found.problem}"
        return Check("worker", PROBLEM, detail, found.remedy)
    labels = " ".join(f"{key}={value}" for key, value in worker.labels) or "no labels"
    version = found.version or "(version unknown)"
    detail = f"{worker.name}: {worker.engine} {version} at {where}; {labels}; {worker.jobs} job(s)"
    return Check("worker", OK, detail)


def check_engine_error(error: EngineUnavailableError) -> Check:
    """The engine is missing or its daemon is down: nothing can be built."""
    return Check("engine", PROBLEM, f"{error.engine}: {error.problem}", error.remedy)


def check_builder(builder: Builder) -> Check:
    """Which builder the engine's builds use (docs/builds.md, "Engines")."""
    return Check("builder", OK if builder.good else WARNING, builder.detail, builder.remedy)


def check_gpu(
    engine: Engine, probe: HostProbe, info: EngineInfo, platform: Platform | None
) -> list[Check]:
    """How containers reach the GPU (as ``jetforge run`` probes it); on Jetson, also
    whether builds see it (docker's default runtime must be ``nvidia`` there)."""
    access = choose_gpu(probe)
    checks = []
    if access.kind == "none":
        checks.append(
            Check("gpu", WARNING, f"containers get no GPU: {access.detail}", engine.gpu_setup)
        )
    else:
        option = " ".join(access.options)
        checks.append(Check("gpu", OK, f"{access.detail}; run uses {option}"))
    on_jetson = platform is not None and platform.is_jetson
    needs_default = on_jetson and engine.jetson_builds_need_default_runtime
    if needs_default and "nvidia" in info.runtimes and info.default_runtime != "nvidia":
        checks.append(
            Check(
                "gpu",
                WARNING,
                f"builds cannot use the GPU: docker's default runtime is "
                f"{info.default_runtime or 'runc'}, not nvidia",
                'set "default-runtime": "nvidia" in /etc/docker/daemon.json, then: '
                "systemctl restart docker",
            )
        )
    return checks


def _gib(count: int) -> str:
    return f"{count / GIB:.1f} GiB"


def check_disk(path: str, free: int | None, prune: str = "docker system prune") -> Check:
    """Free space where the engine keeps images: a warning under 20 GiB, a problem
    under 5 GiB."""
    if free is None:
        return Check("disk", WARNING, f"cannot read the free space of {path or 'the data root'}")
    if free < MIN_FREE_BYTES:
        return Check(
            "disk",
            PROBLEM,
            f"only {_gib(free)} free in {path}; builds need at least {_gib(MIN_FREE_BYTES)}",
            f"{prune} (removes unused images, containers and build cache)",
        )
    if free < WARN_FREE_BYTES:
        return Check(
            "disk",
            WARNING,
            f"{_gib(free)} free in {path}; large stacks need {_gib(WARN_FREE_BYTES)} or more",
            f"{prune} (removes unused images, containers and build cache)",
        )
    return Check("disk", OK, f"{_gib(free)} free in {path}")


def registry_url(location: RegistryLocation) -> str:
    """The ``/v2/`` endpoint of a registry (the distribution API's version check)."""
    return version_url(location)


def check_registry(location: RegistryLocation, url: str, problem: str) -> Check:
    """A registry: reachable, or a warning (builds go on without it)."""
    if not problem:
        return Check("registry", OK, f"registry {location} answers at {url}")
    return Check(
        "registry",
        WARNING,
        f"registry {location} at {url}: {problem}",
        "start it, or remove it from jetforge.toml",
    )


def check_source(probe: Probe) -> Check:
    """One package source of builds: answering, answering oddly, or down (builds then
    leave it out and go on with the others)."""
    source = probe.source
    if probe.up and not probe.problem:
        return Check("cache", OK, f"package source {source.described} answers")
    fix = {
        "local": "jetforge cache serve --background",
        "mirror": "correct or remove it (cache_urls in jetforge.toml, or JETFORGE_CACHE_URLS)",
        "pypi": "check the network and proxy, or set JETFORGE_PYPI_URL to a reachable index",
    }[source.kind]
    if probe.up:
        return Check(
            "cache",
            WARNING,
            f"package source {source.described} answers {probe.problem}; builds still use it",
            fix,
        )
    return Check(
        "cache",
        WARNING,
        f"package source {source.described} is down ({probe.problem}); builds leave it out",
        fix,
    )


def check_platform(platform: Platform | None, error: PlatformError | None = None) -> list[Check]:
    """The detected platform, and whether its L4T release is one the tables know."""
    if platform is None:
        return [
            Check(
                "platform",
                PROBLEM,
                str(error),
                "correct or unset the variable (see 'jetforge platform --help')",
            )
        ]
    if platform.is_jetson:
        detail = f"Jetson, L4T {platform.l4t_version} (JetPack {platform.jetpack_version})"
    else:
        detail = platform.cuda_arch
    detail += f", CUDA {platform.cuda_version}, {platform.distro}; tags end in "
    detail += platform.tag_postfix
    checks = [Check("platform", OK, detail)]
    checks += [
        Check("platform", WARNING, warning, "set the variable it names, or use --target")
        for warning in platform.warnings
    ]
    return checks


# --- probes --------------------------------------------------------------------------------


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def host_root(given: str | None, env: Mapping[str, str]) -> Path:
    """The host root the checks look at: ``given`` (a test's), else
    ``JETFORGE_HOST_ROOT``, else ``/``."""
    return Path(given or env.get(HOST_ROOT_VARIABLE) or "/")


def iter_checks(workspace: Workspace, engine_flag: str | None, root: Path) -> Iterator[Check]:
    """Every check, in report order, for the engine ``engine_flag`` (``--engine``) and the
    host under ``root``."""
    platform: Platform | None = None
    try:
        platform = detect_platform(workspace.env, root=root)
    except PlatformError as error:
        platform_checks = check_platform(None, error)
    else:
        platform_checks = check_platform(platform)
    settings, config_check = _settings(workspace)
    yield config_check
    yield from _engine_checks(workspace, settings, engine_flag, root, platform)
    yield from _worker_checks(workspace, settings)
    yield from _endpoint_checks(workspace, settings, platform)
    yield from platform_checks


def _settings(workspace: Workspace) -> tuple[Settings, Check]:
    try:
        settings = load_settings(workspace.cwd, workspace.env, engine_names)
    except UsageError as error:
        return Settings(), Check("config", PROBLEM, str(error), "correct the file")
    where = f"read {settings.path}" if settings.path else "no jetforge.toml; using defaults"
    return settings, Check("config", OK, where)


def _engine_checks(
    workspace: Workspace,
    settings: Settings,
    engine_flag: str | None,
    root: Path,
    platform: Platform | None,
) -> Iterator[Check]:
    try:
        kind = choose_engine(engine_flag, workspace.env, settings.engine)
        engine = kind.connect(workspace.env)
        info = engine.info()
    except EngineUnavailableError as error:
        yield check_engine_error(error)
        return
    except UsageError as error:
        yield Check("engine", PROBLEM, str(error), f"choose {' or '.join(ENGINES)}")
        return
    yield check_engine(engine.name, info)
    yield check_builder(engine.builder())
    yield from check_gpu(
        engine,
        probe_host(
            root,
            workspace.env,
            runtimes=info.runtimes,
            cdi_spec_dirs=info.cdi_spec_dirs,
            gpus_flag=engine.gpus_flag,
        ),
        info,
        platform,
    )
    data_root = info.data_root
    prune = f"{engine.name} system prune"
    if not data_root:
        yield check_disk("", None, prune)
        return
    yield check_disk(data_root, free_bytes(root / data_root.lstrip("/")), prune)


def _worker_checks(workspace: Workspace, settings: Settings) -> Iterator[Check]:
    """Every worker of jetforge.toml, asked at its endpoint."""
    for worker in settings.workers:
        chosen = replace(worker, engine=worker.engine or settings.engine or DEFAULT)
        try:
            engine = engine_class(chosen.engine).at(chosen.endpoint, workspace.env)
            yield check_worker(chosen, engine.info())
        except EngineUnavailableError as error:
            yield check_worker(chosen, error)


def _endpoint_checks(
    workspace: Workspace, settings: Settings, platform: Platform | None
) -> Iterator[Check]:
    try:
        locations = registry_locations(settings.registries, workspace.env)
    except UsageError as error:
        yield Check("registry", WARNING, str(error), "correct 'registries' in jetforge.toml")
        locations = ()
    for location in locations:
        url = registry_url(location)
        yield check_registry(location, url, probe_registry(url, URL_TIMEOUT).problem)
    yield from _cache_checks(workspace, settings, platform)


def _cache_checks(
    workspace: Workspace, settings: Settings, platform: Platform | None
) -> Iterator[Check]:
    """The package sources a build would use, probed the way a build probes them."""
    env = workspace.env
    state = read_state(CachePaths.under(workspace.cache_home))
    try:
        mirrors = mirrors_from(settings.cache_urls, env)
        pypi = pypi_from(settings.pypi_url, env)
    except UsageError as error:
        yield Check("cache", PROBLEM, str(error), "correct the variable")
        return
    if is_cache_off(env):
        yield Check("cache", OK, "JETFORGE_CACHE=off: builds use no package cache")
        return
    if state is None and not mirrors:
        yield Check(
            "cache",
            OK,
            "no package cache or mirror: builds install from the images' own sources "
            "('jetforge cache serve --background' starts a local cache)",
        )
        return
    postfix = platform.tag_postfix if platform is not None else ""
    for probe in probe_build_sources(state, mirrors, pypi, postfix, env):
        yield check_source(probe)
