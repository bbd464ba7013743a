"""The shipped packages on the real engine: the e2e tier builds as one chain on Debian 12
and every test of every stage passes; a later stage that tries to move a pinned package
fails loudly with pip's conflict message."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.engines import docker

pytestmark = pytest.mark.engine

FIXTURES = Path(__file__).parent / "fixtures" / "engine"
# The e2e tier (docs/packages.md) in one chain; the rest of the tier (build-essential,
# python) comes in as dependencies. About 4 minutes on the CI machine with nothing reusable
# (llama_cpp compiles for 1.5 of them), twice: the lock → remove → --locked rebuild.
E2E = (
    "cmake",
    "ninja",
    "uv",
    "numpy",
    "onnx",
    "onnxruntime",
    "opencv",
    "huggingface_hub",
    "scikit-learn",
    "pandas",
    "jupyterlab",
    "llama_cpp",
)


def build(jetforge, name: str, logs: Path, *packages: str, package_dirs: Path | None = None):
    extra = ["--package-dirs", str(package_dirs)] if package_dirs else []
    return jetforge(
        "build", "--distro", "debian:12", "--base", "debian:12", "--name", name,
        "--logs", str(logs), *extra, *packages,
    )  # fmt: skip


def summary(logs: Path) -> dict:
    return json.loads((logs / "summary.json").read_text())


def test_the_e2e_tier_builds_as_one_chain_and_every_test_passes(jetforge, image_name, tmp_path):
    logs = tmp_path / "logs"
    result = build(jetforge, image_name, logs, *E2E)
    assert result.code == 0, result.stderr[-4000:]
    done = summary(logs)
    chain = [stage["package"] for stage in done["stages"] if stage["package"] != "ca-trust"]
    assert chain == [
        "build-essential",
        "cmake",
        "ninja",
        "python:3.11",
        "uv",
        "numpy:2",
        "onnx",
        "onnxruntime:cpu",
        "opencv",
        "huggingface_hub",
        "scikit-learn",
        "pandas",
        "jupyterlab",
        "llama_cpp:cpu",
    ]
    tested = {(test["package"], test["entry"]) for test in done["final_tests"]}
    assert {test["state"] for test in done["final_tests"]} <= {"passed", "cached"}
    assert {package for package, _ in tested} == set(chain)
    final = result.stdout.strip()
    pins = docker("run", "--rm", final, "cat", "/opt/venv/constraints.txt").splitlines()
    for package in ("numpy", "onnx", "onnxruntime", "opencv-python-headless", "jupyterlab"):
        assert any(line.lower().startswith(f"{package}==") for line in pins), package
    check = subprocess.run(
        ["docker", "run", "--rm", final, "python3", "-m", "pip", "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    # Its lockfile, the chain's images removed, a --locked rebuild from scratch: the same
    # Debian packages and Python distributions, version for version, file for file. An image
    # that another chain on this machine was built on (the quick start's shares the first
    # stages) cannot be removed: --rebuild builds every stage all the same.
    lock = json.loads((logs / "jetforge.lock.json").read_text())
    images = [stage["image_id"] for stage in lock["stages"]]
    subprocess.run(["docker", "rmi", "--force", *reversed(images)], capture_output=True)
    again = tmp_path / "again"
    locked = ("--locked", str(logs / "jetforge.lock.json"), "--rebuild")
    result = build(jetforge, image_name, again, *locked, *E2E)
    assert result.code == 0, result.stderr[-4000:]
    assert {stage["state"] for stage in summary(again)["stages"]} == {"built"}
    rebuilt = json.loads((again / "jetforge.lock.json").read_text())
    assert installed(rebuilt) == installed(lock)
    hashed = [item for _, kind, item in installed(lock) if kind == "python" and "sha256=" in item]
    assert any(item.startswith("numpy==") for item in hashed), hashed
    assert len(hashed) >= 50  # every distribution the chain's pip installs has its file
    assert [s["key"] for s in rebuilt["stages"]] != [s["key"] for s in lock["stages"]]


def installed(lock: dict) -> list[tuple[str, str, str]]:
    """(variant, kind, name==version [sha256=…]) of everything each stage installed."""
    found = []
    for stage in lock["stages"]:
        for deb in stage["installed"]["deb"]:
            found.append((stage["variant"], "deb", f"{deb['name']}=={deb['version']}"))
        for item in stage["installed"]["python"]:
            file = f" sha256={item['sha256']}" if item.get("sha256") else ""
            line = f"{item['name']}=={item['version']}{file} in {item['environment']}"
            found.append((stage["variant"], "python", line))
    return sorted(found)


def test_a_later_stage_cannot_downgrade_a_pinned_package(jetforge, image_name, tmp_path):
    logs = tmp_path / "logs"
    result = build(jetforge, image_name, logs, "downgrader", package_dirs=FIXTURES / "downgrade")
    assert result.code == 1, result.stderr
    assert "downgrader failed in build" in result.stderr
    assert "The user requested numpy<2" in result.stderr
    assert "The user requested (constraint) numpy==2." in result.stderr
    assert "ResolutionImpossible" in result.stderr
    states = {stage["package"]: stage["state"] for stage in summary(logs)["stages"]}
    assert states["numpy:2"] in ("built", "reused")
    assert states["downgrader"] == "failed"
