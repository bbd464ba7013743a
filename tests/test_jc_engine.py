"""Real-engine builds of jc-format fixture trees: jc's build arguments, file layout,
BASE_IMAGE chaining, test invocation, layered variants, a JSON meta package and
``--no-github-api``, on the real Docker daemon."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

LIB = Path(__file__).parent / "fixtures" / "jc" / "lib" / "packages"
ENV = {"JETFORGE_SHIPPED_PACKAGES": "", "CUDA_VERSION": "12.8"}


def build(jetforge, name: str, logs: Path, *argv: str):  # type: ignore[no-untyped-def]
    return jetforge(
        "build",
        "--package-dirs",
        str(LIB),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        name,
        "--logs",
        str(logs),
        *argv,
        env=ENV,
    )


def stages(logs: Path) -> dict[str, dict]:
    summary = json.loads((logs / "summary.json").read_text())
    return {
        stage["package"]: stage for stage in summary["stages"] if stage["package"] != "ca-trust"
    }


def test_jc_chain_builds_with_jc_args_layout_tests_layers_and_no_github_api(
    jetforge, image_name, tmp_path
):
    failed = build(jetforge, image_name, tmp_path / "online", "torchlike:2.0")
    # torchlike's Dockerfile ADDs from api.github.com, which this machine cannot reach
    assert failed.code == 1
    assert "torchlike:2.0 failed in build" in failed.stderr
    logs = tmp_path / "logs"
    result = build(jetforge, image_name, logs, "--no-github-api", "torchlike:2.0-all")
    assert result.code == 0, result.stderr
    built = stages(logs)
    # layered variants of one base (torchlike:2.0, torchlike:2.0-all), a JSON meta package
    assert list(built) == [
        "build-essential",
        "python:3.11",
        "torchlike:2.0",
        "torchext:0.1-torchlike:2.0",
        "numpy",
        "bundle",
        "torchlike:2.0-all",
    ]
    assert {stage["state"] for stage in built.values()} <= {"built", "reused"}
    tests = {(t["package"], t["entry"]): t["state"] for t in built["numpy"]["tests"]}
    # numpy's test.py checks the str()-rendered build args, the parents' files, the cwd
    assert tests == {("numpy", "test.py"): "passed", ("numpy", "test.sh --quick"): "passed"}
    assert [t["entry"] for t in built["build-essential"]["tests"]] == ["test.sh"]  # by name
    assert [t["state"] for t in built["torchlike:2.0-all"]["tests"]] == ["passed"]
    numpy_log = next(logs.glob("*-numpy.test.log")).read_text()
    assert "numpy ok" in numpy_log
    assert "numpy test.sh ok (--quick)" in numpy_log
    # every stage builds the Dockerfile written beside its logs: torchlike's own, not the
    # layered torchext_0.1-torchlike_2.0's
    edited = next(logs.glob("[0-9][0-9]-torchlike_2.0.Dockerfile")).read_text()
    assert "# jetforge --no-github-api: ADD https://api.github.com/" in edited
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", result.stdout.strip()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]["Config"]["Labels"]
    assert labels["jetforge.chain"].endswith("numpy,bundle,torchlike:2.0-all")
    again = build(jetforge, image_name, tmp_path / "again", "--no-github-api", "torchlike:2.0-all")
    assert again.code == 0, again.stderr
    assert {stage["state"] for stage in stages(tmp_path / "again").values()} == {"reused"}


def test_private_jc_tree_builds_with_package_format_jc(jetforge, image_name, tmp_path):
    # A private jc tree whose headers carry no jc-only key, outside a jc checkout: read as
    # jc because the user says so; its test.py is found by name and runs with python3.
    tree = tmp_path / "private"
    shutil.copytree(LIB / "apps" / "greeter", tree / "hello")
    dockerfile = tree / "hello" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("name: greeter", "name: hello"))
    logs = tmp_path / "logs"
    result = build(
        jetforge, image_name, logs, "--package-dirs", str(tree), "--package-format", "jc", "hello"
    )
    assert result.code == 0, result.stderr
    assert "also defined" not in result.stderr
    built = stages(logs)
    assert list(built) == ["build-essential", "python:3.11", "numpy", "hello"]
    assert [(t["entry"], t["state"]) for t in built["hello"]["tests"]] == [("test.py", "passed")]
    assert "greeter ok" in next(logs.glob("*-hello.test.log")).read_text()
