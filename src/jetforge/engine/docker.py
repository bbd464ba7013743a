"""Docker: BuildKit through buildx, in-daemon BuildKit or the legacy builder."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from jetforge.engine.api import ENGINE_API, docker_socket
from jetforge.engine.base import Builder, EngineInfo
from jetforge.engine.cli_engine import CliEngine, E, first_line, json_object
from jetforge.errors import EngineUnavailableError, UsageError
from jetforge.host.commands import Completed, Runner
from jetforge.host.runner import run_process

BUILD_MODE_VARIABLE = "JETFORGE_BUILD_MODE"
_MODES = ("buildkit", "buildx", "legacy")
# Where the docker program looks for its plugins (docker-buildx among them), after
# $DOCKER_CONFIG/cli-plugins.
PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
SETTLED_NS = 1_000_000_000  # a file changed more recently may change again unseen


@dataclass
class DockerEngine(CliEngine):
    """The ``docker`` program and its daemon."""

    name: ClassVar[str] = "docker"
    default_build_mode: ClassVar[str] = "buildkit"
    builders: ClassVar[Mapping[str, Builder]] = {
        "buildx": Builder(True, "BuildKit through the docker buildx plugin"),
        "buildkit": Builder(True, "BuildKit in the daemon (DOCKER_BUILDKIT=1)"),
        "legacy": Builder(
            False,
            "legacy builder, no BuildKit: no build secrets, so builds use no package cache, "
            "and no parallel steps (docker clients from 23 on need the buildx plugin for "
            "BuildKit)",
            "install the buildx plugin (package docker-buildx-plugin from Docker's apt "
            "repository, or docker-buildx)",
        ),
    }
    secret_modes: ClassVar[frozenset[str]] = frozenset(("buildkit", "buildx"))
    endpoint_variables: ClassVar[tuple[str, ...]] = ("DOCKER_HOST",)
    gpus_flag: ClassVar[bool] = True
    gpu_setup: ClassVar[str] = (
        "install nvidia-container-toolkit, then: nvidia-ctk runtime configure "
        "--runtime=docker && systemctl restart docker"
    )
    jetson_builds_need_default_runtime: ClassVar[bool] = True
    info_format: ClassVar[str] = "{{json .}}"
    api_flavour: ClassVar[str] = ENGINE_API

    @classmethod
    def api_socket(cls, env: Mapping[str, str]) -> str | None:
        """``DOCKER_HOST``, the current context's endpoint or the default socket, when it
        is a unix socket."""
        return docker_socket(env)

    @classmethod
    def connect(
        cls: type[E],
        env: Mapping[str, str],
        runner: Runner = run_process,
        *,
        memo: Path | None = None,
    ) -> E:
        """Check that the daemon answers (through its API on the local socket when it
        answers there, else ``docker version``) and detect the build mode
        (``JETFORGE_BUILD_MODE`` overrides it). The client's version and whether it has
        the buildx plugin are kept in ``memo`` until the program or its plugins change."""
        program = cls.program_in(env)
        api = cls.open_api(env)
        if api is not None and shutil.which(program, path=env.get("PATH", os.defpath)) is None:
            api = None  # builds need the program: its absence is said as without the API
        client = "" if api is not None else _client_version(_version(program, env, runner))
        override = env.get(BUILD_MODE_VARIABLE, "")
        if override:
            return cls(program, docker_build_mode(client, False, override), runner, env, api)
        inputs = _detection_inputs(program, env) if memo is not None else None
        kept = _kept(memo, program, inputs)
        if kept is None:
            client = client or _client_version(_version(program, env, runner))
            has_buildx = runner([program, "buildx", "version"], env=env).returncode == 0
            kept = (client, has_buildx)
            _keep(memo, program, inputs, kept)
        return cls(program, docker_build_mode(*kept), runner, env, api)

    def parse_info(self, text: str) -> EngineInfo:
        """``docker info --format '{{json .}}'`` as a value."""
        return parse_docker_info(text)

    def builder(self) -> Builder:
        """The builder this engine's builds use. For the legacy builder, a docker program
        on ``PATH`` whose builds would use BuildKit (a client older than 23, which drives
        the daemon's own) is the first fix (``JETFORGE_DOCKER``)."""
        chosen = super().builder()
        if self.build_mode != "legacy" or self.env is None or self.env.get(BUILD_MODE_VARIABLE):
            return chosen
        for program, client, mode in iter_buildkit_clients(self.program, self.env, self.runner):
            how = "BuildKit through buildx" if mode == "buildx" else "the daemon's BuildKit"
            remedy = f"set JETFORGE_DOCKER={program} (docker {client}: {how}), or {chosen.remedy}"
            return replace(chosen, remedy=remedy)
        return chosen


def iter_buildkit_clients(
    program: str, env: Mapping[str, str], runner: Runner = run_process
) -> Iterator[tuple[str, str, str]]:
    """The other docker programs on ``PATH`` whose builds would use BuildKit, in ``PATH``
    order: each as (path, client version, build mode)."""
    seen = {os.path.realpath(found) for found in _programs_on_path(program, env)[:1]}
    if os.sep in program:
        seen.add(os.path.realpath(program))
    for candidate in _programs_on_path("docker", env):
        real = os.path.realpath(candidate)
        if real in seen:
            continue
        seen.add(real)
        done = runner([candidate, "version", "--format", "{{json .Client}}"], env=env, timeout=10)
        try:
            client = str((json.loads(done.stdout or "{}") or {}).get("Version", ""))
        except (json.JSONDecodeError, AttributeError):
            continue
        if not client:
            continue
        has_buildx = runner([candidate, "buildx", "version"], env=env, timeout=10).returncode == 0
        mode = docker_build_mode(client, has_buildx)
        if mode != "legacy":
            yield candidate, client, mode


def _programs_on_path(name: str, env: Mapping[str, str]) -> list[str]:
    """Every executable file called ``name`` in the directories of ``PATH``, in order (a
    name with a ``/`` is only itself)."""
    if os.sep in name:
        return [name]
    found = []
    for directory in env.get("PATH", "").split(os.pathsep):
        path = Path(directory or ".") / name
        if path.is_file() and os.access(path, os.X_OK):
            found.append(str(path))
    return found


def _version(program: str, env: Mapping[str, str], runner: Runner) -> Completed:
    """``docker version``; one that cannot reach its daemon raises."""
    done = runner([program, "version", "--format", "{{json .}}"], env=env)
    if done.returncode == 127:
        raise EngineUnavailableError(
            "docker",
            "the docker program is not installed",
            "install it: apt-get install -y docker.io",
        )
    if done.returncode != 0 or not json_object(done.stdout).get("Server"):
        raise EngineUnavailableError(
            "docker",
            f"the docker daemon is not running ({first_line(done)})",
            "start it: systemctl start docker, or: setsid dockerd > /var/log/dockerd.log 2>&1 &",
        )
    return done


def _client_version(done: Completed) -> str:
    return str((json_object(done.stdout).get("Client") or {}).get("Version", ""))


def _detection_inputs(program: str, env: Mapping[str, str]) -> list[object] | None:
    """What the client's version and its buildx plugin depend on: the program's file and
    every place the plugin may be. None when it cannot be told (no program, a file changed
    a moment ago, plugin directories the config file adds: ``docker login`` rewrites that
    file, so only what it says counts, not when it changed)."""
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    config = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "/root"), ".docker"))
    if found is None:
        return None
    places = [found]
    for directory in (str(config / "cli-plugins"), *PLUGIN_DIRS):
        places += [directory, f"{directory}/docker-buildx"]
    stamps = [_stamp(place) for place in places]
    settled = time.time_ns() - SETTLED_NS
    if any(stamp is not None and stamp[2] > settled for stamp in stamps):
        return None
    try:
        if "cliPluginsExtraDirs" in (config / "config.json").read_text(encoding="utf-8"):
            return None
    except OSError:
        pass
    return [found, *stamps]


