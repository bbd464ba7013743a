"""Podman: daemonless, builds with its own builder (buildah), reads CDI specs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from jetforge.core.tags import parse_image_ref
from jetforge.engine.api import LIBPOD_API, podman_socket
from jetforge.engine.base import Builder, EngineInfo
from jetforge.engine.cli_engine import CliEngine, E, first_line, json_object
from jetforge.engine.command import Command
from jetforge.errors import EngineUnavailableError
from jetforge.host.commands import Completed, OutputSink, Runner
from jetforge.host.runner import run_process

_CDI_DIRS = ("/etc/cdi", "/var/run/cdi")


@dataclass
class PodmanEngine(CliEngine):
    """The ``podman`` program."""

    name: ClassVar[str] = "podman"
    default_build_mode: ClassVar[str] = "podman"
    builders: ClassVar[Mapping[str, Builder]] = {
        "podman": Builder(True, "podman's own builder (buildah)")
    }
    secret_modes: ClassVar[frozenset[str]] = frozenset(("podman",))
    gpu_setup: ClassVar[str] = (
        "install nvidia-container-toolkit, then: nvidia-ctk cdi generate "
        "--output=/etc/cdi/nvidia.yaml"
    )
    info_format: ClassVar[str] = "json"
    # A URL goes in CONTAINER_HOST (podman is then remote), a connection name in
    # CONTAINER_CONNECTION (``podman system connection list``).
    endpoint_variables: ClassVar[tuple[str, ...]] = ("CONTAINER_HOST", "CONTAINER_CONNECTION")
    api_flavour: ClassVar[str] = LIBPOD_API

    @classmethod
    def endpoint_env(cls, endpoint: str) -> dict[str, str]:
        """``CONTAINER_HOST`` for a URL, ``CONTAINER_CONNECTION`` for a connection name."""
        if not endpoint:
            return {}
        return {"CONTAINER_HOST" if "://" in endpoint else "CONTAINER_CONNECTION": endpoint}

    @classmethod
    def api_socket(cls, env: Mapping[str, str]) -> str | None:
        """``CONTAINER_HOST`` when it is a unix socket, else the service's usual socket for
        this user (root's, or ``$XDG_RUNTIME_DIR``'s)."""
        return podman_socket(env, os.geteuid())

    @classmethod
    def connect(
        cls: type[E],
        env: Mapping[str, str],
        runner: Runner = run_process,
        *,
        memo: Path | None = None,  # noqa: ARG003 - podman has nothing to detect
    ) -> E:
        """Check that the program answers (none is started when the service answers on
        its socket and the program is on ``PATH``)."""
        program = cls.program_in(env)
        api = cls.open_api(env)
        if api is not None and shutil.which(program, path=env.get("PATH", os.defpath)):
            return cls(program, "podman", runner, env, api)
        done = runner([program, "version", "--format", "{{.Client.Version}}"], env=env)
        if done.returncode == 127:
            raise EngineUnavailableError(
                "podman", "podman is not installed", "install it: apt-get install -y podman"
            )
        if done.returncode != 0:
            raise EngineUnavailableError(
                "podman", f"podman does not answer: {first_line(done)}", "run 'podman info'"
            )
        return cls(program, "podman", runner, env, api)

    def build(self, command: Command, on_output: OutputSink) -> Completed:
        """Run a build command, streaming its output.

        An interrupted or failed podman build leaves buildah's working containers behind
        (only ``podman ps --all --external`` shows them); those that appeared during the
        build are removed."""
        before = self._working_containers()
        try:
            done = super().build(command, on_output)
        except BaseException:
            self._remove_working_containers(before)
            raise
        if done.returncode != 0:
            self._remove_working_containers(before)
        return done

    def push(self, reference: str, on_output: OutputSink) -> Completed:
        """Push an image to its registry (a loopback one over plain HTTP, as docker does)."""
        argv = [self.program, "push", *_plain_http(reference), "--", reference]
        return self.runner(argv, env=self.env, on_output=on_output)

    def pull(self, reference: str, on_output: OutputSink) -> Completed:
        """Pull an image from its registry (a loopback one over plain HTTP, as docker does)."""
        argv = [self.program, "pull", *_plain_http(reference), "--", reference]
        return self.runner(argv, env=self.env, on_output=on_output)

    def _working_containers(self) -> set[str]:
        done = self._call("ps", "--all", "--external", "--format", "{{.ID}} {{.Status}}")
        lines = done.stdout.splitlines() if done.returncode == 0 else []
        return {line.split()[0] for line in lines if line.endswith(" Storage")}

    def _remove_working_containers(self, before: set[str]) -> None:
        left = sorted(self._working_containers() - before)
        if left:
            self._call("rm", "--force", "--", *left)

    def parse_info(self, text: str) -> EngineInfo:
        """``podman info --format json`` as a value."""
        return parse_podman_info(text)


def _plain_http(reference: str) -> tuple[str, ...]:
    """Podman checks TLS for every registry, docker takes a loopback one (``localhost``,
    127.0.0.0/8, ``::1``) as plain HTTP; jetforge reaches a loopback registry the same way
    from both, so that a farm of docker and podman workers shares one."""
    from jetforge.host.registry import registry_scheme  # pushes and pulls only

    host = parse_image_ref(reference).registry
    return ("--tls-verify=false",) if host and registry_scheme(host) == "http" else ()


def parse_podman_info(text: str) -> EngineInfo:
    """``podman info --format json`` as a value.

    Podman (4.1 and later) always reads CDI specs from the standard directories; its info
    names only the runtime in use, so that is the one runtime reported.
    """
    data = json_object(text)
    host = data.get("host") or {}
    runtime = str((host.get("ociRuntime") or {}).get("name") or "")
    return EngineInfo(
        version=str((data.get("version") or {}).get("Version") or ""),
        runtimes=(runtime,) if runtime else (),
        default_runtime=runtime,
        cdi_spec_dirs=_CDI_DIRS,
        data_root=str((data.get("store") or {}).get("graphRoot") or ""),
    )
