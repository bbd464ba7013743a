"""Hostile lockfiles and lock paths: a lockfile is data from another machine, read into
checked values or refused with one line naming the entry; `--lock PATH` never replaces
what is at PATH by something else than the lockfile. The real engine's part is
tests/test_lock_engine.py."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from jetforge.core.dockerfile import edit_dockerfile
from jetforge.core.lockdata import parse_lock_data
from jetforge.core.pins import Pinning, Pins
from jetforge.errors import FailureError, UsageError
from jetforge.ops.lockstep import Pinned
from tests.adversarial.conftest import one_line_error
from tests.test_lock import GOLDEN_TREE, OUTPUTS, execute, golden_plan, make_engine, read_lock
from tests.test_pins import locked_plan, written


@pytest.fixture(scope="module")
def golden_lock(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The lockfile of the golden chain (core, frame:2.0, accel, bundle) built once."""
    where = tmp_path_factory.mktemp("golden-lock")
    execute(golden_plan(), make_engine(), where)
    return read_lock(where)


@pytest.fixture
def lock(golden_lock: dict[str, Any]) -> dict[str, Any]:
    """A copy of the golden lock to spoil."""
    return copy.deepcopy(golden_lock)


def simulate_locked(run, path: Path, *extra: str):  # type: ignore[no-untyped-def]
    """``build --simulate --locked PATH`` of the golden chain, with no engine."""
    return run(
        GOLDEN_TREE, "build", "--simulate", "--target", "x86_64-cu128", "--locked", str(path),
        *extra, "bundle",
    )  # fmt: skip


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(data))
    return path


# --- finding 3: the values of a lockfile are checked when it is read ---------------------


def test_a_python_name_that_is_a_pip_option_is_refused(run, lock, tmp_path):
    lock["stages"][2]["installed"]["python"][0]["name"] = "--extra-index-url=http://host/"
    path = write(tmp_path, lock)
    result = simulate_locked(run, path)
    one_line_error(
        result,
        2,
        f"--locked: {path}: stages[2].installed.python[0].name: "
        "'--extra-index-url=http://host/' is not a Python distribution name (PEP 508",
    )
    assert "--extra-index-url" not in result.stdout


@pytest.mark.parametrize(
    ("kind", "entry", "message"),
    [
        ("python", "stages[2].installed.python[0].version", "is not a Python version"),
        ("deb", "stages[0].installed.deb[0].version", "is not a Debian version"),
    ],
)
def test_a_newline_in_a_version_cannot_add_a_dockerfile_instruction(
    run, lock, tmp_path, kind, entry, message
):
    stage = 2 if kind == "python" else 0
    item = lock["stages"][stage]["installed"][kind][0]
    item["version"] += "\nRUN touch /pwned"
    path = write(tmp_path, lock)
    result = simulate_locked(run, path)
    one_line_error(result, 2, f"{path}: {entry}: ", r"\nRUN touch /pwned'", message)
    assert "/pwned" not in result.stdout


def test_a_null_base_is_refused_not_dropped(run, lock, tmp_path):
    lock["base"] = None
    path = write(tmp_path, lock)
    one_line_error(simulate_locked(run, path), 2, f"{path}: base: is null, not an object")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: d.update(stages="all"), "stages: is a string, not a list"),
        (lambda d: d["stages"].append(7), "stages[4]: is a number, not an object"),
        (lambda d: d["stages"][1].pop("key"), "stages[1].key: is missing"),
        (lambda d: d["stages"][1].update(index="2"), "stages[1].index: '2' is not a stage"),
        (lambda d: d["stages"][0]["installed"].update(deb={}), "deb: is an object, not a list"),
        (lambda d: d["stages"][0]["installed"]["deb"][0].update(name=None), "name: is null"),
        (lambda d: d.update(chain=[["core"]]), "chain[0]: is a list, not a string"),
        (lambda d: d["platform"].update(cuda_version={"x": 1}), "platform.cuda_version: is an"),
        (lambda d: d["base"].update(digests="x"), "base.digests: is a string, not a list"),
        (lambda d: d["stages"][3]["removed"].update(deb=[1]), "removed.deb[0]: is a number"),
        (lambda d: d.update(format=True), "format: true is not 1"),
        (lambda d: d["stages"][1].update(index=0), "stages[1].index: 0 does not follow"),
    ],
)
def test_a_lockfile_of_the_wrong_shape_is_one_line(run, lock, tmp_path, spoil, message):
    spoil(lock)
    path = write(tmp_path, lock)
    one_line_error(simulate_locked(run, path), 2, f"--locked: {path}: ", message)


