"""Docker and podman through their command lines (they share most of their argv).

Argv is built by small pure functions; every command goes through the injected runner.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jetforge._process import Completed, OutputSink, Runner, run, run_attached
from jetforge.engine.base import EngineInfo, ImageInfo
from jetforge.engine.command import Command
from jetforge.errors import EngineUnavailableError, FailureError, UsageError

CONTAINER_LABEL = "jetforge.container"


@dataclass
class CliEngine:
    """An engine driven through the ``docker`` or ``podman`` program."""

    name: str
    program: str
    build_mode: str
    runner: Runner = run
    env: Mapping[str, str] | None = None

    def _call(self, *args: str) -> Completed:
        return self.runner([self.program, *args], env=self.env)

    def build(self, command: Command, on_output: OutputSink) -> Completed:
        """Run a build command, streaming its output.

        An interrupted or failed podman build leaves buildah's working containers behind
        (only ``podman ps --all --external`` shows them); those that appeared during the
        build are removed."""
        env = {**(self.env if self.env is not None else os.environ), **dict(command.env)}
        if self.name != "podman":
            return self.runner(command.argv, env=env, on_output=on_output)
        before = self._working_containers()
        try:
            done = self.runner(command.argv, env=env, on_output=on_output)
        except BaseException:
            self._remove_working_containers(before)
            raise
        if done.returncode != 0:
            self._remove_working_containers(before)
        return done

    def _working_containers(self) -> set[str]:
        done = self._call("ps", "--all", "--external", "--format", "{{.ID}} {{.Status}}")
        lines = done.stdout.splitlines() if done.returncode == 0 else []
        return {line.split()[0] for line in lines if line.endswith(" Storage")}

    def _remove_working_containers(self, before: set[str]) -> None:
        left = sorted(self._working_containers() - before)
        if left:
            self._call("rm", "--force", *left)

    def inspect(self, reference: str) -> ImageInfo | None:
        """Details of a local image, or None when it is absent."""
        done = self._call("image", "inspect", reference)
        if done.returncode != 0:
            return None
        return _image_info(json.loads(done.stdout)[0])

    def list_images(self, filters: Sequence[str] = ()) -> list[ImageInfo]:
        """Details of every local image matching all engine ``filters`` (``label=K``,
        ``reference=PATTERN``); images removed meanwhile are left out."""
        argv = ["images", "--no-trunc", "--format", "{{.ID}}"]
        for item in filters:
            argv += ["--filter", item]
        done = self._call(*argv)
        ids = list(dict.fromkeys(done.stdout.split())) if done.returncode == 0 else []
        if not ids:
            return []
        # One call for all; an image removed since the listing makes the engine exit
        # non-zero but still print the others.
        done = self._call("image", "inspect", *ids)
        try:
            found = json.loads(done.stdout or "[]")
        except json.JSONDecodeError:
            return []
        return [_image_info(data) for data in found if isinstance(data, dict)]

    def history(self, reference: str) -> list[str]:
        """The ``created by`` lines of an image's history."""
        done = self._call("history", "--no-trunc", "--format", "{{.CreatedBy}}", reference)
        return done.stdout.splitlines()

    def tag(self, source: str, target: str) -> None:
        """Give ``source`` the name ``target``."""
        done = self._call("tag", source, target)
        if done.returncode != 0:
            raise FailureError(f"{self.name} tag {source} {target} failed: {done.stderr.strip()}")

    def run(
        self, options: Sequence[str], image: str, argv: Sequence[str], on_output: OutputSink
    ) -> Completed:
        """Run ``argv`` in a new container of ``image`` with engine ``options``."""
        argv = [self.program, "run", *options, image, *argv]
        return self.runner(argv, env=self.env, on_output=on_output)

    def remove_container(self, name: str) -> None:
        """Remove a container if it exists."""
        self._call("rm", "--force", name)

    def list_containers(self, label: str) -> list[str]:
        """Ids of containers, running or not, carrying ``label``."""
        done = self._call("ps", "--all", "--quiet", "--filter", f"label={label}")
        return done.stdout.split()

    def push(self, reference: str, on_output: OutputSink) -> Completed:
        """Push an image to its registry."""
        return self.runner([self.program, "push", reference], env=self.env, on_output=on_output)

    def pull(self, reference: str, on_output: OutputSink) -> Completed:
        """Pull an image from its registry."""
        return self.runner([self.program, "pull", reference], env=self.env, on_output=on_output)

    def import_tarball(self, tarball: str, reference: str) -> Completed:
        """Create an image from a root filesystem tarball."""
        return self._call("import", tarball, reference)

    def info(self) -> EngineInfo:
        """Version, runtimes, CDI support and data root (``docker info``/``podman info``)."""
        if self.name == "podman":
            done = self._call("info", "--format", "json")
        else:
            done = self._call("info", "--format", "{{json .}}")
        if done.returncode != 0:
            raise EngineUnavailableError(
                self.name, f"'{self.program} info' failed: {_first_line(done)}", "run it by hand"
            )
        parse = parse_podman_info if self.name == "podman" else parse_docker_info
        return parse(done.stdout)

    def attach(self, options: Sequence[str], image: str, argv: Sequence[str]) -> int:
        """Run ``argv`` in a new container on this process's own terminal; its exit code."""
        return run_attached([self.program, "run", *options, image, *argv], env=self.env)


