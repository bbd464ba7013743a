"""The lockfile and SBOM on the real engine.

The shipped numpy chain on Debian 12 (the quick start's; about a minute with nothing to
reuse): the lock lists the base image's dpkg packages, the apt packages of the python
stage, and numpy with the version the image holds and the sha256 and URL of the wheel pip
got; `jetforge sbom` prints an SPDX document naming numpy and python; a rebuild that reuses
every stage runs no container for the lock and writes the same file; `--locked` passes
with that lock (reusing the lockfile's images) and fails, naming numpy, with one that pins
another numpy. A test index that serves another file for the same version fails a locked
rebuild at its stage, naming the distribution. The e2e tier's lock → rebuild is in
tests/test_packages_engine.py."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engines import docker
from support.mirror import Mirror, make_wheel
from tests.conftest import FIXTURES

pytestmark = pytest.mark.engine


def build(jetforge, name: str, logs: Path, *extra: str):  # type: ignore[no-untyped-def]
    return jetforge(
        "build", "--distro", "debian:12", "--base", "debian:12", "--name", name,
        "--logs", str(logs), *extra, "numpy",
    )  # fmt: skip


def in_image(image: str, *argv: str) -> str:
    return docker("run", "--rm", "--entrypoint", "", image, *argv, timeout=120).strip()


def collector_containers() -> list[str]:
    label = "label=jetforge.container=inventory"
    return docker("ps", "--all", "--quiet", "--filter", label).split()


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
    base_id = docker("image", "inspect", "--format", "{{.Id}}", "debian:12").strip()
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
    assert len(numpy) == 1
    assert (numpy[0]["version"], numpy[0]["environment"]) == (version, "/opt/venv")
    # jetforge-pip-install recorded the file pip got from PyPI
    assert re.fullmatch("[0-9a-f]{64}", numpy[0]["sha256"]), numpy
    assert numpy[0]["url"].endswith(".whl")
    assert f"/numpy-{version}-" in numpy[0]["url"]
    assert numpy[0]["index"] == "https://files.pythonhosted.org"
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


def serve_jfpin(root: Path, text: str) -> Mirror:
    """A static index with one file, jfpin 1.0, whose module holds ``text``."""
    return Mirror(root, [make_wheel(root / "wheel", "jfpin", "1.0", text)])


@pytest.fixture
def mirrors(tmp_path: Path) -> Iterator[list[Mirror]]:
    started: list[Mirror] = []
    yield started
    for mirror in started:
        mirror.close()


def test_an_index_serving_another_file_for_the_locked_version_fails_naming_it(
    jetforge, image_name, tmp_path, mirrors
):
    first = serve_jfpin(tmp_path / "first", "the locked file")
    mirrors.append(first)
    lock_path = tmp_path / "jfpinned.lock.json"

    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "engine" / "locked", tree)

    def build_jfpinned(logs: Path, index: Mirror, *extra: str):  # type: ignore[no-untyped-def]
        (tree / "jfpinned" / "index.txt").write_text(index.url + "\n")
        return jetforge(
            "build", "--package-dirs", str(tree), "--distro", "debian:12", "--base",
            "debian:12", "--name", image_name, "--logs", str(logs), *extra, "jfpinned",
        )  # fmt: skip

    result = build_jfpinned(tmp_path / "logs", first, "--lock", str(lock_path))
    assert result.code == 0, result.stderr[-4000:]
    lock = json.loads(lock_path.read_text())
    stage = next(s for s in lock["stages"] if s["variant"] == "jfpinned")
    wheel = tmp_path / "first" / "files" / "jfpin-1.0-py3-none-any.whl"
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    jfpin = [p for p in stage["installed"]["python"] if p["name"] == "jfpin"]
    assert jfpin == [
        {
            "name": "jfpin",
            "version": "1.0",
            "environment": "/opt/venv",
            "sha256": sha256,
            "url": first.url.replace("/simple/", "/files/jfpin-1.0-py3-none-any.whl"),
            "index": first.url.removesuffix("/simple/"),
        }
    ]

    # The same name and version, another file; the stage's image is gone, so the locked
    # build must install jfpin again (its parents are the lockfile's images, reused).
    subprocess.run(["docker", "rmi", "--force", stage["image_id"]], check=True)
    other = serve_jfpin(tmp_path / "other", "another file")
    mirrors.append(other)
    logs = tmp_path / "locked"
    failed = build_jfpinned(logs, other, "--locked", str(lock_path))
    assert failed.code == 1, failed.stderr[-4000:]
    assert "jfpinned failed in build" in failed.stderr
    assert f"jfpin 1.0: pip got {other.url.removesuffix('/simple/')}/files/" in failed.stderr
    assert f"the lockfile pins sha256 {sha256}" in failed.stderr
    states = {
        s["package"]: s["state"] for s in json.loads((logs / "summary.json").read_text())["stages"]
    }
    assert states["python:3.11"] == "reused"
    assert states["jfpinned"] == "failed"
    dockerfile = logs / f"{next(logs.glob('*-jfpinned.build.log')).name.split('.')[0]}.Dockerfile"
    assert f"\n    jfpin ==1.0 {sha256} /opt/venv \\\n" in dockerfile.read_text()

    # The index that serves the locked file again: the locked build passes.
    passed = build_jfpinned(tmp_path / "again", first, "--locked", str(lock_path))
    assert passed.code == 0, passed.stderr[-4000:]
    again = json.loads((tmp_path / "again" / "jetforge.lock.json").read_text())
    rebuilt = next(s for s in again["stages"] if s["variant"] == "jfpinned")
    assert rebuilt["installed"]["python"] == jfpin
    assert rebuilt["key"] != stage["key"]  # the lock is in the locked stage's key

    # jetforge lock: with jfpin 1.1 on the index too, a refresh moves nothing; naming
    # jfpin lets it (and only it) move.
    newer = Mirror(
        tmp_path / "newer",
        [wheel, make_wheel(tmp_path / "newer-wheel", "jfpin", "1.1", "the newer file")],
    )
    mirrors.append(newer)

    def refresh(logs: Path, *extra: str):  # type: ignore[no-untyped-def]
        (tree / "jfpinned" / "index.txt").write_text(newer.url + "\n")
        return jetforge(
            "lock", "--package-dirs", str(tree), "--distro", "debian:12", "--base", "debian:12",
            "--name", image_name, "--logs", str(logs), "--file", str(lock_path), *extra,
            "jfpinned",
        )  # fmt: skip

    kept = refresh(tmp_path / "kept")
    assert kept.code == 0, kept.stderr[-4000:]
    assert installed_python(lock_path, "jfpin") == [("1.0", sha256)]
    upgraded = refresh(tmp_path / "upgraded", "--upgrade", "jfpin")
    assert upgraded.code == 0, upgraded.stderr[-4000:]
    newest = tmp_path / "newer" / "files" / "jfpin-1.1-py3-none-any.whl"
    assert installed_python(lock_path, "jfpin") == [
        ("1.1", hashlib.sha256(newest.read_bytes()).hexdigest())
    ]
    refreshed = json.loads(lock_path.read_text())
    python_debs = [
        s["installed"]["deb"] for s in refreshed["stages"] if s["variant"] == "python:3.11"
    ]
    assert python_debs == [
        s["installed"]["deb"] for s in lock["stages"] if s["variant"] == "python:3.11"
    ]
    states = {
        s["package"]: s["state"]
        for s in json.loads((tmp_path / "upgraded" / "summary.json").read_text())["stages"]
    }
    assert states["python:3.11"] == "reused"
    bad = refresh(tmp_path / "bad", "--upgrade", "nosuch")
    assert bad.code == 2
    assert "--upgrade nosuch:" in bad.stderr


def installed_python(path: Path, name: str) -> list[tuple[str, str]]:
    """(version, sha256) of every ``name`` the lockfile at ``path`` lists."""
    lock = json.loads(path.read_text())
    return [
        (item["version"], item.get("sha256", ""))
        for stage in lock["stages"]
        for item in stage["installed"]["python"]
        if item["name"] == name
    ]


def test_a_locked_build_pulls_the_base_by_the_digest_the_lock_has(
    jetforge, image_name, tmp_path, registry
):
    base = f"{registry.address}/{image_name}-base:12"
    subprocess.run(["docker", "tag", "debian:12", base], check=True)
    docker("push", base)
    lock_path = tmp_path / "jfbare.lock.json"

    def build_jfbare(logs: Path, *extra: str):  # type: ignore[no-untyped-def]
        return jetforge(
            "build", "--package-dirs", str(FIXTURES / "engine" / "locked"), "--distro",
            "debian:12", "--base", base, "--name", image_name, "--logs", str(logs), *extra,
            "jfbare",
        )  # fmt: skip

    result = build_jfbare(tmp_path / "logs", "--lock", str(lock_path))
    assert result.code == 0, result.stderr[-4000:]
    lock = json.loads(lock_path.read_text())
    digest = next(d for d in lock["base"]["digests"] if d.startswith(f"{registry.address}/"))
    # The base's name and digest are gone here (the image stays: debian:12 is the same):
    # the locked build pulls the lock's digest.
    docker("rmi", base)
    subprocess.run(["docker", "rmi", digest], check=False, capture_output=True)
    again = build_jfbare(tmp_path / "again", "--locked", str(lock_path))
    assert again.code == 0, again.stderr[-4000:]
    assert f"pulling base image {digest}" in again.stderr
    rebuilt = json.loads((tmp_path / "again" / "jetforge.lock.json").read_text())
    assert (rebuilt["base"]["reference"], rebuilt["base"]["id"]) == (digest, lock["base"]["id"])
    assert [s["image_id"] for s in rebuilt["stages"]] == [s["image_id"] for s in lock["stages"]]
    docker("rmi", digest)  # the pull's name


def test_a_stage_pinned_to_3000_debian_packages_builds_on_the_legacy_builder(
    jetforge, image_name, tmp_path
):
    """A ROS-sized lock: thousands of pins are one physical line each, spread over as many
    RUN instructions as `sh -c` takes, and apt reads them all (the last one holds dpkg)."""
    lock_path = tmp_path / "jfwide.lock.json"

    def lock_jfwide(logs: Path):  # type: ignore[no-untyped-def]
        return jetforge(
            "lock", "--package-dirs", str(FIXTURES / "engine" / "locked"), "--distro",
            "debian:12", "--base", "debian:12", "--name", image_name, "--logs", str(logs),
            "--file", str(lock_path), "jfwide",
            env={"JETFORGE_BUILD_MODE": "legacy"},
        )  # fmt: skip

    first = lock_jfwide(tmp_path / "first")
    assert first.code == 0, first.stderr[-4000:]
    lock = json.loads(lock_path.read_text())
    dpkg = next(d for d in lock["base"]["installed"]["deb"] if d["name"] == "dpkg")
    stage = next(s for s in lock["stages"] if s["variant"] == "jfwide")
    absent = [
        {
            "name": f"aa-absent-package-{n:04d}",
            "version": f"1.0.{n}-1+deb12u1",
            "architecture": "amd64",
        }
        for n in range(3000)
    ]  # apt preferences for packages that are not installed are harmless
    stage["installed"]["deb"] = [*absent, dpkg]
    stage["key"] = "0" * 64  # not the lockfile's own stage: built again, with the pins
    lock_path.write_text(json.dumps(lock))

    logs = tmp_path / "pinned"
    pinned = lock_jfwide(logs)
    assert pinned.code == 0, pinned.stderr[-4000:]
    assert json.loads((logs / "plan.json").read_text())["build_mode"] == "legacy"
    states = [s["state"] for s in json.loads((logs / "summary.json").read_text())["stages"]]
    assert states[-1] == "built"
    dockerfile = next(logs.glob("*-jfwide.Dockerfile")).read_text()
    assert max(len(line.encode()) for line in dockerfile.splitlines()) < 65_535
    assert len(dockerfile.replace("\\\n", "")) > 128 * 1024  # more than one `sh -c` takes
    assert dockerfile.count("\nRUN ") >= 3
    image = pinned.stdout.strip()
    preferences = in_image(image, "cat", "/etc/apt/preferences.d/jetforge-lock")
    assert preferences.count("Package: ") == 3001
    assert "Package: aa-absent-package-2999\nPin: version 1.0.2999-1+deb12u1\n" in preferences
    policy = in_image(image, "cat", "/jfwide")  # apt-cache policy dpkg, after the pins
    assert f"*** {dpkg['version']} 1001" in policy, policy
