"""Shared fixtures (fixture package trees, an in-process CLI, the real engine) and the test
tiers.

Every test is in one tier, given as a marker (README, "Tests"): ``engine`` (marked
``engine``, ``podman`` or ``registry``: a real engine), ``adversarial`` (the corpus of
tests/adversarial/), ``process`` (marked so, or in one of :data:`PROCESS_MODULES`: it
starts processes) and ``unit``, the rest: a unit test that starts a process fails.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.engines import Registry, start_registry

FIXTURES = Path(__file__).parent / "fixtures"
ENGINE_MARKERS = ("engine", "podman", "registry")
# Modules whose tests (nearly all) start processes: jetforge as a process, the worker that
# runs config scripts (trees with config.py), stand-in engine programs, benchmarks.
PROCESS_MODULES = frozenset(
    {
        "test_bake.py",
        "test_bench.py",
        "test_cli.py",
        "test_discover.py",
        "test_farm.py",
        "test_index.py",
        "test_jc.py",
        "test_packages.py",
        "test_plan.py",
        "test_probes.py",
        "test_reuse.py",
        "test_startup.py",
    }
)


def tier_of(item: pytest.Item) -> str:
    """The tier of one test (see the module's text)."""
    if any(item.get_closest_marker(name) for name in ENGINE_MARKERS):
        return "engine"
    if item.path.parent.name == "adversarial":
        return "adversarial"
    if item.get_closest_marker("process") or item.path.name in PROCESS_MODULES:
        return "process"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test its tier's marker (``-m unit`` runs the unit tier)."""
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(item)))


class ProcessInUnitTestError(BaseException):
    """A unit test started a process (a BaseException: code under test that catches
    Exception cannot hide it)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A unit test that starts a process (a subprocess, a fork) fails, naming the way out:
    the ``process`` marker."""
    if tier_of(item) != "unit":
        return (yield)
    started: list[str] = []

    def refuse(what: str) -> None:
        started.append(what)
        raise ProcessInUnitTestError(f"a unit test starts no process ({what})")

    def execute_child(self: subprocess.Popen[bytes], args: object, *rest: object) -> None:
        refuse(f"subprocess {args!r}")

    saved = subprocess.Popen._execute_child, os.fork  # type: ignore[attr-defined]
    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined,assignment]
    os.fork = lambda: refuse("os.fork()")  # type: ignore[assignment,return-value]
    try:
        result = yield
    except ProcessInUnitTestError:
        result = None
    finally:
        subprocess.Popen._execute_child, os.fork = saved  # type: ignore[attr-defined]
    if started:
        raise AssertionError(
            f"{item.nodeid} is a unit test but started a process ({started[0]}): "
            "mark it @pytest.mark.process"
        )
    return result


@dataclass
class CliResult:
    """What one in-process ``jetforge`` call printed and returned."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment with private cache, data, state and config directories."""
    env = dict(os.environ)
    for variable in ("CUDA_VERSION", "L4T_VERSION", "PYTHON_VERSION", "JETFORGE_ENGINE"):
        env.pop(variable, None)
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    return env


