"""The build farm on real engines: a second Docker daemon beside the system one (its own
data root, exec root, pid file and socket, no bridge), Debian's docker-registry between
them. Started and stopped here, every process by its pid."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_registry
from tests.daemons import Daemon, start_daemon, stop_daemon

pytestmark = pytest.mark.engine


@pytest.fixture
def second_daemon(docker_engine: None) -> Iterator[Daemon]:
    if shutil.which("dockerd") is None:
        pytest.skip("needs dockerd")
    daemon = start_daemon()
    try:
        yield daemon
    finally:
        stop_daemon(daemon)


@pytest.fixture
def farm_registry(tmp_path: Path, docker_engine: None) -> Iterator[str]:
    """A registry without auth on loopback (every daemon pushes there without a login)."""
    root = tmp_path / "registry"
    root.mkdir()
    server, process = start_registry(root, auth=False)
    try:
        yield server.address
    finally:
        process.terminate()
        process.wait(timeout=10)


def write_chains(root: Path, chains: int, seconds: int = 0) -> list[str]:
    """``chains`` chains of two stages (``c<i>s1``, ``c<i>s2``), each writing its name into
    the image (and sleeping ``seconds`` in the first); the last names. A salt makes every
    stage key new: nothing an earlier test built is reused."""
    salt = uuid.uuid4().hex
    for chain in range(chains):
        for step in (1, 2):
            name = f"c{chain}s{step}"
            depends = f"# depends: [c{chain}s1]\n" if step == 2 else ""
            wait = f"RUN sleep {seconds}\n" if seconds and step == 1 else ""
            (root / name).mkdir(parents=True)
            (root / name / "Dockerfile").write_text(
                f"#---\n# name: {name}\n{depends}# test: test -f /{name}\n#---\n"
                f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {salt} > /salt\n"
                f"{wait}RUN echo {name} > /{name}\n"
            )
    return [f"c{chain}s2" for chain in range(chains)]


def configure(tmp_path: Path, registry: str, daemon: Daemon) -> None:
    config = tmp_path / "config" / "jetforge"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jetforge.toml").write_text(
        f'registries = ["{registry}/farm"]\n'
        "[[workers]]\n"
        'name = "d2"\n'
        f'endpoint = "{daemon.endpoint}"\n'
    )


def farm_build(tree: Path, name: str, logs: Path, *packages: str) -> list[str]:
    return [
        "build", "--multiple", "--workers", "local,d2",
        "--package-dirs", str(tree), "--distro", "debian:12", "--base", "debian:12",
        "--name", f"{name}/", "--logs", str(logs), *packages,
    ]  # fmt: skip


def assert_final_images(finals: list[str], name: str) -> None:
    """Both chains' final images are on the local engine with both stages' files."""
    assert sorted(final.split(":")[0] for final in finals) == [f"{name}/c0s2", f"{name}/c1s2"]
    for final in finals:
        chain = final.split(":")[0][-4:-2]  # c0 or c1
        argv = ["docker", "run", "--rm", "--network", "host", final, "cat", f"/{chain}s1"]
        done = subprocess.run([*argv, f"/{chain}s2"], capture_output=True, text=True, check=False)
        assert done.stdout == f"{chain}s1\n{chain}s2\n", done.stderr


def workers_of(logs: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for summary in logs.glob("*/summary.json"):
        for stage in json.loads(summary.read_text())["stages"]:
            found[stage["package"]] = stage["worker"]
    return found


def test_two_daemons_share_the_chains_and_a_second_run_builds_nothing(
    jetforge, image_name, tmp_path, second_daemon, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 2)
    configure(tmp_path, farm_registry, second_daemon)
    first = jetforge(*farm_build(tree, image_name, tmp_path / "logs1", *lasts))
    assert first.code == 0, first.stderr
    assert_final_images(first.stdout.split(), image_name)
    used = workers_of(tmp_path / "logs1")
    assert set(used.values()) == {"local", "d2"}, used
    moved = [
        json.loads(s.read_text())["transfer_seconds"]
        for s in (tmp_path / "logs1").glob("*/summary.json")
    ]
    assert max(moved) > 0  # the chain built on d2 was pulled to its home
    second = jetforge(*farm_build(tree, image_name, tmp_path / "logs2", *lasts))
    assert second.code == 0, second.stderr
    built = [
        stage["package"]
        for summary in (tmp_path / "logs2").glob("*/summary.json")
        for stage in json.loads(summary.read_text())["stages"]
        if stage["state"] == "built"
    ]
    assert built == [], second.stderr
    second_daemon.docker("system", "prune", "--all", "--force")


def test_a_daemon_killed_mid_stage_has_its_stage_finished_on_another(
    jetforge, image_name, tmp_path, second_daemon, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 2, seconds=6)
    configure(tmp_path, farm_registry, second_daemon)
    logs = tmp_path / "logs"

    def kill_when_it_builds() -> None:
        for _ in range(600):
            ps = second_daemon.docker("ps", "--all", "--quiet")
            if ps.stdout.strip():  # a build step's container: the stage is under way
                second_daemon.kill()
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_it_builds)
    killer.start()
    result = jetforge(*farm_build(tree, image_name, logs, *lasts))
    killer.join()
    assert second_daemon.process.poll() is not None  # it was killed
    assert result.code == 0, result.stderr
    assert "worker d2 stopped answering" in result.stderr
    assert set(workers_of(logs).values()) == {"local"}
    assert_final_images(result.stdout.split(), image_name)


def containers(docker: list[str]) -> set[str]:
    done = subprocess.run([*docker, "ps", "--all", "--quiet"], capture_output=True, text=True)
    return set(done.stdout.split())


def test_ctrl_c_on_the_farm_leaves_no_container_on_any_daemon(
    cli_env, image_name, tmp_path, second_daemon, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 2, seconds=30)
    configure(tmp_path, farm_registry, second_daemon)
    local = ["docker"]
    remote = ["docker", "-H", second_daemon.endpoint]
    before = containers(local)
    env = {**cli_env, "JETFORGE_NO_SERVER": "1"}
    argv = [sys.executable, "-m", "jetforge", *farm_build(tree, image_name, tmp_path / "l", *lasts)]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as build:
        for _ in range(1200):  # both daemons at work on a sleeping stage
            if containers(local) - before and containers(remote):
                break
            time.sleep(0.1)
        else:
            build.kill()
            _, err = build.communicate()
            raise AssertionError(f"the farm never had both daemons building: {err.decode()}")
        build.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, err = build.communicate(timeout=60)
    assert build.returncode == 130, err
    assert time.monotonic() - stopped < 20  # the 30 s steps were stopped, not waited for
    assert b"interrupted; nothing that was built is lost" in err
    for _ in range(100):  # an engine may take a moment to remove a build's container
        if containers(local) <= before and not containers(remote):
            break
        time.sleep(0.1)
    assert containers(local) - before == set()
    assert containers(remote) == set()