@pytest.mark.parametrize(
    ("entry", "value", "message"),
    [
        ("stages[0].installed.deb[0].name", "Curl", "is not a Debian package name"),
        ("stages[0].installed.deb[0].architecture", "amd64 i386", "is not a Debian arch"),
        ("stages[2].installed.python[0].environment", "opt/venv", "is not an absolute path"),
        ("stages[2].installed.python[0].sha256", "A" * 64, "is not a sha256 (64 lowercase"),
        ("stages[2].installed.python[0].url", "javascript:alert(1)", "is not a file's URL"),
        ("stages[2].installed.python[0].url", "https://h/a b.whl", "is not a file's URL"),
        ("stages[2].installed.python[0].index", "ftp://mirror", "is not an index URL"),
        ("stages[1].image_id", "--format={{json .}}", "is not an image id"),
        ("stages[1].key", "k" * 64, "is not a stage key"),
        ("stages[1].variant", "frame 2.0", "is not a variant name"),
        ("base.id", "sha256:" + "x" * 64, "is not an image id"),
        ("base.digests", ["--pull=always"], "is not an image digest"),
        ("stages[0].installed.deb[0].version", "1" * 300, "is longer than 255 characters"),
    ],
)
def test_an_entry_against_its_grammar_is_one_line_naming_it(
    run, lock, tmp_path, entry, value, message
):
    holder: Any = lock
    *parents, last = entry.replace("[", ".").replace("]", "").split(".")
    for part in parents:
        holder = holder[int(part)] if part.isdigit() else holder[part]
    holder[last] = value
    path = write(tmp_path, lock)
    shown = entry if not isinstance(value, list) else f"{entry}[0]"
    one_line_error(simulate_locked(run, path), 2, f"--locked: {path}: {shown}: ", message)


def test_a_legacy_python_version_is_read_and_pinned_with_arbitrary_equality(run, lock, tmp_path):
    lock["stages"][2]["installed"]["python"].append(
        {"name": "distro-info", "version": "1.1build1", "environment": "/usr"}
    )
    path = write(tmp_path, lock)
    result = simulate_locked(run, path, "--json")
    assert result.code == 0, result.stderr
    pins = Pinning(parse_lock_data(lock).stages)
    for variant in lock["chain"]:
        instruction = pins.after(variant).instruction()
    python = written(instruction, tmp_path)[1]
    assert "distro-info===1.1build1 # sha256=- environment=/usr\n" in python


@pytest.mark.parametrize("what", ["/dev/zero", "fifo", "directory"])
def test_a_locked_path_that_is_not_a_regular_file_is_one_line(run, tmp_path, what):
    path = Path(what) if what.startswith("/") else tmp_path / what
    if what == "fifo":
        os.mkfifo(path)
    elif what == "directory":
        path.mkdir()
    kind = {"/dev/zero": "a character device", "fifo": "a FIFO", "directory": "a directory"}
    one_line_error(simulate_locked(run, path), 2, f"--locked: cannot read {path}: is {kind[what]}")


def test_a_deeply_nested_lockfile_is_one_line(run, tmp_path):
    path = tmp_path / "lock.json"
    path.write_text('{"format": 1, "stages": ' + "[" * 100_000 + "]" * 100_000 + "}")
    one_line_error(
        simulate_locked(run, path), 2, f"--locked: {path} is not a jetforge lockfile (it nests"
    )


def test_a_huge_number_is_one_line(run, lock, tmp_path):
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(lock).replace('"index": 1,', '"index": ' + "9" * 5000 + ",", 1))
    one_line_error(simulate_locked(run, path), 2, f"--locked: {path} is not a jetforge lockfile (")


def test_a_source_record_the_reader_would_refuse_fails_the_build_that_writes_it(tmp_path):
    short = OUTPUTS["*-accel"].replace('"sha256": "' + "a" * 64, '"sha256": "' + "a" * 12)
    with pytest.raises(FailureError) as failed:
        execute(golden_plan(), make_engine(**{"*-accel": short}), tmp_path)
    assert "accel.json: a source record has \"sha256\" 'aaaaaaaaaaaa', not 64" in str(failed.value)
    assert not (tmp_path / "logs" / "jetforge.lock.json").exists()


# --- finding 4: any number of pins fits the engine's line and argument limits ------------


