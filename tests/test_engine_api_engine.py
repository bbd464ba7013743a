"""The engine API on the real engines: the same images, labels and tags as the programs
give, and a no-op rebuild that starts no engine process at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetforge.engine.cli_engine import CliEngine
from jetforge.engine.docker import DockerEngine
from jetforge.engine.podman import PodmanEngine

pytestmark = pytest.mark.engine

PROGRAM_ONLY = {"JETFORGE_ENGINE_API": "0"}


def make_image(program: str, name: str, label: str) -> None:
    """A small labelled image with two names, ``NAME:a`` and ``NAME:b``."""
    dockerfile = f"FROM debian:12\nLABEL jftest.api={label}\nENV JFTEST_API={label}\n"
    subprocess.run(
        [program, "build", "--quiet", "--tag", f"{name}:a", "-"],
        input=dockerfile,
        text=True,
        capture_output=True,
        check=True,
    )
    subprocess.run([program, "tag", f"{name}:a", f"{name}:b"], check=True)


def assert_same_answers(api: CliEngine, cli: CliEngine, name: str, label: str) -> None:
    """Both engines give the same ImageInfo for every query jetforge makes."""
    assert api.api is not None
    assert cli.api is None
    found = api.inspect(f"{name}:a")
    assert found is not None
    assert found.labels["jftest.api"] == label
    assert f"JFTEST_API={label}" in found.env
    assert found.layers
    assert found.architecture
    assert found.created
    for reference in (f"{name}:a", f"{name}:b", found.id, "debian:12", f"{name}:missing"):
        assert api.inspect(reference) == cli.inspect(reference), reference
    for filters in ([f"label=jftest.api={label}"], ["label=jftest.api", f"reference={name}"]):
        listed = api.list_images(filters)
        assert listed == cli.list_images(filters), filters
        assert [info.id for info in listed] == [found.id]


def names(engine: CliEngine, reference: str) -> set[str]:
    found = engine.inspect(reference)
    return set(found.tags) if found else set()


def test_docker_api_and_program_give_the_same_images_labels_and_tags(image_name):
    env = dict(os.environ)
    api, cli = DockerEngine.connect(env), DockerEngine.connect({**env, **PROGRAM_ONLY})
    make_image("docker", image_name, image_name)
    assert_same_answers(api, cli, image_name, image_name)
    api.tag(f"{image_name}:a", f"{image_name}:c")
    assert names(cli, f"{image_name}:a") == {f"{image_name}:{t}" for t in "abc"}
    api.untag(f"{image_name}:c")
    api.untag(f"{image_name}:b")
    assert names(cli, f"{image_name}:a") == {f"{image_name}:a"}
    api.untag(f"{image_name}:a")  # its last name: kept, like the image
    assert names(cli, f"{image_name}:a") == {f"{image_name}:a"}


@pytest.fixture
def podman_service(tmp_path: Path) -> Iterator[str]:
    """A private ``podman system service`` on a socket of its own, stopped afterwards."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if subprocess.run(["podman", "image", "exists", "debian:12"]).returncode != 0:
        pytest.skip("podman has no debian:12 image (scripts/setup loads it)")
    socket_path = tmp_path / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists() and service.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail("podman system service did not create its socket in 30 s")
            time.sleep(0.05)
        if service.poll() is not None:
            pytest.skip("podman system service does not run here")
        yield f"unix://{socket_path}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@pytest.mark.podman
def test_podman_api_and_program_give_the_same_images_labels_and_tags(podman_service, image_name):
    env = {key: value for key, value in os.environ.items() if key != "CONTAINER_HOST"}
    api = PodmanEngine.connect({**env, "CONTAINER_HOST": podman_service})
    cli = PodmanEngine.connect({**env, **PROGRAM_ONLY})
    make_image("podman", image_name, image_name)
    try:
        assert api.api is not None
        assert api.api.prefix.endswith("/libpod")
        assert_same_answers(api, cli, image_name, image_name)
        local = f"localhost/{image_name}"
        api.tag(f"{image_name}:a", f"{image_name}:c")
        assert names(cli, f"{image_name}:a") == {f"{local}:{t}" for t in "abc"}
        api.untag(f"{image_name}:c")
        assert names(cli, f"{image_name}:a") == {f"{local}:{t}" for t in "ab"}
    finally:
        subprocess.run(["podman", "rmi", "--force", f"{image_name}:a"], capture_output=True)


RECORDING_DOCKER = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
exec "{docker}" "$@"
"""


def test_a_no_op_rebuild_starts_no_engine_process(jetforge, chain_tree, image_name, tmp_path):
    # A docker that records every call and runs the real one, found first on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker-calls"
    wrapper = bin_dir / "docker"
    wrapper.write_text(RECORDING_DOCKER.format(log=log, docker=shutil.which("docker")))
    wrapper.chmod(0o755)
    time.sleep(1.1)  # a program changed a moment ago is not remembered
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    args = ["build", "--package-dirs", str(chain_tree), "--distro", "debian:12"]
    args += ["--base", "debian:12", "--name", image_name]
    first = jetforge(*args, "--logs", str(tmp_path / "first"), "fd", env=env)
    assert first.code == 0, first.stderr
    assert "build" in log.read_text()  # the wrapper ran the builds
    log.write_text("")
    again = jetforge(*args, "--logs", str(tmp_path / "again"), "fd", env=env)
    assert again.code == 0, again.stderr
    assert again.stdout == first.stdout
    assert log.read_text() == ""  # no version, buildx, inspect, images, tag, run: none
