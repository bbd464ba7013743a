"""``--push`` to a real registry with auth, and pulling the image back."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.engine


def test_push_to_registry_with_auth_and_pull_back(
    jetforge, chain_tree, image_name, registry, tmp_path
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
        image_name,
        "--logs",
        str(logs),
        "--skip-tests",
        "all",
        "--push",
        f"{registry.address}/team",
        "fb",
    )
    assert result.code == 0, result.stderr
    pushed = json.loads((logs / "summary.json").read_text())["pushed"]
    assert pushed.startswith(f"{registry.address}/team/{image_name}:")
    # The registry holds it: remove the local copy and pull it back.
    subprocess.run(["docker", "rmi", pushed], capture_output=True, check=True)
    subprocess.run(["docker", "pull", pushed], capture_output=True, check=True)
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", pushed], capture_output=True, text=True, check=True
        ).stdout
    )[0]["Config"]["Labels"]
    assert labels["jetforge.package"] == "fb"
    subprocess.run(["docker", "rmi", pushed], capture_output=True, check=False)


def test_push_without_login_fails_with_exit_1(jetforge, chain_tree, image_name, registry, tmp_path):
    subprocess.run(["docker", "logout", registry.address], capture_output=True, check=True)
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        image_name,
        "--logs",
        str(tmp_path / "logs"),
        "--skip-tests",
        "all",
        "--push",
        registry.address,
        "fa",
    )
    assert result.code == 1
    assert "push of" in result.stderr
