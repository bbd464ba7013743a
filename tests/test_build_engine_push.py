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


def test_stages_pushed_to_a_registry_are_reused_from_it(
    jetforge, chain_tree, image_name, registry, tmp_path
):
    common = [
        "build",
        "--package-dirs",
        str(chain_tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        image_name,
        "--skip-tests",
        "all",
    ]
    first = tmp_path / "first"
    result = jetforge(*common, "--logs", str(first), "--push", f"{registry.address}/team", "fc")
    assert result.code == 0, result.stderr
    keys = [stage["key"] for stage in json.loads((first / "summary.json").read_text())["stages"]]
    # Forget every local image of the chain: only the registry has them now.
    for key in keys:
        ids = subprocess.run(
            ["docker", "images", "-q", "--filter", f"label=jetforge.stage-key={key}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        subprocess.run(["docker", "rmi", "--force", *ids], capture_output=True, check=False)
    again = tmp_path / "again"
    result = jetforge(
        *common,
        "--logs",
        str(again),
        "fc",
        env={"JETFORGE_REGISTRIES": f"{registry.address}/team"},
    )
    assert result.code == 0, result.stderr
    summary = json.loads((again / "summary.json").read_text())
    assert [stage["state"] for stage in summary["stages"]] == ["reused"] * 4
    assert f"pulled {registry.address}/team/{image_name}:" in result.stderr
    assert "pulling" in (again / "03-fc.build.log").read_text()
