"""Docker: BuildKit through buildx, in-daemon BuildKit or the legacy builder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from jetforge.engine.base import Builder, EngineInfo
from jetforge.engine.cli_engine import CliEngine, E, first_line, json_object
from jetforge.errors import EngineUnavailableError, UsageError
from jetforge.host.commands import Runner, run

BUILD_MODE_VARIABLE = "JETFORGE_BUILD_MODE"
_MODES = ("buildkit", "buildx", "legacy")


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

    @classmethod
    def connect(cls: type[E], env: Mapping[str, str], runner: Runner = run) -> E:
        """Check that the daemon answers and detect the build mode (``JETFORGE_BUILD_MODE``
        overrides it)."""
        program = cls.program_in(env)
        done = runner([program, "version", "--format", "{{json .}}"], env=env)
        if done.returncode == 127:
            raise EngineUnavailableError(
                "docker",
                "the docker program is not installed",
                "install it: apt-get install -y docker.io",
            )
        try:
            version = json.loads(done.stdout or "{}")
        except json.JSONDecodeError:
            version = {}
        if done.returncode != 0 or not version.get("Server"):
            raise EngineUnavailableError(
                "docker",
                f"the docker daemon is not running ({first_line(done)})",
                "start it: systemctl start docker, or: "
                "setsid dockerd > /var/log/dockerd.log 2>&1 &",
            )
        client = (version.get("Client") or {}).get("Version", "")
        has_buildx = runner([program, "buildx", "version"], env=env).returncode == 0
        mode = docker_build_mode(client, has_buildx, env.get(BUILD_MODE_VARIABLE, ""))
        return cls(program, mode, runner, env)

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
    program: str, env: Mapping[str, str], runner: Runner = run
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
