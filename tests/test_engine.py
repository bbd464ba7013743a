"""Engine selection, build-mode detection and argv rendering, with a recording runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jetforge.core.plan import Stage
from jetforge.core.tags import ImageRef
from jetforge.engine.command import Command, build_command, run_options_for_test
from jetforge.engine.docker import docker_build_mode
from jetforge.engine.table import ENGINES, choose_engine, connect_engine
from jetforge.errors import EngineUnavailableError, UsageError
from jetforge.host.process import Completed


class RecordingRunner:
    """Answers commands from a table (first matching argv prefix) and records them."""

    def __init__(self, answers: dict[tuple[str, ...], Completed]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv, **_: object) -> Completed:
        argv = tuple(argv)
        self.calls.append(argv)
        for prefix, answer in self.answers.items():
            if argv[: len(prefix)] == prefix:
                return answer
        return Completed(argv, 127, "", "not found")


def version_json(client: str, server: bool = True) -> str:
    data: dict[str, object] = {"Client": {"Version": client}}
    if server:
        data["Server"] = {"Version": "20.10.24"}
    return json.dumps(data)


@pytest.mark.parametrize(
    ("client", "buildx", "override", "expected"),
    [
        ("20.10.24", False, "", "buildkit"),
        ("28.2.2", False, "", "legacy"),
        ("28.2.2", True, "", "buildx"),
        ("20.10.24", True, "", "buildx"),
        ("28.2.2", True, "legacy", "legacy"),
    ],
)
def test_docker_build_mode(client, buildx, override, expected):
    assert docker_build_mode(client, buildx, override) == expected


def test_bad_build_mode_override_is_a_usage_error():
    with pytest.raises(UsageError, match="JETFORGE_BUILD_MODE=fast"):
        docker_build_mode("28.0", False, "fast")


# The program only: no engine's API socket is asked.
PROGRAM_ONLY = {"JETFORGE_ENGINE_API": "0"}


def test_connect_detects_buildx_through_the_runner():
    runner = RecordingRunner(
        {
            ("docker", "version"): Completed((), 0, version_json("28.2.2"), ""),
            ("docker", "buildx", "version"): Completed((), 0, "v0.17", ""),
        }
    )
    engine = connect_engine("docker", PROGRAM_ONLY, runner)
    assert (engine.name, engine.build_mode) == ("docker", "buildx")


def test_missing_docker_program_says_how_to_install_it():
    with pytest.raises(EngineUnavailableError) as caught:
        connect_engine("docker", PROGRAM_ONLY, RecordingRunner({}))
    assert "not installed" in str(caught.value)
    assert "apt-get install -y docker.io" in str(caught.value)
    assert caught.value.exit_code == 2


def test_stopped_daemon_says_how_to_start_it():
    runner = RecordingRunner(
        {
            ("docker", "version"): Completed(
                (), 1, version_json("28.2.2", server=False), "Cannot connect to the Docker daemon"
            )
        }
    )
    with pytest.raises(EngineUnavailableError, match=r"daemon is not running.*dockerd"):
        connect_engine("docker", PROGRAM_ONLY, runner)


def test_engine_choice_order():
    assert choose_engine(None, {}, "").name == "docker"
    assert choose_engine(None, {}, "podman").name == "podman"
    assert choose_engine(None, {"JETFORGE_ENGINE": "podman"}, "docker").name == "podman"
    assert choose_engine("docker", {"JETFORGE_ENGINE": "podman"}, "podman").name == "docker"
    with pytest.raises(UsageError, match="valid: docker, podman"):
        choose_engine("containerd", {}, "")


STAGE = Stage(
    index=2,
    package="numpy",
    image=ImageRef("numpy", "r36.4.0-cu126-22.04-numpy"),
    base=ImageRef("numpy", "r36.4.0-cu126-22.04-python"),
    dockerfile=Path("/p/numpy/Dockerfile"),
    context=Path("/p/numpy"),
    build_args=(("BASE_IMAGE", "numpy:r36.4.0-cu126-22.04-python"), ("X", "a b")),
    build_flags=("--pull",),
    labels=(("jetforge.package", "numpy"),),
    key="k",
    tests=(),
)

TAIL = (
    "--network",
    "host",
    "--file",
    "/p/numpy/Dockerfile",
    "--tag",
    "numpy:r36.4.0-cu126-22.04-numpy",
    "--build-arg",
    "BASE_IMAGE=numpy:r36.4.0-cu126-22.04-python",
    "--build-arg",
    "X=a b",
    "--label",
    "jetforge.package=numpy",
    "--pull",
    "/p/numpy",
)


@pytest.mark.parametrize(
    ("engine", "mode", "expected"),
    [
        ("docker", "buildkit", Command(("docker", "build", *TAIL), (("DOCKER_BUILDKIT", "1"),))),
        ("docker", "buildx", Command(("docker", "buildx", "build", "--load", *TAIL))),
        (
            "docker",
            "legacy",
            Command(("docker", "build", "--force-rm", *TAIL), (("DOCKER_BUILDKIT", "0"),)),
        ),
        ("podman", "podman", Command(("podman", "build", *TAIL))),
    ],
)
def test_build_command_golden(engine, mode, expected):
    assert ENGINES[engine](engine, mode).build_command(STAGE) == expected


def test_engines_own_their_program_secrets_and_default_mode():
    docker = ENGINES["docker"]
    assert docker.program_in({"JETFORGE_DOCKER": "/opt/docker"}) == "/opt/docker"
    assert docker("docker", "buildx").supports_secrets
    assert not docker("docker", "legacy").supports_secrets
    assert not docker("docker", "legacy").builder().good
    assert (docker.default_build_mode, ENGINES["podman"].default_build_mode) == (
        "buildkit",
        "podman",
    )
    podman = ENGINES["podman"]("/usr/bin/podman", "podman")
    assert podman.supports_secrets
    assert podman.run_command(("--rm",), "img", ("true",)).argv == (
        "/usr/bin/podman",
        "run",
        "--rm",
        "--",
        "img",
        "true",
    )
    extra = docker("docker", "buildkit").build_command(STAGE, ("--secret", "id=s")).argv
    assert extra[-4:] == ("--secret", "id=s", "--pull", "/p/numpy")


def test_build_command_shell_line_is_quoted():
    line = build_command(STAGE, "buildkit", "docker").shell()
    assert line.startswith("DOCKER_BUILDKIT=1 docker build --network host")
    assert "'X=a b'" in line


def test_test_container_options():
    assert run_options_for_test(
        name="t1", package_dir="/p/x", data_dir="/d", extra=("-e", "A=1")
    ) == (
        "--rm",
        "--name",
        "t1",
        "--label",
        "jetforge.container=test",
        "--network",
        "host",
        "--volume",
        "/p/x:/test:ro",
        "--volume",
        "/d:/data",
        "--workdir",
        "/test",
        "-e",
        "A=1",
    )


def test_podman_reaches_a_loopback_registry_over_plain_http_as_docker_does():
    runner = RecordingRunner({("podman",): Completed((), 0, "", "")})
    podman = ENGINES["podman"]("podman", "podman", runner)
    podman.push("127.0.0.1:5000/farm/a:t", print)
    podman.pull("localhost:5000/farm/a:t", print)
    podman.push("nvcr.io/team/a:t", print)
    podman.pull("debian:12", print)
    assert runner.calls == [
        ("podman", "push", "--tls-verify=false", "--", "127.0.0.1:5000/farm/a:t"),
        ("podman", "pull", "--tls-verify=false", "--", "localhost:5000/farm/a:t"),
        ("podman", "push", "--", "nvcr.io/team/a:t"),
        ("podman", "pull", "--", "debian:12"),
    ]
