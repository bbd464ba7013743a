"""``jetforge autotag`` on the real engine: local images, real registries, building."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.engines import free_port, start_registry
from tests.conftest import FIXTURES, remove_tags

pytestmark = pytest.mark.engine


@dataclass
class Chain:
    """The fixture chain with package names unique to one test (fa-<id> … fd-<id>)."""

    tree: Path
    suffix: str

    def name(self, package: str) -> str:
        return f"{package}-{self.suffix}"


@pytest.fixture
def chain(tmp_path: Path, docker_engine: None) -> Iterator[Chain]:
    """Unique package names keep other tests' images out of autotag's view; every image
    whose name holds the suffix is removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    tree = tmp_path / "packages"
    shutil.copytree(FIXTURES / "engine" / "chain", tree)
    (tree / "fa" / "salt.txt").write_text(suffix + "\n")
    for dockerfile in tree.glob("*/Dockerfile"):
        text = dockerfile.read_text()
        for package in ("fa", "fb", "fc", "fd"):
            text = text.replace(f"name: {package}\n", f"name: {package}-{suffix}\n")
            text = text.replace(f"[{package}]", f"[{package}-{suffix}]")
        dockerfile.write_text(text)
    yield Chain(tree, suffix)
    remove_tags("docker", suffix)


@pytest.fixture
def config(cli_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write the user's jetforge.toml (base image for debian:12, logs, registries)."""

    def write(*registries: str) -> Path:
        directory = Path(cli_env["XDG_CONFIG_HOME"]) / "jetforge"
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"logs_dir = {json.dumps(str(tmp_path / 'logs'))}",
            f"registries = {json.dumps(list(registries))}",
            "[base_images]",
            '"debian:12" = "debian:12"',
        ]
        (directory / "jetforge.toml").write_text("\n".join(lines) + "\n")
        return tmp_path / "logs"

    write()
    return write


def build(jetforge, chain: Chain, target: str, package: str = "fb", *extra: str) -> str:
    result = jetforge(
        "build",
        "--package-dirs",
        str(chain.tree),
        "--target",
        target,
        "--base",
        "debian:12",
        "--distro",
        "debian:12",
        "--skip-tests",
        "all",
        *extra,
        chain.name(package),
    )
    assert result.code == 0, result.stderr
    return result.stdout.strip()


def autotag(jetforge, name: str, *options: str, env: dict[str, str] | None = None):
    return jetforge("autotag", name, "--no-build", *options, env=env)


def image_labels(reference: str) -> dict[str, str]:
    done = subprocess.run(
        ["docker", "image", "inspect", reference], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)[0]["Config"]["Labels"]


def is_local(reference: str) -> bool:
    done = subprocess.run(["docker", "image", "inspect", reference], capture_output=True)
    return done.returncode == 0


def test_locally_built_image_is_found_for_its_target(jetforge, chain, config):
    built = build(jetforge, chain, "jp6")
    assert built == f"{chain.name('fb')}:r36.4.0-cu126-debian12"
    found = autotag(jetforge, chain.name("fb"), "--target", "jp6")
    assert found.code == 0, found.stderr
    assert found.stdout == built + "\n"
    assert built in found.stderr  # the reason names the choice
    # A newer L4T of the same major runs it too; --json says where it came from.
    found = autotag(jetforge, chain.name("fb"), "--target", "jp6.2", "--json")
    assert found.code == 0, found.stderr
    assert json.loads(found.stdout) == {
        "image": built,
        "source": "local",
        "platform": "l4t-36.4.0 cuda-12.6 debian-12 tegra-aarch64",
        "reason": "local image built for l4t-36.4.0 cuda-12.6 debian-12 tegra-aarch64",
    }
    # A package inside the chain is found in the images that hold it.
    inner = autotag(jetforge, chain.name("fa"), "--target", "jp6")
    assert inner.code == 0, inner.stderr
    assert chain.name("fa") in image_labels(inner.stdout.strip())["jetforge.chain"]


