"""``jetforge doctor``: golden check lines, the command on a stand-in engine with real HTTP
endpoints, and on the real daemon (running, and "stopped")."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jetforge.engine.base import EngineInfo
from jetforge.engine.table import ENGINES
from jetforge.errors import PlatformError
from jetforge.host.devices import HostProbe
from jetforge.host.platform import detect_platform
from jetforge.host.registry import parse_registry_location
from jetforge.ops.doctor import (
    GIB,
    PROBLEM,
    WARNING,
    Check,
    check_builder,
    check_disk,
    check_gpu,
    check_platform,
    exit_code,
    registry_url,
)

ROOTS = Path(__file__).parent / "fixtures" / "hostroots"
NVIDIA_DOCKER = {
    "ServerVersion": "28.2.2",
    "Runtimes": {"nvidia": {}, "runc": {}},
    "DefaultRuntime": "runc",
    "DockerRootDir": "/var/lib/docker",
}


# --- golden lines ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "line"),
    [
        (None, "warning  disk      cannot read the free space of /var/lib/docker"),
        (
            1 * GIB,
            "problem  disk      only 1.0 GiB free in /var/lib/docker; builds need at least "
            "5.0 GiB; fix: docker system prune (removes unused images, containers and build "
            "cache)",
        ),
        (
            12 * GIB,
            "warning  disk      12.0 GiB free in /var/lib/docker; large stacks need 20.0 GiB or "
            "more; fix: docker system prune (removes unused images, containers and build cache)",
        ),
        (64 * GIB, "ok       disk      64.0 GiB free in /var/lib/docker"),
    ],
)
def test_disk_thresholds(free, line):
    assert check_disk("/var/lib/docker", free).line() == line


DOCKER = ENGINES["docker"]("docker", "buildkit")


@pytest.mark.parametrize(
    ("engine", "mode", "status"),
    [
        ("docker", "buildx", "ok"),
        ("docker", "buildkit", "ok"),
        ("podman", "podman", "ok"),
        ("docker", "legacy", WARNING),
    ],
)
def test_builder_modes(engine, mode, status):
    check = check_builder(ENGINES[engine](engine, mode).builder())
    assert check.status == status
    assert bool(check.remedy) == (status == WARNING)


def test_a_mode_the_engine_does_not_know_is_a_warning():
    check = check_builder(ENGINES["docker"]("docker", "podman").builder())
    assert (check.status, check.detail) == (WARNING, "unknown mode podman")


def test_gpu_checks():
    info = EngineInfo(runtimes=("nvidia", "runc"), default_runtime="runc")
    (ok,) = check_gpu(DOCKER, HostProbe(runtimes=info.runtimes), info, None)
    assert (
        ok.line()
        == "ok       gpu       the 'nvidia' runtime is registered; run uses --runtime nvidia"
    )
    (none,) = check_gpu(DOCKER, HostProbe(), EngineInfo(), None)
    assert none.status == WARNING
    assert "nvidia-ctk runtime configure --runtime=docker" in none.remedy
    (podman,) = check_gpu(ENGINES["podman"]("podman", "podman"), HostProbe(), EngineInfo(), None)
    assert "nvidia-ctk cdi generate" in podman.remedy


def test_jetson_builds_need_nvidia_as_default_runtime():
    jetson = detect_platform({}, target="jp6")
    info = EngineInfo(runtimes=("nvidia", "runc"), default_runtime="runc")
    checks = check_gpu(DOCKER, HostProbe(runtimes=info.runtimes), info, jetson)
    assert [check.status for check in checks] == ["ok", WARNING]
    assert '"default-runtime": "nvidia"' in checks[1].remedy
    default = EngineInfo(runtimes=("nvidia", "runc"), default_runtime="nvidia")
    assert len(check_gpu(DOCKER, HostProbe(runtimes=info.runtimes), default, jetson)) == 1
    podman = ENGINES["podman"]("podman", "podman")
    assert len(check_gpu(podman, HostProbe(runtimes=info.runtimes), info, jetson)) == 1


def test_platform_checks():
    unknown = detect_platform({"L4T_VERSION": "36.9.0"})
    checks = check_platform(unknown)
    assert checks[0].status == "ok"
    assert checks[0].detail.startswith("Jetson, L4T 36.9.0")
    assert [check.status for check in checks[1:]] == [WARNING]
    assert "not in the platform table" in checks[1].detail
    (bad,) = check_platform(None, PlatformError("CUDA_VERSION: 'junk' is not valid"))
    assert bad.status == PROBLEM


def test_exit_code_counts_only_problems():
    assert exit_code([Check("a", "ok", ""), Check("b", WARNING, "")]) == 0
    assert exit_code([Check("a", "ok", ""), Check("b", PROBLEM, "")]) == 1


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:5000/team", "http://127.0.0.1:5000/v2/"),
        ("localhost:5000", "http://localhost:5000/v2/"),
        ("nvcr.io/nvidia", "https://nvcr.io/v2/"),
        ("dustynv", "https://registry-1.docker.io/v2/"),
    ],
)
def test_registry_url(text, url):
    assert registry_url(parse_registry_location(text)) == url


# --- the command on a stand-in engine -----------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/v2/": 401, "/simple/": 200}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET  # noqa: N815 - the name http.server looks up

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """A loopback server: /v2/ asks for credentials (a registry), /simple/ is an index."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_config(cli_env, text):
    path = Path(cli_env["XDG_CONFIG_HOME"]) / "jetforge" / "jetforge.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


