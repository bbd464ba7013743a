"""The build farm on real engines: two more Docker daemons beside the system one (each its
own data root, exec root, pid file, socket and bridge), podman as a worker of another
kind, Debian's docker-registry between them. Started and stopped here, every process by
its pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.chains import write_chains
from support.daemons import Daemon, start_daemon, stop_daemon, write_farm_config
from support.engines import start_registry

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
def two_daemons(second_daemon: Daemon) -> Iterator[list[Daemon]]:
    """With the system one, three Docker daemons."""
    third = start_daemon()
    try:
        yield [second_daemon, third]
    finally:
        stop_daemon(third)


@pytest.fixture
def podman(docker_engine: None) -> None:
    if subprocess.run(["podman", "--version"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("podman is not installed")
        pytest.skip("podman is not installed")
    if subprocess.run(["podman", "image", "exists", "debian:12"]).returncode != 0:
        pytest.fail("podman has no debian:12 image (scripts/setup loads it)")


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


def farm_build(tree: Path, name: str, logs: Path, workers: str, *packages: str) -> list[str]:
    return [
        "build", "--multiple", "--workers", workers,
        "--package-dirs", str(tree), "--distro", "debian:12", "--base", "debian:12",
        "--name", f"{name}/", "--logs", str(logs), *packages,
    ]  # fmt: skip


def assert_final_images(finals: list[str], name: str, chains: int) -> None:
    """Every chain's final image is on the local engine with both stages' files."""
    expected = [f"{name}/c{chain}s2" for chain in range(chains)]
    assert sorted(final.split(":")[0] for final in finals) == expected
    for final in finals:
        chain = final.split(":")[0][-4:-2]  # c0, c1, …
        argv = ["docker", "run", "--rm", "--network", "host", final, "cat", f"/{chain}s1"]
        done = subprocess.run([*argv, f"/{chain}s2"], capture_output=True, text=True, check=False)
        assert done.stdout == f"{chain}s1\n{chain}s2\n", done.stderr


def summaries(logs: Path) -> list[dict[str, Any]]:
    return [json.loads(summary.read_text()) for summary in sorted(logs.glob("*/summary.json"))]


def workers_of(logs: Path) -> dict[str, str]:
    return {s["package"]: s["worker"] for d in summaries(logs) for s in d["stages"]}


def built_in(logs: Path) -> list[str]:
    return [s["package"] for d in summaries(logs) for s in d["stages"] if s["state"] == "built"]


def test_three_daemons_share_the_chains_and_a_second_run_builds_nothing(
    jetforge, image_name, tmp_path, two_daemons, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 3, 2, salt=uuid.uuid4().hex)
    write_farm_config(tmp_path / "config", farm_registry, two_daemons)
    workers = "local,d2,d3"
    first = jetforge(*farm_build(tree, image_name, tmp_path / "logs1", workers, *lasts))
    assert first.code == 0, first.stderr
    assert_final_images(first.stdout.split(), image_name, 3)
    used = workers_of(tmp_path / "logs1")
    assert set(used.values()) == {"local", "d2", "d3"}, used
    moved = [summary["transfer_seconds"] for summary in summaries(tmp_path / "logs1")]
    assert max(moved) > 0  # a chain built elsewhere was pulled to its home
    # every chain's lockfile, its stages listed on the workers that built them
    locks = sorted((tmp_path / "logs1").glob("*/jetforge.lock.json"))
    assert len(locks) == 3
    for path, summary in zip(locks, summaries(tmp_path / "logs1"), strict=True):
        lock = json.loads(path.read_text())
        assert [s["image_id"] for s in lock["stages"]] == [s["image_id"] for s in summary["stages"]]
        assert all(stage["inventoried"] for stage in lock["stages"]), path
        assert lock["base"]["inventoried"]
    second = jetforge(*farm_build(tree, image_name, tmp_path / "logs2", workers, *lasts))
    assert second.code == 0, second.stderr
    assert built_in(tmp_path / "logs2") == [], second.stderr
    again = sorted((tmp_path / "logs2").glob("*/jetforge.lock.json"))
    assert [path.read_text() for path in again] == [path.read_text() for path in locks]
    for daemon in two_daemons:
        daemon.docker("system", "prune", "--all", "--force")


def podman_images(fragment: str) -> set[str]:
    argv = ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return {line for line in done.stdout.split() if fragment in line}


def test_podman_is_a_worker_beside_docker_through_the_same_registry(
    jetforge, image_name, tmp_path, podman, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 2, 2, salt=uuid.uuid4().hex)
    write_farm_config(
        tmp_path / "config", farm_registry, [], '[[workers]]\nname = "pm"\nengine = "podman"\n'
    )
    result = jetforge(*farm_build(tree, image_name, tmp_path / "logs", "local,pm", *lasts))
    assert result.code == 0, result.stderr
    assert set(workers_of(tmp_path / "logs").values()) == {"local", "pm"}
    assert_final_images(result.stdout.split(), image_name, 2)  # on docker, the home
    assert podman_images(image_name)  # podman built its share (removed by image_name)


def test_a_daemon_killed_mid_stage_has_its_stage_finished_on_another(
    jetforge, image_name, tmp_path, second_daemon, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 2, 2, seconds=4, salt=uuid.uuid4().hex)
    write_farm_config(tmp_path / "config", farm_registry, [second_daemon])
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
    result = jetforge(*farm_build(tree, image_name, logs, "local,d2", *lasts))
    killer.join()
    assert second_daemon.process.poll() is not None  # it was killed
    assert result.code == 0, result.stderr
    assert "worker d2 stopped answering" in result.stderr
    assert set(workers_of(logs).values()) == {"local"}
    assert_final_images(result.stdout.split(), image_name, 2)


def containers(docker: list[str]) -> set[str]:
    done = subprocess.run([*docker, "ps", "--all", "--quiet"], capture_output=True, text=True)
    return set(done.stdout.split())


def test_ctrl_c_on_the_farm_leaves_no_container_on_any_daemon(
    cli_env, image_name, tmp_path, two_daemons, farm_registry
):
    tree = tmp_path / "tree"
    lasts = write_chains(tree, 3, 2, seconds=30, salt=uuid.uuid4().hex)
    write_farm_config(tmp_path / "config", farm_registry, two_daemons)
    local = ["docker"]
    remotes = [["docker", "-H", daemon.endpoint] for daemon in two_daemons]
    before = containers(local)
    env = dict(cli_env)
    logs = tmp_path / "l"
    argv = [
        sys.executable, "-m", "jetforge",
        *farm_build(tree, image_name, logs, "local,d2,d3", *lasts),
    ]  # fmt: skip

    def all_building() -> bool:
        return bool(containers(local) - before) and all(containers(r) for r in remotes)

    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as build:
        for _ in range(1200):  # every daemon at work on a sleeping stage
            if all_building():
                break
            time.sleep(0.1)
        else:
            build.kill()
            _, err = build.communicate()
            raise AssertionError(f"the farm never had every daemon building: {err.decode()}")
        build.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, err = build.communicate(timeout=60)
    assert build.returncode == 130, err
    assert time.monotonic() - stopped < 20  # the 30 s steps were stopped, not waited for
    assert b"interrupted; nothing that was built is lost" in err
    for _ in range(100):  # an engine may take a moment to remove a build's container
        if containers(local) <= before and not any(containers(r) for r in remotes):
            break
        time.sleep(0.1)
    assert containers(local) - before == set()
    assert [containers(r) for r in remotes] == [set(), set()]
