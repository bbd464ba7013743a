"""The engines jetforge can drive, by name: adding one is a class and a line here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jetforge.engine.cli_engine import CliEngine
from jetforge.engine.docker import DockerEngine
from jetforge.engine.podman import PodmanEngine
from jetforge.errors import UsageError
from jetforge.host.commands import Runner
from jetforge.host.runner import run_process

ENGINES: Mapping[str, type[CliEngine]] = {"docker": DockerEngine, "podman": PodmanEngine}
DEFAULT = "docker"


def engine_names() -> tuple[str, ...]:
    """The names ``--engine``, ``engine =`` and a worker's ``engine`` may take."""
    return tuple(ENGINES)


def build_modes() -> tuple[str, ...]:
    """Every engine's build modes (its builders): what a lockfile's ``build_mode`` may be."""
    return tuple(mode for kind in ENGINES.values() for mode in kind.builders)


def engine_class(name: str) -> type[CliEngine]:
    """The engine called ``name``; an unknown one is a usage error naming the valid ones."""
    found = ENGINES.get(name)
    if found is None:
        raise UsageError(f"unknown engine '{name}' (valid: {', '.join(ENGINES)})")
    return found


def choose_engine(flag: str | None, env: Mapping[str, str], configured: str) -> type[CliEngine]:
    """``--engine``, then ``JETFORGE_ENGINE``, then the config file, then docker."""
    return engine_class(flag or env.get("JETFORGE_ENGINE") or configured or DEFAULT)


def connect_engine(
    name: str, env: Mapping[str, str], runner: Runner = run_process, *, memo: Path | None = None
) -> CliEngine:
    """Connect to the engine called ``name`` (see :meth:`CliEngine.connect`)."""
    return engine_class(name).connect(env, runner, memo=memo)
