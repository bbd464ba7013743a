"""Reuse on the real engine (legacy builder): only a completed build of a stage on the image
chosen for its parent stands for that stage, and every build and lockfile describes one
chain of parents (issue 25, "Wrong results and silent loss")."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

LEGACY = {"JETFORGE_BUILD_MODE": "legacy"}


def write_chain(root: Path, salt: str, beta_body: str) -> tuple[str, str]:
    """Packages alpha and beta (on alpha); their names."""
    alpha, beta = f"alpha{salt}", f"beta{salt}"
    for name, depends, body in (
        (alpha, "", f"RUN echo {salt} > /alpha\n"),
        (beta, f"# depends: [{alpha}]\n", beta_body),
    ):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Dockerfile").write_text(
            f"#---\n# name: {name}\n{depends}#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{body}"
        )
    return alpha, beta


def inspect(reference: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        ["docker", "image", "inspect", reference], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]  # type: ignore[no-any-return]


def ancestors(image_id: str) -> list[str]:
    """The engine's own parent links of a legacy-built image, nearest first."""
    found = []
    current = inspect(image_id).get("Parent", "")
    while current:
        found.append(current)
        current = inspect(current).get("Parent", "")
    return found


def files(image: str) -> set[str]:
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "ls", "/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def stage_of(logs: Path, package: str) -> dict:  # type: ignore[type-arg]
    """The summary of one stage of the build whose logs are ``logs``."""
    stages = json.loads((logs / "summary.json").read_text())["stages"]
    return next(stage for stage in stages if stage["package"] == package)  # type: ignore[no-any-return]


def assert_one_chain(stage_ids: list[str], base: str) -> None:
    """Each stage image was built on the one before (its label and the engine's own parent
    links say so); the first on ``base``."""
    pairs = list(zip([inspect(base)["Id"], *stage_ids], stage_ids, strict=False))
    for parent, child in pairs:
        assert parent in ancestors(child), (parent, child)
    for parent, child in pairs:
        assert inspect(child)["Config"]["Labels"]["jetforge.parent"] == parent


@pytest.fixture
def build(jetforge, tmp_path, image_name):  # type: ignore[no-untyped-def]
    def call(tree: Path, package: str, *extra: str):  # type: ignore[no-untyped-def]
        return jetforge(
            "build", "--package-dirs", str(tree), "--base", "debian:12", "--distro",
            "debian:12", "--name", image_name, *extra, package, env=LEGACY,
        )  # fmt: skip

    return call


def test_a_failed_builds_leftover_is_not_reused_as_the_parent_stage(build, tmp_path):
    tree = tmp_path / "packages"
    alpha, beta = write_chain(tmp_path / "packages", uuid.uuid4().hex[:8], "RUN true\n")
    first = build(tree, alpha, "--logs", str(tmp_path / "first"))
    assert first.code == 0, first.stderr
    alpha_id = stage_of(tmp_path / "first", alpha)["image_id"]
    (tree / beta / "Dockerfile").write_text(
        (tree / beta / "Dockerfile")
        .read_text()
        .replace("RUN true\n", "RUN echo x > /from-beta\nRUN false\n")
    )
    failed = build(tree, beta, "--logs", str(tmp_path / "failed"))
    assert failed.code == 1, failed.stderr
    (tree / beta / "Dockerfile").write_text(
        (tree / beta / "Dockerfile")
        .read_text()
        .replace("RUN echo x > /from-beta\nRUN false\n", "RUN echo b > /beta\n")
    )
    fixed = build(tree, beta, "--logs", str(tmp_path / "fixed"))
    assert fixed.code == 0, fixed.stderr
    final = fixed.stdout.strip()
    assert "from-beta" not in files(final)
    assert {"alpha", "beta"} <= files(final)
    reused = stage_of(tmp_path / "fixed", alpha)
    assert (reused["state"], reused["image_id"]) == ("reused", alpha_id)
    stages = json.loads((tmp_path / "fixed" / "summary.json").read_text())["stages"]
    assert_one_chain([stage["image_id"] for stage in stages], "debian:12")


def assert_tagged_chain(logs: Path, final: str) -> None:
    """The build whose logs are ``logs`` used its tagged stage images, one chain of
    parents, and its final image is the last of them."""
    stages = json.loads((logs / "summary.json").read_text())["stages"]
    tagged = [inspect(stage["image"])["Id"] for stage in stages]
    assert [stage["image_id"] for stage in stages] == tagged
    assert inspect(final)["Id"] == tagged[-1]
    assert_one_chain(tagged, "debian:12")