def test_incompatible_images_are_never_chosen(jetforge, chain, config):
    jp6 = build(jetforge, chain, "jp6")
    jp62 = build(jetforge, chain, "jp6.2")
    x86 = build(jetforge, chain, "x86_64-cu128")
    name = chain.name("fb")
    # The newest compatible platform wins, whichever was built last.
    assert autotag(jetforge, name, "--target", "jp6.2").stdout.strip() == jp62
    assert autotag(jetforge, name, "--target", "jp6").stdout.strip() == jp6
    assert autotag(jetforge, name, "--target", "x86_64-cu128").stdout.strip() == x86
    for target, env in (
        ("jp5", {}),  # other L4T major
        ("jp6", {"L4T_VERSION": "36.3.0"}),  # both images have a newer L4T
        ("x86_64-cu126", {}),  # newer CUDA
        ("x86_64-cu130", {}),  # other CUDA major
        ("sbsa-cu130", {}),  # other architecture
    ):
        result = jetforge("-v", "autotag", name, "--no-build", "--target", target, env=env)
        assert result.code == 1, (target, result.stdout, result.stderr)
        assert result.stdout == ""
        assert "no compatible image" in result.stderr
        assert "skipped" in result.stderr  # -v says why each was rejected


def test_images_without_labels_match_by_name_and_tag(jetforge, chain, config):
    name = f"jfraw-{chain.suffix}"
    tags = (
        "r35.4.1",
        "r36.4.0",
        "2.8-r36.4.tegra-aarch64-cu126-22.04",
        "amd64.x86_64-cu128-24.04",
        "sbsa-cu130-24.04",
    )
    for tag in tags:
        subprocess.run(["docker", "tag", "debian:12", f"{name}:{tag}"], check=True)
    expected = {
        ("jp5", name): f"{name}:r35.4.1",
        ("jp6", name): f"{name}:2.8-r36.4.tegra-aarch64-cu126-22.04",  # it names a newer CUDA
        ("jp6", f"{name}:2.8"): f"{name}:2.8-r36.4.tegra-aarch64-cu126-22.04",
        ("x86_64-cu128", name): f"{name}:amd64.x86_64-cu128-24.04",
        ("sbsa-cu130", name): f"{name}:sbsa-cu130-24.04",
    }
    for (target, wanted), image in expected.items():
        result = autotag(jetforge, wanted, "--target", target)
        assert (result.code, result.stdout.strip()) == (0, image), result.stderr
    assert autotag(jetforge, name, "--target", "x86_64-cu126").code == 1
    assert autotag(jetforge, f"{name}:2.6", "--target", "jp6").code == 1


@pytest.fixture
def open_registry(tmp_path: Path, docker_engine: None):  # type: ignore[no-untyped-def]
    if shutil.which("docker-registry") is None:
        pytest.skip("needs docker-registry")
    root = tmp_path / "open-registry"
    root.mkdir()
    server, process = start_registry(root, auth=False)
    yield server
    process.terminate()
    process.wait(timeout=10)


def push_and_forget(jetforge, chain: Chain, target: str, address: str) -> str:
    """Build and push the image, then remove every local copy; returns the pushed name."""
    build(jetforge, chain, target, "fb", "--push", f"{address}/team")
    pushed = f"{address}/team/{chain.name('fb')}:{target_postfix(jetforge, target)}"
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = [image for image in listed if chain.suffix in image]
    subprocess.run(["docker", "rmi", "--force", *ours], capture_output=True, check=True)
    assert not is_local(pushed)
    return pushed


def target_postfix(jetforge, target: str) -> str:
    done = jetforge("platform", "--json", "--target", target, "--distro", "debian:12")
    return json.loads(done.stdout)["tag_postfix"]


def test_image_only_in_an_open_registry_is_found_and_pulled(jetforge, chain, config, open_registry):
    pushed = push_and_forget(jetforge, chain, "jp6", open_registry.address)
    config(f"{open_registry.address}/team")
    name = chain.name("fb")
    # Nothing compatible there for another platform.
    assert autotag(jetforge, name, "--target", "x86_64-cu128").code == 1
    # --no-pull prints the reference and leaves it in the registry.
    found = autotag(jetforge, name, "--target", "jp6", "--no-pull", "--json")
    assert found.code == 0, found.stderr
    assert json.loads(found.stdout)["image"] == pushed
    assert json.loads(found.stdout)["source"] == "registry"
    assert not is_local(pushed)
    found = autotag(jetforge, name, "--target", "jp6")
    assert found.code == 0, found.stderr
    assert found.stdout == pushed + "\n"
    assert is_local(pushed)
    assert image_labels(pushed)["jetforge.package"] == name
    # Now it is local, and found there.
    again = autotag(jetforge, name, "--target", "jp6", "--json")
    assert json.loads(again.stdout)["source"] == "local"