_PODMAN_CDI_DIRS = ("/etc/cdi", "/var/run/cdi")


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def parse_docker_info(text: str) -> EngineInfo:
    """``docker info --format '{{json .}}'`` as a value.

    Docker reports ``CDISpecDirs`` from version 25 on, empty while CDI is disabled; an
    older daemon (no such field) cannot use CDI devices at all.
    """
    data = _json_object(text)
    return EngineInfo(
        version=str(data.get("ServerVersion") or ""),
        runtimes=tuple(sorted(data.get("Runtimes") or {})),
        default_runtime=str(data.get("DefaultRuntime") or ""),
        cdi_spec_dirs=tuple(str(path) for path in data.get("CDISpecDirs") or ()),
        data_root=str(data.get("DockerRootDir") or ""),
    )


def parse_podman_info(text: str) -> EngineInfo:
    """``podman info --format json`` as a value.

    Podman (4.1 and later) always reads CDI specs from the standard directories; its info
    names only the runtime in use, so that is the one runtime reported.
    """
    data = _json_object(text)
    host = data.get("host") or {}
    runtime = str((host.get("ociRuntime") or {}).get("name") or "")
    return EngineInfo(
        version=str((data.get("version") or {}).get("Version") or ""),
        runtimes=(runtime,) if runtime else (),
        default_runtime=runtime,
        cdi_spec_dirs=_PODMAN_CDI_DIRS,
        data_root=str((data.get("store") or {}).get("graphRoot") or ""),
    )


def _image_info(data: Mapping[str, Any]) -> ImageInfo:
    config = data.get("Config") or {}
    return ImageInfo(
        id=data["Id"],
        labels=config.get("Labels") or {},
        env=tuple(config.get("Env") or ()),
        tags=tuple(data.get("RepoTags") or ()),
        architecture=data.get("Architecture", ""),
        created=data.get("Created", ""),
        digests=tuple(data.get("RepoDigests") or ()),
    )


ENGINES = ("docker", "podman")
BUILD_MODE_VARIABLE = "JETFORGE_BUILD_MODE"


def choose_engine_name(flag: str | None, env: Mapping[str, str], configured: str) -> str:
    """``--engine``, then ``JETFORGE_ENGINE``, then the config file, then docker."""
    name = flag or env.get("JETFORGE_ENGINE") or configured or "docker"
    if name not in ENGINES:
        raise UsageError(f"unknown engine '{name}' (valid: {', '.join(ENGINES)})")
    return name


def docker_build_mode(client_version: str, has_buildx: bool, override: str = "") -> str:
    """BuildKit through buildx when the plugin is there; in-daemon BuildKit through a
    client older than 23 (newer clients need buildx for it); the legacy builder otherwise.
    """
    if override:
        if override not in ("buildkit", "buildx", "legacy"):
            raise UsageError(
                f"{BUILD_MODE_VARIABLE}={override} is not valid (valid: buildkit, buildx, legacy)"
            )
        return override
    if has_buildx:
        return "buildx"
    major = client_version.split(".", 1)[0]
    if major.isdigit() and int(major) < 23:
        return "buildkit"
    return "legacy"


def connect_engine(name: str, env: Mapping[str, str], runner: Runner = run) -> CliEngine:
    """Find the engine's program, check that it answers, and detect its build mode."""
    program = env.get(f"JETFORGE_{name.upper()}") or name
    if name == "podman":
        done = runner([program, "version", "--format", "{{.Client.Version}}"], env=env)
        if done.returncode == 127:
            raise EngineUnavailableError(
                "podman", "podman is not installed", "install it: apt-get install -y podman"
            )
        if done.returncode != 0:
            raise EngineUnavailableError(
                "podman", f"podman does not answer: {_first_line(done)}", "run 'podman info'"
            )
        return CliEngine("podman", program, "podman", runner, env)
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
            f"the docker daemon is not running ({_first_line(done)})",
            "start it: systemctl start docker, or: setsid dockerd > /var/log/dockerd.log 2>&1 &",
        )
    client = (version.get("Client") or {}).get("Version", "")
    has_buildx = runner([program, "buildx", "version"], env=env).returncode == 0
    mode = docker_build_mode(client, has_buildx, env.get(BUILD_MODE_VARIABLE, ""))
    return CliEngine("docker", program, mode, runner, env)


def _first_line(done: Completed) -> str:
    text = (done.stderr or done.stdout).strip()
    return text.splitlines()[-1] if text else f"exit code {done.returncode}"
