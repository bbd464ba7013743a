"""Pure functions that turn plan values into engine argv (golden-tested, no I/O)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from jetforge.core.labels import STAGE_KEY
from jetforge.core.plan import Stage


@dataclass(frozen=True, slots=True)
class Command:
    """An argv with the extra environment it needs (``DOCKER_BUILDKIT=1``)."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    def shell(self) -> str:
        """The command as one shell line, runnable by hand."""
        prefix = [f"{name}={shlex.quote(value)}" for name, value in self.env]
        return " ".join([*prefix, *(shlex.quote(word) for word in self.argv)])


def build_command(
    stage: Stage, build_mode: str, program: str, extra: Sequence[str] = ()
) -> Command:
    """The command that builds ``stage`` with ``program`` in ``build_mode`` (``buildx``,
    ``buildkit`` and ``legacy`` are docker's; any other mode is a plain ``build``).

    Builds use the host network (as jetson-containers does); ``extra`` carries flags the
    executor adds (secrets) before the stage's own flags.
    """
    head: tuple[str, ...] = (program, "build")
    env: tuple[tuple[str, str], ...] = ()
    if build_mode == "buildx":
        head = (program, "buildx", "build", "--load")
    elif build_mode == "buildkit":
        env = (("DOCKER_BUILDKIT", "1"),)
    elif build_mode == "legacy":
        # --force-rm: intermediate containers go away even when a step fails.
        env = (("DOCKER_BUILDKIT", "0"),)
        head = (*head, "--force-rm")
    argv = [*head, "--network", "host", "--file", str(stage.dockerfile), "--tag", str(stage.image)]
    for name, value in stage.build_args:
        argv += ["--build-arg", f"{name}={value}"]
    for name, value in stage.labels:
        if name != STAGE_KEY:  # the Dockerfile's last step sets it (identity_label)
            argv += ["--label", f"{name}={value}"]
    argv += [*extra, *stage.build_flags, str(stage.context)]
    return Command(tuple(argv), env)


def run_options_for_test(
    *,
    name: str,
    package_dir: str,
    data_dir: str,
    workdir: str = "/test",
    extra: Sequence[str] = (),
) -> tuple[str, ...]:
    """Engine ``run`` options for a test container (docs/builds.md, "Tests"); an empty
    ``workdir`` keeps the image's own working directory."""
    return (
        "--rm",
        "--name",
        name,
        "--label",
        "jetforge.container=test",
        "--network",
        "host",
        "--volume",
        f"{package_dir}:/test:ro",
        "--volume",
        f"{data_dir}:/data",
        *(("--workdir", workdir) if workdir else ()),
        *extra,
    )


def run_options_for_inventory(*, name: str) -> tuple[str, ...]:
    """Engine ``run`` options for the container that lists what an image holds (the
    lockfile's collector): removed when it ends, no network, ``sh`` instead of the image's
    entrypoint, and a name so that an interruption can remove it."""
    return (
        "--rm",
        "--name",
        name,
        "--label",
        "jetforge.container=inventory",
        "--network",
        "none",
        "--entrypoint",
        "sh",
    )