def test_image_in_a_registry_with_auth_uses_docker_login(jetforge, chain, config, registry):
    pushed = push_and_forget(jetforge, chain, "x86_64-cu128", registry.address)
    config(f"{registry.address}/team")
    found = autotag(jetforge, chain.name("fb"), "--target", "x86_64-cu128")
    assert found.code == 0, found.stderr
    assert found.stdout == pushed + "\n"
    assert is_local(pushed)
    subprocess.run(["docker", "rmi", pushed], capture_output=True, check=True)
    # Logged out: one line says so, and autotag carries on (to "nothing found").
    subprocess.run(["docker", "logout", registry.address], capture_output=True, check=True)
    result = autotag(jetforge, chain.name("fb"), "--target", "x86_64-cu128")
    assert result.code == 1
    lines = [line for line in result.stderr.splitlines() if registry.address in line]
    assert lines == [
        f"jetforge: warning: registry {registry.address}: not authorized for "
        f"team/{chain.name('fb')} (log in with 'docker login {registry.address}'); skipped",
        f"jetforge: no compatible image of {chain.name('fb')} in {registry.address}/team",
    ]


def test_unreachable_registry_is_one_line_and_autotag_carries_on(
    jetforge, chain, config, open_registry
):
    pushed = push_and_forget(jetforge, chain, "jp6", open_registry.address)
    closed = f"127.0.0.1:{free_port()}"
    env = {"JETFORGE_REGISTRIES": f"{closed}/team,{open_registry.address}/team"}
    found = autotag(jetforge, chain.name("fb"), "--target", "jp6", "--no-pull", env=env)
    assert found.code == 0, found.stderr
    assert found.stdout == pushed + "\n"
    assert [line for line in found.stderr.splitlines() if closed in line] == [
        f"jetforge: warning: registry {closed}: cannot connect (Connection refused); skipped"
    ]


def test_nothing_compatible_builds_it(jetforge, chain, config):
    logs = config()
    name = chain.name("fd")
    result = jetforge(
        "autotag",
        name,
        "--json",
        "--package-dirs",
        str(chain.tree),
        "--target",
        "x86_64-cu128",
        "--distro",
        "debian:12",
    )
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["image"] == f"{name}:x86_64-cu128-debian12"
    assert document["source"] == "built"
    assert document["platform"] == "cuda-12.8 debian-12 x86_64"
    labels = image_labels(document["image"])
    assert labels["jetforge.chain"].split(",")[-4:] == [
        chain.name(package) for package in ("fa", "fb", "fc", "fd")
    ]
    summaries = list(logs.glob("*/summary.json"))
    assert len(summaries) == 1
    states = {
        stage["package"]: stage["state"] for stage in json.loads(summaries[0].read_text())["stages"]
    }
    assert states[name] == "built"
    # The second time it is there.
    again = autotag(jetforge, name, "--target", "x86_64-cu128", "--distro", "debian:12", "--json")
    assert json.loads(again.stdout)["source"] == "local"


def test_declined_question_on_a_terminal_builds_nothing(jetforge, chain, config, monkeypatch):
    import jetforge.cli.talk as command

    asked: list[str] = []
    monkeypatch.setattr(command, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda: asked.append("?") or "n")
    options = ("--package-dirs", str(chain.tree), "--target", "jp6", "--distro", "debian:12")
    result = jetforge("autotag", chain.name("fa"), *options)
    assert result.code == 1
    assert asked == ["?"]
    assert f"build {chain.name('fa')} for" in result.stderr
    assert result.stdout == ""
    assert not list(config().glob("*/summary.json"))

    # --yes answers without asking.
    def refuse() -> str:
        raise AssertionError("asked although --yes was given")

    monkeypatch.setattr("builtins.input", refuse)
    result = jetforge("autotag", chain.name("fa"), "--yes", *options)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == f"{chain.name('fa')}:r36.4.0-cu126-debian12"