@pytest.mark.process
def test_doctor_on_a_healthy_stand_in(jetforge, fake_engine, cli_env, http_server):
    config = write_config(
        cli_env,
        f'registries = ["{http_server}/team", "127.0.0.1:9"]\n'
        f'cache_urls = ["http://{http_server}/simple/", "http://{http_server}/missing/", '
        '"http://127.0.0.1:9/simple/"]\npypi_url = ""\n',
    )
    env = {**fake_engine(NVIDIA_DOCKER), "JETFORGE_REGISTRIES": ""}
    result = jetforge("doctor", "--host-root", str(ROOTS / "bare"), env=env)
    assert result.code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"ok       config    read {config}"
    assert lines[1] == "ok       engine    docker 28.2.2 is running, data root /var/lib/docker"
    assert lines[2].startswith("warning  builder   legacy builder")
    assert lines[3] == (
        "ok       gpu       the 'nvidia' runtime is registered; run uses --runtime nvidia"
    )
    assert lines[4].startswith("ok       disk      ")
    assert lines[5] == (
        f"ok       registry  registry {http_server}/team answers at http://{http_server}/v2/"
    )
    assert lines[6].startswith(
        "warning  registry  registry 127.0.0.1:9 at http://127.0.0.1:9/v2/: "
    )
    assert "cannot connect" in lines[6]
    assert lines[7] == (
        f"ok       cache     package source mirror http://{http_server}/simple/ answers"
    )
    fix = "fix: correct or remove it (cache_urls in jetforge.toml, or JETFORGE_CACHE_URLS)"
    assert lines[8] == (
        f"warning  cache     package source mirror http://{http_server}/missing/ answers "
        f"HTTP 404; builds still use it; {fix}"
    )
    assert lines[9] == (
        "warning  cache     package source mirror http://127.0.0.1:9/simple/ is down "
        f"(connection refused); builds leave it out; {fix}"
    )
    assert lines[10].startswith("ok       platform  ")
    assert len(lines) == 11
    assert result.stderr == ""


@pytest.mark.process
def test_doctor_json(jetforge, fake_engine):
    result = jetforge(
        "doctor", "--json", "--host-root", str(ROOTS / "cdi"), env=fake_engine(NVIDIA_DOCKER)
    )
    assert result.code == 0
    checks = json.loads(result.stdout)
    assert [check["name"] for check in checks] == [
        "config",
        "engine",
        "builder",
        "gpu",
        "disk",
        "cache",
        "platform",
    ]
    assert checks[5]["detail"].startswith("no package cache or mirror: builds install from")
    assert set(checks[0]) == {"name", "status", "detail", "remedy"}


@pytest.mark.process
def test_bad_config_and_platform_override_are_problems(jetforge, fake_engine, cli_env):
    write_config(cli_env, "registires = []\n")
    env = {**fake_engine(NVIDIA_DOCKER), "CUDA_VERSION": "junk"}
    result = jetforge("doctor", env=env)
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("problem  config    ")
    assert "did you mean 'registries'" in lines[0]
    assert lines[-1].startswith("problem  platform  CUDA_VERSION: 'junk' is not valid")
    assert "stops builds" in result.stderr


@pytest.mark.process
def test_missing_engine_program_is_a_problem(jetforge):
    result = jetforge("doctor", env={"JETFORGE_DOCKER": "/nonexistent/docker"})
    assert result.code == 1
    assert "problem  engine    docker: the docker program is not installed; fix: install it" in (
        result.stdout
    )


# --- the real daemon ---------------------------------------------------------------------


@pytest.mark.engine
def test_doctor_with_the_real_daemon(docker_engine, jetforge):
    result = jetforge("doctor")
    lines = result.stdout.splitlines()
    assert lines[1].startswith("ok       engine    docker ")
    assert any(line.startswith("ok       disk") for line in lines), lines
    assert result.code == 0, result.stdout


@pytest.mark.engine
def test_doctor_with_the_daemon_stopped(docker_engine, jetforge):
    result = jetforge("doctor", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.code == 1
    engine = next(line for line in result.stdout.splitlines() if " engine " in line)
    assert engine.startswith("problem  engine    docker: the docker daemon is not running")
    assert "; fix: start it: systemctl start docker" in engine
    # Nothing that needs the daemon is checked once it is down.
    assert not any(
        line.split()[1] in ("builder", "gpu", "disk") for line in result.stdout.splitlines()
    )
