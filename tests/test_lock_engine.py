"""The lockfile and SBOM on the real engine: the shipped numpy chain on Debian 12 (about a
minute with nothing to reuse): the lock lists the base image's dpkg packages, the apt
packages of the python stage and numpy with the versions the images hold; `jetforge sbom`
prints an SPDX document naming them; a rebuild that reuses every stage runs no container
for the lock and writes the same file; `--locked` passes with that lock and fails, naming
numpy, with one that pins another numpy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine


def build(jetforge, name: str, logs: Path, *extra: str):  # type: ignore[no-untyped-def]
    return jetforge(
        "build", "--distro", "debian:12", "--base", "debian:12", "--name", name,
        "--logs", str(logs), *extra, "numpy",
    )  # fmt: skip


def in_image(image: str, *argv: str) -> str:
    done = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "", image, *argv],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return done.stdout.strip()


def collector_containers() -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", "label=jetforge.container=inventory"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_the_numpy_chain_gets_a_lockfile_and_an_sbom(jetforge, image_name, tmp_path):
    logs, again = tmp_path / "logs", tmp_path / "again"
    result = build(jetforge, image_name, logs, "--lock", str(tmp_path / "numpy.lock.json"))
    assert result.code == 0, result.stderr[-4000:]
    final = result.stdout.strip()
    text = (logs / "jetforge.lock.json").read_text()
    assert (tmp_path / "numpy.lock.json").read_text() == text
    lock = json.loads(text)
    assert lock["format"] == 1
    assert lock["final_image"] == final
    base_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", "debian:12"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert lock["base"]["id"] == base_id
    assert lock["base"]["os"] == {"id": "debian", "version": "12"}
    base_debs = {d["name"]: d["version"] for d in lock["base"]["installed"]["deb"]}
    assert base_debs["dpkg"] == in_image(
        "debian:12", "dpkg-query", "-W", "-f", "${Version}", "dpkg"
    )
    stages = {stage["variant"]: stage for stage in lock["stages"]}
    assert {"build-essential", "python:3.11", "numpy:2"} <= set(stages)
    python_debs = {d["name"]: d["version"] for d in stages["python:3.11"]["installed"]["deb"]}
    assert python_debs["python3"] == in_image(
        final, "dpkg-query", "-W", "-f", "${Version}", "python3"
    )
    assert "dpkg" not in python_debs  # the base had it already
    numpy = [p for p in stages["numpy:2"]["installed"]["python"] if p["name"] == "numpy"]
    version = in_image(final, "python3", "-c", "import numpy; print(numpy.__version__)")
    assert numpy == [{"name": "numpy", "version": version, "environment": "/opt/venv"}]
    python = in_image(final, "python3", "-c", "import platform; print(platform.python_version())")
    interpreters = stages["python:3.11"]["installed"]["interpreters"]
    assert {"path": "/opt/venv/bin/python3", "version": python, "environment": "/opt/venv"} in (
        interpreters
    )
    assert collector_containers() == []

    shown = jetforge("sbom", final)
    assert shown.code == 0, shown.stderr
    assert shown.stdout == (logs / "sbom.spdx.json").read_text()
    document = json.loads(shown.stdout)
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["packages"][0]["versionInfo"] == lock["final_image_id"]
    named = {(p["name"], p["versionInfo"]) for p in document["packages"]}
    assert {("dpkg", base_debs["dpkg"]), ("numpy", version), ("python", python)} <= named
    purls = {p["externalRefs"][0]["referenceLocator"] for p in document["packages"][1:]}
    assert f"pkg:pypi/numpy@{version}" in purls

    result = build(jetforge, image_name, again)
    assert result.code == 0, result.stderr[-4000:]
    summary = json.loads((again / "summary.json").read_text())
    assert {stage["state"] for stage in summary["stages"]} == {"reused"}
    assert summary["lock_containers"] == 0
    assert (again / "jetforge.lock.json").read_text() == text
    assert (again / "sbom.spdx.json").read_text() == shown.stdout
    first = json.loads((logs / "summary.json").read_text())
    print(  # the lock step's cost, for the record (pytest -s)
        f"lock step: {first['lock_seconds']} s with {first['lock_containers']} containers "
        f"(build {first['total_seconds']} s); reusing: {summary['lock_seconds']} s "
        f"(build {summary['total_seconds']} s)"
    )

    # --locked: the same lock passes; a lock with another numpy version fails naming it
    locked = tmp_path / "numpy.lock.json"
    passed = build(jetforge, image_name, tmp_path / "locked", "--locked", str(locked))
    assert passed.code == 0, passed.stderr[-4000:]
    drifted = json.loads(text)
    for stage in drifted["stages"]:
        for item in stage["installed"]["python"]:
            if item["name"] == "numpy":
                item["version"] = "1.0.0"
    other = tmp_path / "drifted.lock.json"
    other.write_text(json.dumps(drifted))
    failed = build(jetforge, image_name, tmp_path / "drift", "--locked", str(other))
    assert failed.code == 1, failed.stderr[-4000:]
    assert f"python numpy (/opt/venv) is {version}, locked 1.0.0" in failed.stderr
    assert (tmp_path / "drift" / "lock-differences.txt").exists()