def test_after_a_rebuild_moved_a_stage_name_a_build_is_one_chain(build, tmp_path):
    tree = tmp_path / "packages"
    alpha, beta = write_chain(tree, uuid.uuid4().hex[:8], "RUN echo b > /beta\n")
    assert build(tree, beta, "--logs", str(tmp_path / "first")).code == 0
    # alpha alone, rebuilt: the shared stage name now names a newer image of alpha's key,
    # and the image that beta was built on has no name left.
    assert build(tree, alpha, "--rebuild", "--logs", str(tmp_path / "alpha")).code == 0
    plain = build(tree, beta, "--logs", str(tmp_path / "plain"))
    assert plain.code == 0, plain.stderr
    assert_tagged_chain(tmp_path / "plain", plain.stdout.strip())


def test_after_a_locked_rebuild_a_plain_build_is_one_chain_of_its_tagged_stages(build, tmp_path):
    tree = tmp_path / "packages"
    # alpha installs a Debian package, so the lock pins it and a locked stage has its own key
    install = "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends file\n"
    alpha, beta = write_chain(tree, uuid.uuid4().hex[:8], "RUN echo b > /beta\n")
    dockerfile = tree / alpha / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + install)
    lock = tmp_path / "chain.lock.json"
    first = build(tree, beta, "--lock", str(lock), "--logs", str(tmp_path / "first"))
    assert first.code == 0, first.stderr
    relocked = build(tree, beta, "--locked", str(lock), "--rebuild", "--logs", str(tmp_path / "r"))
    assert relocked.code == 0, relocked.stderr
    assert stage_of(tmp_path / "r", alpha)["key"] != stage_of(tmp_path / "first", alpha)["key"]
    plain = build(tree, beta, "--logs", str(tmp_path / "plain"))
    assert plain.code == 0, plain.stderr
    assert_tagged_chain(tmp_path / "plain", plain.stdout.strip())


def test_two_concurrent_builds_of_a_new_chain_write_consistent_lockfiles(
    tmp_path, cli_env, image_name
):
    tree = tmp_path / "packages"
    _, beta = write_chain(tree, uuid.uuid4().hex[:8], "RUN echo b > /beta\n")
    results: dict[int, subprocess.CompletedProcess[str]] = {}

    def run(number: int) -> None:
        results[number] = subprocess.run(
            [
                sys.executable, "-m", "jetforge", "build", "--package-dirs", str(tree),
                "--base", "debian:12", "--distro", "debian:12", "--name", image_name,
                "--lock", str(tmp_path / f"{number}.lock.json"), beta,
            ],
            capture_output=True, text=True, env={**cli_env, **LEGACY}, check=False,
        )  # fmt: skip

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for number in (1, 2):
        assert results[number].returncode == 0, results[number].stderr
        lock = json.loads((tmp_path / f"{number}.lock.json").read_text())
        assert_one_chain([stage["image_id"] for stage in lock["stages"]], "debian:12")
    waited = results[1].stderr + results[2].stderr
    assert "waiting for another jetforge build of" in waited


@pytest.mark.podman
def test_podman_never_reuses_the_steps_of_a_failed_build(jetforge, tmp_path, image_name):
    """podman gives every step's image of a build the --label values and keeps them after
    a failure: the stage key is the Dockerfile's last step instead, so only the finished
    image has it."""
    if subprocess.run(["podman", "image", "exists", "debian:12"]).returncode != 0:
        pytest.fail("podman has no debian:12 image (scripts/setup loads it)")
    tree = tmp_path / "packages"
    _, beta = write_chain(tree, uuid.uuid4().hex[:8], "RUN touch /f1\nRUN exit 1\n")
    argv = (
        "build", "--engine", "podman", "--package-dirs", str(tree), "--base", "debian:12",
        "--distro", "debian:12", "--name", image_name, beta,
    )  # fmt: skip
    first = jetforge(*argv)
    assert first.code == 1, first.stderr
    again = jetforge(*argv)
    assert again.code == 1, again.stderr
    assert f"{beta} failed in build" in again.stderr
    keyed = subprocess.run(
        ["podman", "images", "--all", "--quiet", "--filter", "label=jetforge.package=" + beta],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for image in keyed:
        labels = json.loads(
            subprocess.run(
                ["podman", "image", "inspect", image], capture_output=True, text=True, check=False
            ).stdout
        )[0]["Config"]["Labels"]
        assert labels.get("jetforge.stage-key", "") == ""  # no step of it passes for beta
