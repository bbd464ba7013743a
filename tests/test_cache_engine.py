"""The package cache in real builds (BuildKit through Debian's docker 20.10 client).

A fixture sdist (a C extension that exists on no public index) is served by a static
mirror; the first build compiles it and uploads the wheel to the real cache server, the
next installs that wheel. Down sources are reported and left out; bundles carry wheels to
a cache with no other source; final images hold no cache URL or credential.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetforge.cache.control import CachePaths
from support.engines import docker, free_port
from support.mirror import Mirror, make_sdist
from tests.conftest import FIXTURES

pytestmark = pytest.mark.engine

BUILDKIT = {"JETFORGE_DOCKER": "/usr/bin/docker"}
WHEEL_GLOB = "jfdemo-1.0-cp*-linux_*.whl"


@pytest.fixture
def buildkit(docker_engine: None) -> dict[str, str]:
    """The environment that selects in-daemon BuildKit (build secrets need it)."""
    if not Path("/usr/bin/docker").exists():
        pytest.fail("Debian's docker client /usr/bin/docker is missing (scripts/setup)")
    return dict(BUILDKIT)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of the fixture packages with fresh salts (nothing to reuse)."""
    copy = tmp_path / "packages"
    shutil.copytree(FIXTURES / "engine" / "cache" / "packages", copy)
    for salt in copy.glob("*/salt.txt"):
        salt.write_text(uuid.uuid4().hex + "\n")
    return copy


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    """A static index that has the jfdemo sdist and nothing else."""
    served = Mirror(tmp_path / "mirror", [make_sdist(tmp_path / "sdist")])
    yield served
    served.close()


@pytest.fixture
def cache(jetforge, cli_env) -> Iterator[CachePaths]:
    """A real cache server for this test's cache directory; stopped afterwards."""
    started = jetforge("cache", "serve", "--background", "--port", "0")
    assert started.code == 0, started.stderr
    yield CachePaths.under(Path(cli_env["XDG_CACHE_HOME"]) / "jetforge")
    jetforge("cache", "stop")


def build(jetforge, tree: Path, name: str, logs: Path, package: str, env: dict, *extra: str):
    return jetforge(
        "build", "--package-dirs", str(tree), "--distro", "debian:12", "--base", "debian:12",
        "--name", name, "--logs", str(logs), *extra, package, env=env,
    )  # fmt: skip


def stage(logs: Path, package: str) -> dict:
    summary = json.loads((logs / "summary.json").read_text())
    return next(s for s in summary["stages"] if s["package"] == package)


def stage_log(logs: Path, package: str) -> str:
    return next(logs.glob(f"*-{package}.build.log")).read_text()


def store_wheels(paths: CachePaths) -> list[Path]:
    return sorted((paths.default_store / "wheels").glob(f"*/{WHEEL_GLOB}"))


def test_compiled_wheel_is_cached_then_installed_without_compiling(
    jetforge, buildkit, tree, mirror, cache, image_name, tmp_path
):
    env = {**buildkit, "JETFORGE_CACHE_URLS": mirror.url}
    cold = tmp_path / "cold"
    result = build(jetforge, tree, image_name, cold, "jfwheel", env)
    assert result.code == 0, result.stderr
    assert "package sources: local cache http://127.0.0.1:" in result.stderr
    events = stage(cold, "jfwheel")["cache"]
    assert any(e.startswith("compiled jfdemo-1.0-") for e in events), events
    assert any(e.startswith("uploaded jfdemo-1.0-") for e in events), events
    assert "Building wheel for jfdemo" in stage_log(cold, "jfwheel")
    wheels = store_wheels(cache)
    assert len(wheels) == 1
    platform = json.loads(jetforge("platform", "--json", "--distro", "debian:12").stdout)
    assert wheels[0].parent.name == platform["tag_postfix"]

    # Stage reuse off and BuildKit's layer cache off: every RUN runs again.
    warm = tmp_path / "warm"
    flags = ("--rebuild", "--build-flags=--no-cache")
    result = build(jetforge, tree, image_name, warm, "jfwheel", env, *flags)
    assert result.code == 0, result.stderr
    assert stage(warm, "jfwheel")["state"] == "built"
    events = stage(warm, "jfwheel")["cache"]
    assert events == [f"cached jfdemo 1.0 {wheels[0].name}"]
    assert "package cache: cached jfdemo 1.0" in result.stderr
    log = stage_log(warm, "jfwheel")
    assert "Building wheel for jfdemo" not in log
    assert f"/packages/{wheels[0].name}" in log

    # Nothing of the cache is in the final image: not in its environment, history, labels
    # or files; it works with the cache gone, and its pip knows no cache.
    final = result.stdout.strip()
    url = json.loads(jetforge("cache", "status", "--json").stdout)["url"]
    password = cache.credentials_file.read_text().strip().partition(":")[2]
    inspected = docker("image", "inspect", final)
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", final)
    for text in (inspected, history):
        for secret in (url, url.rstrip("/").rsplit(":", 1)[1], mirror.url, password):
            assert secret not in text
        assert "jetforge-cache" not in text
        assert "PIP_INDEX_URL" not in text
        assert "index-url" not in text.lower()
    jetforge("cache", "stop")
    inside = docker(
        "run", "--rm", final, "sh", "-c",
        "cat /etc/xdg/pip/pip.conf /run/secrets/jetforge-cache 2>/dev/null; pip config list; "
        "python3 -c 'import jfdemo; print(jfdemo.answer())'",
    )  # fmt: skip
    assert inside.splitlines()[-1] == "42"
    assert "index" not in inside
    assert "127.0.0.1" not in inside