@pytest.fixture
def jetforge(cli_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Call ``jetforge`` in-process: ``jetforge("list", env={...})``."""
    from jetforge.cli.main import main

    def call(*argv: str, env: dict[str, str] | None = None) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdout=out, stderr=err, env={**cli_env, **(env or {})})
        return CliResult(code, out.getvalue(), err.getvalue())

    return call


def _engine_problem() -> str:
    try:
        done = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "docker info failed"
    done = subprocess.run(
        ["docker", "image", "inspect", "debian:12"], capture_output=True, check=False
    )
    return "" if done.returncode == 0 else "no debian:12 base image (run scripts/setup)"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Require a running Docker daemon with the bootstrapped debian:12 base.

    Without one these tests are skipped (and reported as skipped), except where
    JETFORGE_REQUIRE_ENGINE=1 (CI): there a missing engine fails them.
    """
    problem = _engine_problem()
    if problem:
        if os.environ.get("JETFORGE_REQUIRE_ENGINE") == "1":
            pytest.fail(f"real-engine tests need Docker: {problem}")
        pytest.skip(f"real-engine tests need Docker: {problem}")


@pytest.fixture
def chain_tree(tmp_path: Path) -> Path:
    """A private copy of the 4-stage engine fixture chain with a unique salt.

    The salt makes every stage key new, so each test starts with nothing to reuse.
    """
    tree = tmp_path / "packages"
    shutil.copytree(FIXTURES / "engine" / "chain", tree)
    (tree / "fa" / "salt.txt").write_text(uuid.uuid4().hex + "\n")
    return tree


@pytest.fixture
def image_name(docker_engine: None) -> Iterator[str]:
    """A unique image name; its images are removed afterwards."""
    name = f"jftest-{uuid.uuid4().hex[:8]}"
    yield name
    # Every tag that holds the name: NAME:…, NAME-x:… and NAME/x:… (namespaces, --multiple)
    # and REGISTRY/…/NAME:… (pushed).
    for program in ("docker", "podman"):
        remove_tags(program, name)


def image_tags(program: str, fragment: str) -> set[str]:
    """The local image tags of ``program`` that contain ``fragment`` (none when the
    program is missing or does not answer)."""
    try:
        done = subprocess.run(
            [program, "images", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {tag for tag in done.stdout.split() if fragment in tag}


def remove_tags(program: str, fragment: str) -> None:
    """Remove every local image tag of ``program`` that contains ``fragment``."""
    ours = sorted(image_tags(program, fragment))
    if ours:
        subprocess.run([program, "rmi", "--force", *ours], capture_output=True, check=False)


@pytest.fixture(scope="session", autouse=True)
def no_test_tags_left_behind() -> Iterator[None]:
    """A test run removes every ``jftest`` image tag it makes (docker and podman): the
    run fails here, naming them, when one is left."""
    before = {program: image_tags(program, "jftest") for program in ("docker", "podman")}
    yield
    left = sorted(
        tag
        for program in ("docker", "podman")
        for tag in image_tags(program, "jftest") - before[program]
    )
    assert left == [], f"the tests left {len(left)} image tag(s) behind: {left[:10]}"


@pytest.fixture
def registry(tmp_path: Path, docker_engine: None) -> Iterator[Registry]:
    """A registry with htpasswd auth; docker is logged in to it for the test."""
    root = tmp_path / "registry"
    root.mkdir()
    server, process = start_registry(root, auth=True)
    subprocess.run(
        ["docker", "login", "--username", server.user, "--password-stdin", server.address],
        input=server.password,
        text=True,
        capture_output=True,
        check=True,
    )
    try:
        yield server
    finally:
        subprocess.run(["docker", "logout", server.address], capture_output=True, check=False)
        process.terminate()
        process.wait(timeout=10)


_FAKE_ENGINE = """#!/bin/sh
# A stand-in docker/podman program for fast tests of probing and planning: it answers
# version, buildx, info (from $JETFORGE_FAKE_INFO) and image inspect (no local images, or
# the one image of $JETFORGE_FAKE_IMAGE: a file of `image inspect` JSON), and `run` prints
# its arguments and exits with $JETFORGE_FAKE_EXIT.
case "$1" in
  version) echo '{"Client":{"Version":"28.2.2"},"Server":{"Version":"28.2.2"}}' ;;
  buildx) exit 1 ;;
  info) cat "$JETFORGE_FAKE_INFO" ;;
  image|inspect)
    if [ -n "$JETFORGE_FAKE_IMAGE" ]; then cat "$JETFORGE_FAKE_IMAGE"; exit 0; fi
    echo "Error: No such image: $3" >&2; exit 1 ;;
  run) shift; echo "run $*"; exit "${JETFORGE_FAKE_EXIT:-0}" ;;
  *) echo "fake engine: unexpected: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def fake_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``fake_engine(info)`` → env that makes jetforge use a stand-in engine program whose
    ``info`` prints ``info`` (a dict, as JSON); ``engine="podman"`` selects podman."""
    import json

    program = tmp_path / "fake-engine"
    program.write_text(_FAKE_ENGINE)
    program.chmod(0o755)

    def make(info: dict[str, object], engine: str = "docker") -> dict[str, str]:
        path = tmp_path / f"fake-{engine}-info.json"
        path.write_text(json.dumps(info))
        return {
            "JETFORGE_ENGINE": engine,
            f"JETFORGE_{engine.upper()}": str(program),
            "JETFORGE_FAKE_INFO": str(path),
        }

    return make
