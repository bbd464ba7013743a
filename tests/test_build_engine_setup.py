"""Real-engine checks of engine selection, base images, bootstrap and the BuildKit mode."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from support.engines import docker

pytestmark = pytest.mark.engine


def test_stopped_daemon_is_exit_2_with_how_to_start_it(jetforge, docker_engine, chain_tree):
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "fa",
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.code == 2
    assert "docker daemon is not running" in result.stderr
    assert "start it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_engine_program_is_exit_2(jetforge, chain_tree):
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "fa",
        env={"JETFORGE_DOCKER": "/nonexistent/docker"},
    )
    assert result.code == 2
    assert "not installed" in result.stderr


def test_missing_base_image_names_bootstrap(jetforge, docker_engine, chain_tree, tmp_path):
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "127.0.0.1:9/jetforge/nothing:here",
        "--logs",
        str(tmp_path / "logs"),
        "fa",
    )
    assert result.code == 2
    assert "neither present nor pullable" in result.stderr
    assert "jetforge bootstrap" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["nosuch"], "unknown package 'nosuch'"),
        (["fa", "--build-args", "NOVALUE"], "--build-args: 'NOVALUE' is not K=V"),
    ],
)
def test_bad_requests_fail_before_the_base_image_is_pulled(
    jetforge, docker_engine, chain_tree, tmp_path, arguments, error
):
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--base",
        "127.0.0.1:9/jetforge/nothing:here",
        "--logs",
        str(tmp_path / "logs"),
        *arguments,
    )
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"jetforge: error: {error}")
    assert "pulling" not in result.stderr


def test_config_file_maps_the_distro_to_a_local_base(
    jetforge, docker_engine, chain_tree, image_name, tmp_path, cli_env
):
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "jetforge"
    config.mkdir(parents=True)
    subprocess.run(["docker", "tag", "debian:12", f"{image_name}-base:12"], check=True)
    (config / "jetforge.toml").write_text(f'[base_images]\n"debian:12" = "{image_name}-base:12"\n')
    logs = tmp_path / "logs"
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--name",
        image_name,
        "--logs",
        str(logs),
        "--skip-tests",
        "all",
        "fa",
    )
    assert result.code == 0, result.stderr
    plan = json.loads((logs / "plan.json").read_text())
    assert plan["base_image"] == f"{image_name}-base:12"
    subprocess.run(["docker", "rmi", f"{image_name}-base:12"], capture_output=True)


def test_bootstrap_creates_a_base_image_from_the_debian_mirror(jetforge, docker_engine, image_name):
    if shutil.which("mmdebstrap") is None:
        pytest.fail("mmdebstrap is not installed (scripts/setup installs it)")
    tag = f"{image_name}-boot:12"
    result = jetforge("bootstrap", "--distro", "debian:12", "--tag", tag)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == tag
    assert docker("run", "--rm", tag, "cat", "/etc/debian_version").startswith("12.")
    subprocess.run(["docker", "rmi", tag], capture_output=True)


@pytest.mark.skipif(not Path("/usr/bin/docker").exists(), reason="needs Debian's docker client")
def test_in_daemon_buildkit_mode_builds_and_reuses(jetforge, chain_tree, image_name, tmp_path):
    # Debian's 20.10 client drives the daemon's own BuildKit without the buildx plugin.
    env = {"JETFORGE_DOCKER": "/usr/bin/docker"}
    logs = tmp_path / "logs"
    args = [
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        image_name,
        "--build-flags=--no-cache",
    ]
    result = jetforge(*args, "--logs", str(logs), "fd", env=env)
    assert result.code == 0, result.stderr
    plan = json.loads((logs / "plan.json").read_text())
    assert plan["build_mode"] == "buildkit"
    assert plan["stages"][1]["command"][:2] == ["/usr/bin/docker", "build"]
    assert "--no-cache" in plan["stages"][1]["command"]
    assert "DOCKER_BUILDKIT=1 /usr/bin/docker build" in (logs / "02-fb.build.sh").read_text()
    again = tmp_path / "again"
    assert jetforge(*args, "--logs", str(again), "fd", env=env).code == 0
    summary = json.loads((again / "summary.json").read_text())
    assert {stage["state"] for stage in summary["stages"]} == {"reused"}
