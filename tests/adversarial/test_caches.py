"""jetforge's own files as an attacker finds them (the hardening issue's security part).

Finding 1: cached files were unpickled whatever their owner, so another user's crafted
discovery index or platform-table copy ran code in the next ``sudo -E jetforge list``.
Now the five private caches (discovery index, digests, probes, trust answer, platform
table) are stash files (jetforge.host.stash): plain JSON, read only when this user owns them
and no one else may write them or their directory. Each case plants what an attacker
would and runs jetforge as its own process, as a user (or root) would.

Finding 2: the data directory is mounted read-write at /data into every test and ``run``
container, and held jetforge's inventories and SBOMs, so a container could forge the
next lockfile and ``jetforge sbom``. Now those records are in the state directory, which
no container sees, and a data directory that is a system directory or holds jetforge's
own directories is refused.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from jetforge.host.platform_data import DATA_FILE
from jetforge.host.stash import file_stamp
from jetforge.ops.lockstep import read_sbom
from tests.adversarial.conftest import one_line_error, write_config
from tests.test_lock import deb, execute, golden_plan, make_engine, output

OTHER_UID = 65534  # nobody
HEADER = "#---\n# name: {name}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="another user's file needs root")


class Mkdir:
    """A pickle that, loaded, makes a directory (the harmless stand-in for any code)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.path),)


