"""``jetforge doctor``: checks of what builds and runs need, each a value with a remedy.

The ``check_*`` functions are pure: they turn what was probed into a :class:`Check`. The
two probes here (:func:`free_bytes`, :func:`probe_url`) are the only side effects; the
engine and the platform are probed by their own modules. A ``problem`` is something that
stops a build (no engine, a stopped daemon, a full disk, an unparsable platform override);
anything that only limits what works is a ``warning``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jetforge.cache.sources import Probe
from jetforge.core.platform import Platform
from jetforge.engine.base import Builder, Engine, EngineInfo
from jetforge.errors import EngineUnavailableError, PlatformError
from jetforge.host.credentials import DOCKER_HUB, HUB_API
from jetforge.host.probe import HostProbe, choose_gpu
from jetforge.host.registry import RegistryLocation, describe_failure, registry_scheme
from jetforge.host.workers import Worker

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
    """Which builder the engine's builds use (SPEC section 11)."""
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
    host = HUB_API if location.host == DOCKER_HUB else location.host
    return f"{registry_scheme(host)}://{host}/v2/"


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


def probe_url(url: str, timeout: float = URL_TIMEOUT) -> str:
    """Empty when ``url`` answers like a server that is up (an answer other than
    404 or 5xx; an authentication request counts as up); else a short reason."""
    import requests  # here, not at the top, as in jetforge.host.registry

    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as error:
        return describe_failure(error)
    with response:
        if response.status_code >= 500 or response.status_code == 404:
            return f"answered HTTP {response.status_code}"
    return ""
