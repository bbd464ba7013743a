"""Ctrl-C, concurrent builds, --multiple and --skip-errors on the real engine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine


def containers() -> set[str]:
    done = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--no-trunc"], capture_output=True, text=True
    )
    return set(done.stdout.split())


def command(tree: Path, name: str, logs: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jetforge",
        "build",
        "--package-dirs",
        str(tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        name,
        "--logs",
        str(logs),
        *extra,
    ]


def wait_for(process: subprocess.Popen[str], text: str, lines: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"never saw {text!r}: {''.join(lines)}")


@pytest.mark.parametrize("phase", ["build", "test"])
def test_sigint_stops_the_build_and_leaves_no_containers(
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
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 130
            assert time.monotonic() - started < 30
        finally:
            if process.poll() is None:
                process.kill()
        assert process.stderr is not None
        rest = process.stderr.read()
    assert "jetforge: interrupted; nothing that was built is lost; resume with: jetforge " in rest
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


def test_sighup_stops_the_build_like_sigterm(chain_tree, image_name, tmp_path, cli_env):
    # The terminal closed or the ssh connection dropped: the docker build is stopped, its
    # containers removed, exit 129 (128 + SIGHUP), as SIGTERM gives 143.
    before = containers()
    lines: list[str] = []
    argv = command(chain_tree, image_name, tmp_path / "logs", "--build-args", "FC_DELAY=120")
    with subprocess.Popen(
        [*argv, "fc"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=cli_env
    ) as process:
        try:
            wait_for(process, "[03-fc] building", lines)
            time.sleep(3)  # let the engine start the step's container
            started = time.monotonic()
            process.send_signal(signal.SIGHUP)
            assert process.wait(timeout=60) == 129
            assert time.monotonic() - started < 30
        finally:
            if process.poll() is None:
                process.kill()
        assert process.stderr is not None
        rest = process.stderr.read()
    assert "jetforge: hung up; nothing that was built is lost" in rest
    assert "Traceback" not in rest
    deadline = time.monotonic() + 20
    while _chain_containers(containers() - before, image_name) and time.monotonic() < deadline:
        time.sleep(0.5)
    # (the daemon is shared: containers other tests start meanwhile are not this build's)
    assert _chain_containers(containers() - before, image_name) == set()
    assert not any("docker" in line and "build" in line for line in _our_children_left())
    states = {
        s["package"]: s["state"]
        for s in json.loads((tmp_path / "logs" / "summary.json").read_text())["stages"]
    }
    assert states["fb"] == "built"


def _chain_containers(found: set[str], image_name: str) -> set[str]:
    """Those of the containers ``found`` that run an image of the chain ``image_name``."""
    listed = subprocess.run(
        ["docker", "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    ours = {line.split()[0] for line in listed if image_name in line}
    chain = set()
    for container in found:
        image = subprocess.run(
            ["docker", "inspect", "--format", "{{.Image}}", container],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if image in ours:
            chain.add(container)
    return chain


def _our_children_left() -> list[str]:
    """The command lines of this test process's children still running."""
    found = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    pids = found.read_text().split() if found.exists() else []
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
    return lines


def test_two_different_chains_built_at_the_same_time_both_succeed(
    chain_tree, image_name, tmp_path, cli_env
):
    results: dict[str, int] = {}

    def build(package: str) -> None:
        done = subprocess.run(
            command(chain_tree, f"{image_name}-{package}", tmp_path / package, package),
            capture_output=True,
            text=True,
            env=cli_env,
        )
        results[package] = done.returncode
        assert done.returncode == 0, done.stderr

    threads = [threading.Thread(target=build, args=(p,)) for p in ("fc", "fd")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"fc": 0, "fd": 0}
    for package in ("fc", "fd"):
        final = json.loads((tmp_path / package / "summary.json").read_text())["final_image"]
        assert (
            subprocess.run(["docker", "image", "inspect", final], capture_output=True).returncode
            == 0
        )
    subprocess.run(
        ["docker", "rmi", "--force", *(f"{image_name}-{p}" for p in ("fc", "fd"))],
        capture_output=True,
    )


def test_multiple_builds_shared_stages_once_and_skip_errors_reports(
    jetforge, chain_tree, image_name, tmp_path
):
    logs = tmp_path / "logs"
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        f"{image_name}/",
        "--logs",
        str(logs),
        "--multiple",
        "--skip-tests",
        "all",
        "fc",
        "fd",
    )
    assert result.code == 0, result.stderr
    first = json.loads((logs / "fc" / "summary.json").read_text())
    second = json.loads((logs / "fd" / "summary.json").read_text())
    assert [s["state"] for s in first["stages"][1:]] == ["built", "built", "built"]
    assert [s["state"] for s in second["stages"][1:]] == ["reused", "reused", "reused", "built"]
    # --skip-errors: a broken chain does not stop the next one, and the exit code is 1.
    (chain_tree / "fd" / "Dockerfile").write_text(
        (chain_tree / "fd" / "Dockerfile").read_text().replace("echo d", "false")
    )
    (chain_tree / "fa" / "x.txt").write_text("new")
    logs = tmp_path / "again"
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        f"{image_name}/",
        "--logs",
        str(logs),
        "--multiple",
        "--skip-errors",
        "--skip-tests",
        "all",
        "fd",
        "fc",
    )
    assert result.code == 1
    assert "FAILED at fd (build)" in result.stderr
    assert f"{image_name}/fc:" in result.stdout
    assert json.loads((logs / "fc" / "summary.json").read_text())["ok"] is True


def test_podman_builds_the_same_chain(jetforge, chain_tree, tmp_path, cli_env):
    if subprocess.run(["podman", "--version"], capture_output=True).returncode != 0:
        if os.environ.get("JETFORGE_REQUIRE_ENGINE") == "1":
            pytest.fail("podman is not installed")
        pytest.skip("podman is not installed")
    if subprocess.run(["podman", "image", "exists", "debian:12"]).returncode != 0:
        pytest.fail("podman has no debian:12 image (scripts/setup loads it)")
    logs = tmp_path / "logs"
    result = jetforge(
        "build",
        "--engine",
        "podman",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        "jftest-podman",
        "--logs",
        str(logs),
        "fd",
    )
    assert result.code == 0, result.stderr
    summary = json.loads((logs / "summary.json").read_text())
    assert {s["state"] for s in summary["stages"][1:]} == {"built"}
    assert [t["state"] for t in summary["final_tests"]] == ["passed", "passed", "passed", "cached"]
    final = summary["final_image"]
    labels = json.loads(
        subprocess.run(["podman", "image", "inspect", final], capture_output=True, text=True).stdout
    )[0]["Labels"]
    assert labels["jetforge.chain"] == "fa,fb,fc,fd"
    again = tmp_path / "again"
    result = jetforge(
        "build",
        "--engine",
        "podman",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        "jftest-podman",
        "--logs",
        str(again),
        "fd",
    )
    assert result.code == 0, result.stderr
    assert {s["state"] for s in json.loads((again / "summary.json").read_text())["stages"]} == {
        "reused"
    }
    images = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", "jftest-podman"],
        capture_output=True,
        text=True,
    ).stdout.split()
    subprocess.run(["podman", "rmi", "--force", *images], capture_output=True)