def test_stopped_cache_and_closed_mirror_are_reported_and_skipped(
    jetforge, buildkit, tree, mirror, cache, image_name, tmp_path
):
    assert jetforge("cache", "stop").code == 0
    closed = f"http://127.0.0.1:{free_port()}/simple/"
    env = {**buildkit, "JETFORGE_CACHE_URLS": f"{closed},{mirror.url}"}
    logs = tmp_path / "logs"
    result = build(jetforge, tree, image_name, logs, "jfwheel", env)
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "is down" in line]
    assert len(warnings) == 2, result.stderr
    assert "local cache http://127.0.0.1:" in warnings[0]
    assert "is down (not running)" in warnings[0]
    assert "jetforge cache serve --background" in warnings[0]
    assert f"mirror {closed} is down (connection refused)" in warnings[1]
    log = stage_log(logs, "jfwheel")
    looking = next(line for line in log.splitlines() if "Looking in indexes:" in line)
    assert closed not in looking
    assert mirror.url in looking
    events = stage(logs, "jfwheel")["cache"]
    assert any(e.startswith("compiled jfdemo-1.0-") for e in events), events
    assert any(e.startswith("not-uploaded jfdemo-1.0-") for e in events), events
    assert store_wheels(cache) == []


def test_bundle_serves_a_build_with_no_other_python_source(
    jetforge, buildkit, tree, mirror, cache, image_name, tmp_path, cli_env
):
    env = {**buildkit, "JETFORGE_CACHE_URLS": mirror.url}
    assert build(jetforge, tree, image_name, tmp_path / "one", "jfwheel", env).code == 0
    bundle = tmp_path / "bundle.tar.gz"
    assert jetforge("cache", "export", str(bundle)).code == 0

    # Another machine: its own cache directory with only the imported bundle; the mirror
    # is not configured and PyPI does not answer.
    other = {**cli_env, "XDG_CACHE_HOME": str(tmp_path / "other-cache")}
    imported = jetforge("cache", "import", str(bundle), env=other)
    assert imported.code == 0, imported.stderr
    assert jetforge("cache", "serve", "--background", "--port", "0", env=other).code == 0
    try:
        closed_pypi = f"http://127.0.0.1:{free_port()}/simple/"
        offline = {**other, **buildkit, "JETFORGE_PYPI_URL": closed_pypi}
        logs = tmp_path / "offline"
        result = build(jetforge, tree, image_name, logs, "jfplain", offline)
        assert result.code == 0, result.stderr
        assert f"PyPI {closed_pypi} is down" in result.stderr
        log = stage_log(logs, "jfplain")
        looking = next(line for line in log.splitlines() if "Looking in indexes:" in line)
        assert looking.split("Looking in indexes:")[1].strip().count("http") == 1
        assert "Building wheel" not in log
        assert "jfdemo-1.0-cp" in log
    finally:
        jetforge("cache", "stop", env=other)


def test_tarball_is_built_and_uploaded_then_fetched(
    jetforge, buildkit, tree, cache, image_name, tmp_path
):
    first = tmp_path / "first"
    result = build(jetforge, tree, image_name, first, "jftarball", buildkit)
    assert result.code == 0, result.stderr
    assert stage(first, "jftarball")["cache"] == [
        "tarball-built jfhello-1.0",
        "tarball-uploaded jfhello-1.0",
    ]
    assert len(list((cache.default_store / "tarballs").glob("*/jfhello-1.0.tar.gz"))) == 1
    (tree / "jftarball" / "salt.txt").write_text(uuid.uuid4().hex)
    second = tmp_path / "second"
    result = build(jetforge, tree, image_name, second, "jftarball", buildkit)
    assert result.code == 0, result.stderr
    assert stage(second, "jftarball")["cache"] == ["tarball-cached jfhello-1.0"]
    assert "jfhello ok" in (second / "03-jftarball.test.log").read_text()


def test_legacy_builder_warns_once_and_builds_without_the_cache(
    jetforge, docker_engine, tree, cache, image_name, tmp_path
):
    logs = tmp_path / "logs"
    result = build(jetforge, tree, image_name, logs, "jftarball", {"JETFORGE_BUILD_MODE": "legacy"})
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "legacy builder cannot pass build secrets" in warnings[0]
    assert stage(logs, "jftarball")["cache"] == [
        "tarball-built jfhello-1.0",
        "tarball-not-uploaded jfhello-1.0 (no local cache in this build)",
    ]
    assert "--secret" not in (logs / "03-jftarball.build.sh").read_text()


def test_podman_builds_get_the_cache_too(jetforge, docker_engine, tree, cache, tmp_path):
    if subprocess.run(["podman", "--version"], capture_output=True).returncode != 0:
        pytest.fail("podman is not installed (scripts/setup installs it)")
    name = f"jftest-podman-cache-{uuid.uuid4().hex[:8]}"
    podman = {"JETFORGE_ENGINE": "podman"}
    try:
        first = tmp_path / "first"
        result = build(jetforge, tree, name, first, "jftarball", podman)
        assert result.code == 0, result.stderr
        assert "--secret" in (first / "03-jftarball.build.sh").read_text()
        assert stage(first, "jftarball")["cache"] == [
            "tarball-built jfhello-1.0",
            "tarball-uploaded jfhello-1.0",
        ]
        (tree / "jftarball" / "salt.txt").write_text(uuid.uuid4().hex)
        second = tmp_path / "second"
        result = build(jetforge, tree, name, second, "jftarball", podman)
        assert result.code == 0, result.stderr
        assert stage(second, "jftarball")["cache"] == ["tarball-cached jfhello-1.0"]
    finally:
        listed = subprocess.run(
            ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", name],
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        if listed:
            subprocess.run(["podman", "rmi", "--force", *listed], capture_output=True)