def _stamp(path: str) -> list[int] | None:
    try:
        found = os.stat(path)  # noqa: PTH116 - a dozen paths: no Path objects
    except OSError:
        return None
    return [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino]


def _kept(memo: Path | None, program: str, inputs: list[object] | None) -> tuple[str, bool] | None:
    """The client's version and buildx plugin, as kept for ``inputs``."""
    if memo is None or inputs is None:
        return None
    try:
        kept = json.loads(memo.read_text(encoding="utf-8")).get(program)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(kept, dict) or kept.get("inputs") != inputs:
        return None
    return str(kept.get("client", "")), bool(kept.get("buildx"))


def _keep(
    memo: Path | None, program: str, inputs: list[object] | None, found: tuple[str, bool]
) -> None:
    """Keep the client's version and buildx plugin (atomically; a failure keeps none)."""
    if memo is None or inputs is None:
        return
    try:
        kept = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    kept[program] = {"inputs": inputs, "client": found[0], "buildx": found[1]}
    temporary = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    try:
        memo.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary.write_text(json.dumps(kept), encoding="utf-8")
        temporary.replace(memo)
    except OSError:
        temporary.unlink(missing_ok=True)


def docker_build_mode(client_version: str, has_buildx: bool, override: str = "") -> str:
    """BuildKit through buildx when the plugin is there; in-daemon BuildKit through a
    client older than 23 (newer clients need buildx for it); the legacy builder otherwise.
    """
    if override:
        if override not in _MODES:
            raise UsageError(
                f"{BUILD_MODE_VARIABLE}={override} is not valid (valid: {', '.join(_MODES)})"
            )
        return override
    if has_buildx:
        return "buildx"
    major = client_version.split(".", 1)[0]
    if major.isdigit() and int(major) < 23:
        return "buildkit"
    return "legacy"


def parse_docker_info(text: str) -> EngineInfo:
    """``docker info --format '{{json .}}'`` as a value.

    Docker reports ``CDISpecDirs`` from version 25 on, empty while CDI is disabled; an
    older daemon (no such field) cannot use CDI devices at all.
    """
    data = json_object(text)
    return EngineInfo(
        version=str(data.get("ServerVersion") or ""),
        runtimes=tuple(sorted(data.get("Runtimes") or {})),
        default_runtime=str(data.get("DefaultRuntime") or ""),
        cdi_spec_dirs=tuple(str(path) for path in data.get("CDISpecDirs") or ()),
        data_root=str(data.get("DockerRootDir") or ""),
    )
