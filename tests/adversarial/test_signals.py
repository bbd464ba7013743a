"""SIGTERM is handled like Ctrl-C: the running build or test stops, nothing is left behind,
exit 143; a foreground cache server does not outlive jetforge."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_build_engine_signals import command, containers, wait_for

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("phase", ["build", "test"])
def test_sigterm_stops_the_step_leaves_no_containers_and_exits_143(
    chain_tree, image_name, tmp_path, cli_env, phase
):
    if phase == "build":
        extra, marker = ("--build-args", "FC_DELAY=120", "fc"), "[03-fc] building"
    else:
        (chain_tree / "fc" / "check.sh").write_text("sleep 120\n")
        extra, marker = ("fc",), "[03-fc] testing"
    before = containers()
    lines: list[str] = []
    with subprocess.Popen(
        command(chain_tree, image_name, tmp_path / "logs", *extra),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=cli_env,
    ) as process:
        try:
            wait_for(process, marker, lines)
            time.sleep(3)  # let the engine start the step's container
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 143
            assert time.monotonic() - started < 30
        finally:
            if process.poll() is None:
                process.kill()
        assert process.stderr is not None
        rest = process.stderr.read()
    assert "jetforge: terminated; nothing that was built is lost" in rest
    assert "Traceback" not in rest
    deadline = time.monotonic() + 20
    while containers() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers() - before == set()
    states = {
        s["package"]: s["state"]
        for s in json.loads((tmp_path / "logs" / "summary.json").read_text())["stages"]
    }
    assert states["fb"] == "built"


def _alive(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}").stat()
    except FileNotFoundError:
        return False
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def test_sigterm_to_a_foreground_cache_server_stops_the_server(cli_env, tmp_path):
    pytest.importorskip("pypiserver")
    with subprocess.Popen(
        [sys.executable, "-m", "jetforge", "cache", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env,
    ) as process:
        try:
            children: list[int] = []
            deadline = time.monotonic() + 30
            while not children and time.monotonic() < deadline:
                found = Path(f"/proc/{process.pid}/task/{process.pid}/children")
                children = [int(pid) for pid in found.read_text().split()] if found.exists() else []
                time.sleep(0.2)
            assert children, "the server process never started"
            time.sleep(2)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 143
        finally:
            if process.poll() is None:
                process.kill()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in children)


def _podman_leftovers() -> set[str]:
    done = subprocess.run(
        ["podman", "ps", "--all", "--external", "--quiet"], capture_output=True, text=True
    )
    return set(done.stdout.split())


@pytest.mark.podman
def test_ctrl_c_during_a_podman_build_leaves_no_working_container(
    chain_tree, image_name, tmp_path, cli_env
):
    if subprocess.run(["podman", "image", "exists", "debian:12"]).returncode != 0:
        pytest.fail("podman has no debian:12 image (scripts/setup loads it)")
    before = _podman_leftovers()
    lines: list[str] = []
    argv = command(chain_tree, image_name, tmp_path / "logs", "--engine", "podman")
    argv += ["--build-args", "FC_DELAY=120", "fc"]
    with subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=cli_env
    ) as process:
        try:
            wait_for(process, "[03-fc] building", lines)
            time.sleep(4)  # buildah has made its working container by now
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 130
        finally:
            if process.poll() is None:
                process.kill()
    assert _podman_leftovers() - before == set()