def test_3000_debian_pins_fit_the_dockerfile_line_and_the_argument_limits(tmp_path):
    debs = tuple((f"aa-absent-package-{n:04d}", f"1.0.{n}-1+deb12u1") for n in range(3000))
    python = tuple((f"dist-{n:04d}", f"1.{n}", "5" * 64, "/opt/venv") for n in range(1000))
    instruction = Pins(debs=debs, python=python).instruction()
    dockerfile = edit_dockerfile("FROM debian:12\nRUN true\n", (), instruction)
    # the Dockerfile parser refuses a physical line over 65,535 bytes
    assert max(len(line.encode()) for line in dockerfile.splitlines()) < 65_535
    # each RUN reaches `sh -c` as one argument: at most 128 KiB on Linux
    logical = dockerfile.replace("\\\n", "").splitlines()
    runs = [line for line in logical if line.startswith("RUN ")]
    assert len(runs) >= 3
    assert all(len(line.encode()) < 128 * 1024 for line in runs)
    preferences, pins = written(instruction, tmp_path)
    assert preferences.count("Package: ") == 3000
    assert preferences.endswith(
        "Package: aa-absent-package-2999\nPin: version 1.0.2999-1+deb12u1\nPin-Priority: 1001\n\n"
    )
    assert len(pins.splitlines()) == 1000
    assert pins.splitlines()[-1] == f"dist-0999==1.999 # sha256={'5' * 64} environment=/opt/venv"


# --- finding 1: --lock PATH writes the lockfile, never replaces what PATH is --------------