def jetforge_run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m jetforge ARGV`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "jetforge", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def setup(tmp_path: Path, cli_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """A one-package tree, the environment that searches it, and the cache directory."""
    root = tmp_path / "packages"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(HEADER.format(name="app"))
    (root / "app" / "data.txt").write_text("data\n")
    env = {
        **cli_env,
        "JETFORGE_SHIPPED_PACKAGES": "",
        "JETFORGE_DOCKER": "/nonexistent/docker",
    }
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CUDA_VERSION"):
        env.pop(variable, None)
    return root, env, Path(cli_env["XDG_CACHE_HOME"]) / "jetforge"


def stages(done: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
    """The package, key and context of every stage ``build --simulate --json`` printed."""
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    return [(stage["package"], stage["key"], stage["context"]) for stage in plan["stages"]]


def settle() -> None:
    """Wait until what was just written counts as settled (a stash trusts nothing newer)."""
    time.sleep(1.1)


def hand_over(path: Path, how: str) -> None:
    """Make ``path`` another user's (``other``), or writable by others (``shared``)."""
    if how == "other":
        os.chown(path, OTHER_UID, OTHER_UID)
    else:
        path.chmod(path.stat().st_mode | 0o022)


HOW = [
    pytest.param("other", marks=as_root, id="another-users"),
    pytest.param("shared", id="writable-by-others"),
]


def test_a_crafted_pickle_left_in_the_cache_never_runs(setup, tmp_path):
    root, env, cache = setup
    marker = tmp_path / "code-ran"
    crafted = pickle.dumps(Mkdir(marker))
    data = DATA_FILE.read_bytes()
    roots = repr(((str(root), "auto"),)).encode()
    python = f"{sys.version_info[0]}{sys.version_info[1]}"
    planted = [  # where jetforge 0.x kept its pickles, and where it keeps its stash files
        cache / "index" / f"{zlib.crc32(roots):08x}.pickle",
        cache / f"platforms-{zlib.crc32(data):08x}-{len(data)}-{python}.pickle",
        cache / "index" / f"{zlib.crc32(roots):08x}.json",
        cache / f"platforms-{zlib.crc32(data):08x}-{len(data)}.json",
        cache / "digests",
        cache / "digests.json",
        cache / "probes.json",
    ]
    (cache / "index").mkdir(parents=True, mode=0o700)
    for path in planted:
        path.write_bytes(crafted)
        path.chmod(0o600)
        if os.geteuid() == 0:
            hand_over(path, "other")
    dirs = ("--package-dirs", str(root))
    for argv in (("list", *dirs), ("build", "--simulate", *dirs, "app"), ("platform",)):
        done = jetforge_run(env, *argv)
        assert done.returncode == 0, done.stderr
        assert not marker.exists(), f"jetforge {argv[0]} ran the crafted pickle"
    assert done.stderr == ""


@pytest.mark.parametrize("how", HOW)
def test_a_forged_discovery_index_is_not_trusted(setup, how):
    root, env, cache = setup
    settle()  # the tree settles: the index keeps its answer
    assert jetforge_run(env, "list", "--package-dirs", str(root)).stdout == "app\n"
    (index,) = (cache / "index").glob("*.json")
    parts = index.read_bytes().split(b"\n")
    listing = json.loads(parts[2])  # what a warm list prints
    listing["rows"].append(["evil", "", ["evil"]])
    parts[2] = json.dumps(listing).encode()
    index.write_bytes(b"\n".join(parts))
    hand_over(index if how == "other" else index.parent, how)
    done = jetforge_run(env, "list", "--package-dirs", str(root))
    assert (done.returncode, done.stdout) == (0, "app\n"), done.stderr


@pytest.mark.parametrize("how", HOW)
def test_a_forged_platform_table_is_not_trusted(setup, how):
    _root, env, cache = setup
    argv = ("platform", "--json", "--target", "jp6")
    honest = jetforge_run(env, *argv)
    assert honest.returncode == 0, honest.stderr
    (kept,) = cache.glob("platforms-*.json")
    table = json.loads(kept.read_text())
    table["targets"]["jp6"]["l4t"] = "35.1.0"
    kept.write_text(json.dumps(table))
    hand_over(kept, how)
    assert jetforge_run(env, *argv).stdout == honest.stdout


@pytest.mark.parametrize("how", HOW)
def test_forged_context_digests_are_not_trusted(setup, how):
    root, env, cache = setup
    settle()
    argv = ("build", "--simulate", "--json", "--package-dirs", str(root), "app")
    honest = stages(jetforge_run(env, *argv))
    kept = cache / "digests.json"
    digests = json.loads(kept.read_text())
    assert str(root / "app" / "data.txt") in digests
    for entry in digests.values():
        entry[1] = "0" * 64
    kept.write_text(json.dumps(digests))
    hand_over(kept, how)
    assert stages(jetforge_run(env, *argv)) == honest


@pytest.mark.parametrize("how", HOW)
def test_a_forged_probe_answer_is_not_trusted(setup, tmp_path, how):
    _root, env, cache = setup
    tools = tmp_path / "bin"
    tools.mkdir()
    nvcc = tools / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.4, V12.4.131'\n")
    nvcc.chmod(0o755)
    env = {**env, "PATH": f"{tools}:{env['PATH']}"}
    stamp = file_stamp(nvcc)
    assert stamp is not None
    try:
        driver = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        driver = ""
    forged = {
        "nvcc\0--version": {
            "inputs": [str(nvcc), list(stamp), driver],
            "returncode": 0,
            "stdout": "Cuda compilation tools, release 11.1, V11.1.74",
        }
    }
    cache.mkdir(parents=True, mode=0o700)
    memo = cache / "probes.json"
    memo.write_text(json.dumps(forged))
    memo.chmod(0o600)
    hand_over(memo, how)
    done = jetforge_run(env, "platform", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cuda_version"] == "12.4"


@pytest.mark.parametrize("how", HOW)
def test_a_forged_trust_answer_is_not_trusted(setup, tmp_path, how):
    root, env, cache = setup
    bundle = tmp_path / "host.crt"
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "certs" / "test-ca.crt", bundle)
    env = {**env, "SSL_CERT_FILE": str(bundle)}
    settle()  # the bundle settles: the answer is kept
    argv = ("build", "--simulate", "--json", "--package-dirs", str(root), "app")
    honest = stages(jetforge_run(env, *argv))
    assert honest[0][0] == "ca-trust"
    memo = cache / "trust" / "answer.json"
    kept = json.loads(memo.read_text())
    evil = tmp_path / "evil-context"
    evil.mkdir()
    (evil / "Dockerfile").write_text("FROM scratch\nRUN echo attacker\n")
    (evil / "ca-bundle.crt").write_text("attacker\n")
    kept["answer"] = str(evil)
    memo.write_text(json.dumps(kept))
    hand_over(memo, how)
    assert stages(jetforge_run(env, *argv)) == honest


@as_root
def test_under_sudo_the_invoking_users_cache_is_neither_read_nor_written(setup):
    root, env, cache = setup
    settle()
    assert jetforge_run(env, "list", "--package-dirs", str(root)).stdout == "app\n"
    (index,) = (cache / "index").glob("*.json")
    parts = index.read_bytes().split(b"\n")
    parts[2] = parts[2].replace(b'["app",', b'["evil",')  # what a warm list prints
    index.write_bytes(b"\n".join(parts))
    for directory, _, files in os.walk(cache):  # the invoking user's cache, as sudo -E sees it
        for path in (directory, *(os.path.join(directory, name) for name in files)):
            os.chown(path, OTHER_UID, OTHER_UID)
    before = {path: path.read_bytes() for path in cache.rglob("*") if path.is_file()}
    done = jetforge_run(env, "list", "--package-dirs", str(root))
    assert (done.returncode, done.stdout) == (0, "app\n"), done.stderr
    after = {path: path.read_bytes() for path in cache.rglob("*") if path.is_file()}
    assert after == before  # nothing written there: the user's cache stays the user's
    assert {path.stat().st_uid for path in cache.rglob("*")} == {OTHER_UID}


# Finding 2: the data directory is the containers'; jetforge's records are elsewhere


@pytest.mark.parametrize(
    ("value", "named"),
    [
        *[(d, d) for d in ("/", "/etc", "/usr", "/var", "/root", "/home", "/proc", "/sys")],
        ("/dev", "/dev"),
        ("/boot", "/boot"),
        ("/etc/", "/etc"),
        ("/usr/lib/..", "/usr"),
        ("link-to-etc", "/etc"),
    ],
)
def test_a_system_directory_as_data_dir_is_one_line(jetforge, fake_engine, cli_env, value, named):
    config = write_config(cli_env, f'data_dir = "{value}"\n')
    (config.parent / "link-to-etc").symlink_to("/etc")
    result = jetforge("run", "--dry-run", "img", env=fake_engine({}))
    one_line_error(result, 2, f"{config}: 'data_dir' is the system directory {named}")
    assert "valid: a directory of its own" in result.stderr


@pytest.mark.parametrize("inside", ["cache", "state"])
def test_a_data_dir_that_holds_jetforges_own_directories_is_refused(
    jetforge, fake_engine, cli_env, tmp_path, inside
):
    home = tmp_path / "home"
    env = {
        **fake_engine({}),
        "XDG_CACHE_HOME": str(home / ".cache") if inside == "cache" else cli_env["XDG_CACHE_HOME"],
        "XDG_STATE_HOME": str(home / ".local/state") if inside == "state" else str(tmp_path / "s"),
    }
    config = write_config(cli_env, f'data_dir = "{home}"\n')
    result = jetforge("run", "--dry-run", "img", env=env)
    one_line_error(result, 2, f"{config}: 'data_dir' ({home}) holds jetforge's {inside}")
    write_config(cli_env, f'data_dir = "{home / "data"}"\n')
    assert jetforge("run", "--dry-run", "img", env=env).code == 0


def test_an_sbom_a_container_left_in_the_data_dir_is_not_shown(
    jetforge, fake_engine, cli_env, tmp_path
):
    image_id = "sha256:" + "c" * 64
    image = tmp_path / "image.json"
    image.write_text(json.dumps([{"Id": image_id, "RepoTags": ["demo:1"], "Config": {}}]))
    forged = (
        Path(cli_env["XDG_DATA_HOME"])
        / "jetforge"
        / "data"
        / "sbom"
        / f"{image_id.replace(':', '_')}.spdx.json"
    )
    forged.parent.mkdir(parents=True)
    forged.write_text('{"spdxVersion": "SPDX-2.3", "name": "forged"}\n')
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(image)}
    result = jetforge("sbom", "demo:1", env=env)
    one_line_error(result, 2, "sbom: no SBOM for demo:1")
    assert "forged" not in result.stdout
    kept = Path(cli_env["XDG_STATE_HOME"]) / "jetforge" / "sbom" / forged.name
    kept.parent.mkdir(parents=True, mode=0o700)
    kept.write_text('{"spdxVersion": "SPDX-2.3", "name": "shared"}\n')
    kept.chmod(0o666)  # a record someone else may have written
    one_line_error(jetforge("sbom", "demo:1", env=env), 2, f"sbom: {kept} is not a record")


def test_records_a_container_writes_into_the_data_dir_change_no_lockfile(tmp_path):
    plan, engine = golden_plan(), make_engine()
    first = execute(plan, engine, tmp_path)
    lock = (tmp_path / "logs" / "jetforge.lock.json").read_text()
    sbom = (tmp_path / "logs" / "sbom.spdx.json").read_text()
    # What a test or run container may do to /data: forge a record of every image, under
    # the names jetforge once kept them by.
    data = tmp_path / "data"
    forged = output(deb("dpkg", "1.22.6"), deb("backdoor", "6.6.6"))
    for stage in first.stages:
        name = stage.image_id.replace(":", "_")
        (data / "inventory").mkdir(parents=True, exist_ok=True)
        (data / "inventory" / f"{name}.txt").write_text(forged)
        (data / "sbom").mkdir(exist_ok=True)
        (data / "sbom" / f"{name}.spdx.json").write_text('{"forged": true}\n')
    for record in (tmp_path / "state").rglob("*"):
        if record.is_file():  # the state directory was never the containers'
            assert "backdoor" not in record.read_text()
    again = execute(plan, engine, tmp_path)
    assert again.lock_containers == 0  # the records jetforge kept answered
    assert (tmp_path / "logs" / "jetforge.lock.json").read_text() == lock
    assert "backdoor" not in lock
    assert read_sbom(engine, tmp_path / "state", first.stages[-1].image_id) == sbom


FORGE = """#!/bin/sh
# What a hostile test (or any container with /data) can do: plant a record of every image
# it learnt of, under the names jetforge kept its records by in the data directory.
set -e
mkdir -p /data/inventory /data/sbom
forged='jetforge-inventory\\t1\\nos\\tdebian\\t12\\n'
forged="$forged"'deb\\tinstall ok installed\\tbackdoor\\t6.6.6\\tamd64\\n'
for id in $(cat /data/ids); do
    printf "$forged" > "/data/inventory/$id.txt"
    echo '{"forged": true}' > "/data/sbom/$id.spdx.json"
done
touch /data/forged
"""


@pytest.mark.engine
def test_a_test_container_cannot_forge_the_next_lockfile_or_sbom(
    jetforge, image_name, cli_env, tmp_path
):
    tree = tmp_path / "packages"
    (tree / "victim").mkdir(parents=True)
    (tree / "victim" / "Dockerfile").write_text(
        "#---\n# name: victim\n# test: test -f /victim\n#---\n"
        f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {image_name} > /victim\n"
    )
    (tree / "forger").mkdir()
    (tree / "forger" / "Dockerfile").write_text(
        "#---\n# name: forger\n# test: forge.sh\n#---\n"
        f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {image_name} > /forger\n"
    )
    (tree / "forger" / "forge.sh").write_text(FORGE)
    (tree / "forger" / "forge.sh").chmod(0o755)

    def build(name: str, logs: Path, package: str):  # type: ignore[no-untyped-def]
        result = jetforge(
            "build", "--package-dirs", str(tree), "--distro", "debian:12", "--base", "debian:12",
            "--name", name, "--logs", str(logs), package,
        )  # fmt: skip
        assert result.code == 0, result.stderr[-3000:]
        return result

    first = tmp_path / "first"
    build(image_name, first, "victim")
    lock = json.loads((first / "jetforge.lock.json").read_text())
    final = lock["final_image"]
    sbom = jetforge("sbom", final)
    assert sbom.code == 0, sbom.stderr
    assert sbom.stdout == (first / "sbom.spdx.json").read_text()

    data = Path(cli_env["XDG_DATA_HOME"]) / "jetforge" / "data"
    ids = [lock["base"]["id"], *(stage["image_id"] for stage in lock["stages"])]
    (data / "ids").write_text("\n".join(i.replace(":", "_") for i in ids) + "\n")
    build(f"{image_name}-forger", tmp_path / "forging", "forger")
    assert (data / "forged").exists()  # the test ran, and wrote into /data
    assert (data / "inventory" / f"{ids[-1].replace(':', '_')}.txt").is_file()

    again = tmp_path / "again"
    build(image_name, again, "victim")
    summary = json.loads((again / "summary.json").read_text())
    assert {stage["state"] for stage in summary["stages"]} == {"reused"}
    assert summary["lock_containers"] == 0  # jetforge's own records answered
    assert (again / "jetforge.lock.json").read_text() == (first / "jetforge.lock.json").read_text()
    assert "backdoor" not in (again / "jetforge.lock.json").read_text()
    shown = jetforge("sbom", final)
    assert (shown.code, shown.stdout) == (0, sbom.stdout)


def test_a_test_marker_someone_else_could_write_does_not_skip_the_test(tmp_path):
    """A passed test is remembered by a file in the state directory; one that another user
    could have written (here: writable by the group) is not believed, and the test runs."""
    from jetforge.engine.fake import FakeEngine
    from tests.test_executor import GOLDEN_TREE, execute, plan_for

    plan = plan_for(GOLDEN_TREE)
    engine = FakeEngine()
    execute(plan, engine, tmp_path)
    runs = len(engine.calls_of("run"))
    again = execute(plan, engine, tmp_path)
    assert {t.state for s in again.stages for t in s.tests} == {"cached"}
    assert len(engine.calls_of("run")) == runs
    for marker in (tmp_path / "results").iterdir():
        if marker.is_file():
            marker.chmod(0o664)
    third = execute(plan, engine, tmp_path)
    assert {t.state for s in third.stages for t in s.tests} == {"passed"}
    assert len(engine.calls_of("run")) > runs


def test_a_trust_context_someone_else_could_write_is_written_again(setup, tmp_path):
    """The remembered trust answer is private, but the build context it points to is
    built into every chain: a bundle or Dockerfile there that others may write is not
    used; jetforge writes its own again."""
    root, env, _ = setup
    bundle = tmp_path / "host.crt"
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "certs" / "test-ca.crt", bundle)
    env = {**env, "SSL_CERT_FILE": str(bundle)}
    settle()
    argv = ("build", "--simulate", "--json", "--package-dirs", str(root), "app")
    honest = stages(jetforge_run(env, *argv))
    context = Path(honest[0][2])
    (context / "Dockerfile").write_text("FROM scratch\nRUN echo attacker\n")
    (context / "Dockerfile").chmod(0o666)
    again = stages(jetforge_run(env, *argv))
    assert again == honest
    assert "attacker" not in (context / "Dockerfile").read_text()
    assert (context / "Dockerfile").stat().st_mode & 0o022 == 0