def device(path: Path, minor: int) -> Path:
    """A character device node of the memory devices (3: null, 5: zero) at ``path``: a
    private /dev/null, so that no test can break the machine's own."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("creating device nodes needs root (as on the CI machine)")
    return path


def lock_text(tmp_path: Path) -> str:
    return (tmp_path / "logs" / "jetforge.lock.json").read_text()


def test_lock_to_the_null_device_writes_through_and_leaves_the_device(tmp_path):
    null = device(tmp_path / "null", 3)
    rdev = null.stat().st_rdev
    summary = execute(golden_plan(), make_engine(), tmp_path, lock_file=null)
    assert summary.ok
    assert stat.S_ISCHR(null.stat().st_mode)
    assert null.stat().st_rdev == rdev


def test_lock_to_another_device_is_refused_before_the_build(run, tmp_path):
    zero = device(tmp_path / "zero", 5)
    link = tmp_path / "to-zero"
    link.symlink_to(zero)
    for path in (zero, link):
        result = run(
            GOLDEN_TREE, "build", "--target", "x86_64-cu128", "--lock", str(path), "bundle"
        )
        one_line_error(result, 2, f"--lock: {path}: is a character device (name a regular file")
        assert stat.S_ISCHR(zero.stat().st_mode)
        assert "docker" not in result.stderr  # refused before an engine was asked


def test_lock_through_a_symlink_updates_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "locks" / "bundle.lock.json"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o600)
    link = tmp_path / "bundle.lock.json"
    link.symlink_to(Path("locks") / "bundle.lock.json")
    execute(golden_plan(), make_engine(), tmp_path, lock_file=link)
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("locks") / "bundle.lock.json")
    assert target.read_text() == lock_text(tmp_path)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # replaced whole, its mode kept
    assert [p.name for p in target.parent.iterdir()] == ["bundle.lock.json"]  # no temporary


def test_lock_to_a_fifo_writes_to_its_reader(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the lockfile fits the pipe's buffer
    try:
        execute(golden_plan(), make_engine(), tmp_path, lock_file=fifo)
        received = os.read(reader, 1 << 20)
    finally:
        os.close(reader)
    assert received.decode() == lock_text(tmp_path)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_lock_to_a_fifo_nobody_reads_is_one_line_not_a_hang(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as refused:
        execute(golden_plan(), make_engine(), tmp_path, lock_file=fifo)
    assert str(refused.value) == f"--lock: {fifo}: is a FIFO that nobody reads"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# --- finding 2: build --simulate refuses what build refuses, and shows its Dockerfiles ----


def both(run, *argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """``build ARGV`` and ``build --simulate ARGV`` of the golden tree."""
    common = ("--target", "x86_64-cu128", *argv)
    return (
        run(GOLDEN_TREE, "build", *common, env=env),
        run(GOLDEN_TREE, "build", "--simulate", *common, env=env),
    )


def same_refusal(built, simulated, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    """Both runs failed with exit 2 and the same one line, holding ``fragments``."""
    one_line_error(built, 2, *fragments)
    one_line_error(simulated, 2, *fragments)
    assert built.stderr.strip().splitlines()[-1] == simulated.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--multiple", "--locked", "{lock}", "bundle", "core"), "--locked FILE takes one chain"),
        (("--multiple", "--lock", "{tmp}/x.json", "bundle", "core"), "--lock FILE takes one"),
        (("--workers", "nosuch", "bundle"), "--workers: unknown worker 'nosuch' (valid: local"),
        (("--workers", "local,d2", "bundle"), "--workers: several workers pass stage images"),
    ],
)
def test_simulate_refuses_before_the_engine_what_build_refuses(run, lock, tmp_path, argv, message):
    path = write(tmp_path, lock)
    config = tmp_path / "config" / "jetforge"
    config.mkdir(parents=True)
    (config / "jetforge.toml").write_text(
        '[[workers]]\nname = "d2"\nendpoint = "tcp://127.0.0.1:9"\n'
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "JETFORGE_REGISTRIES": ""}
    given = [word.format(lock=path, tmp=tmp_path) for word in argv]
    same_refusal(*both(run, *given, env=env), message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--target", "jp6", "bundle"), "it pins the platform cuda-12.8 ubuntu-24.04 x86_64, "),
        (("core",), "it pins the chain ['core', 'frame:2.0', 'accel', 'bundle'], this build"),
    ],
)
def test_simulate_without_an_engine_refuses_a_lock_for_another_chain_or_platform(
    run, lock, tmp_path, argv, message
):
    path = write(tmp_path, lock)
    result = run(
        GOLDEN_TREE, "build", "--simulate", "--target", "x86_64-cu128", "--locked", str(path),
        *argv,
    )  # fmt: skip
    one_line_error(result, 2, f"--locked {path}: {message}")


@pytest.mark.engine
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--target", "jp6", "bundle"), "it pins the platform cuda-12.8 ubuntu-24.04 x86_64, "),
        (("core",), "it pins the chain ['core', 'frame:2.0', 'accel', 'bundle'], this build"),
        (("bundle",), "it pins the base image ubuntu:24.04 with id sha256:bbbbbbbbbbbb, this "),
    ],
)
def test_simulate_with_the_engine_refuses_a_lock_as_build_does(
    run, lock, tmp_path, docker_engine, argv, message
):
    path = write(tmp_path, lock)
    logs = tmp_path / "logs"
    built, simulated = both(
        run, "--base", "debian:12", "--logs", str(logs), "--locked", str(path), *argv,
        env={"JETFORGE_DOCKER": "docker"},
    )  # fmt: skip
    same_refusal(built, simulated, f"--locked {path}: {message}")
    assert not logs.exists()  # refused before the build made its logs


def test_simulate_locked_shows_the_dockerfiles_the_build_writes(run, lock, tmp_path):
    path = write(tmp_path, lock)
    result = simulate_locked(run, path, "--json")
    assert result.code == 0, result.stderr
    planned = {s["package"]: s for s in json.loads(result.stdout)["stages"]}
    # what the executor writes and builds for the same lock (tests/test_pins.py)
    plan = locked_plan(lock)
    execute(plan, make_engine(), tmp_path, locked=Pinned(path, parse_lock_data(lock)))
    for stage in plan.stages:
        written_text = (tmp_path / "logs" / f"{stage.slug}.Dockerfile").read_text()
        # the same but for the stage's identity, its last two lines: the key and the parent
        # of this build, which a simulation has as placeholders
        shown = planned[stage.package]["dockerfile_text"]
        assert shown.splitlines()[:-2] == written_text.splitlines()[:-2]
        assert written_text.splitlines()[-1].startswith(f'LABEL jetforge.stage-key="{stage.key}"')
        assert "RUN mkdir -p /etc/apt/preferences.d /etc/jetforge/lock" in written_text
    text = simulate_locked(run, path)
    assert text.code == 0, text.stderr
    assert "#   Dockerfile as the build writes it (04-bundle.Dockerfile):" in text.stdout
    assert "#   |     NumPy ==2.2.2 - /opt/venv \\" in text.stdout
    plain = run(GOLDEN_TREE, "build", "--simulate", "--json", "--target", "x86_64-cu128", "bundle")
    assert all("dockerfile_text" not in s for s in json.loads(plain.stdout)["stages"])
