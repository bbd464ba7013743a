"""The lock step on an in-memory engine (jetforge.ops.lockstep, core/lockfile.py): the lockfile's
content, what each stage installed, the sources convention, no container on a rebuild that
reuses every stage, Ctrl-C clean-up, and `build --lock` checks. The real engine is
tests/test_lock_engine.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jetforge.core.inventory import HEADER, Deb, Inventory
from jetforge.core.lockdata import LockData, LockedStage, parse_lock_data
from jetforge.core.lockfile import lock_differences, plan_mismatch
from jetforge.core.plan import Plan, PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.engine.fake import FakeEngine, FakeImage
from jetforge.errors import FailureError
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.ops.executor import BuildOptions, Executor
from jetforge.ops.lockstep import Pinned, inventory_path, sbom_path
from jetforge.ops.results import Summary

GOLDEN_TREE = Path(__file__).parent / "fixtures" / "trees" / "golden"
FINAL = "bundle:demo-x86_64-cu128-24.04-full"
BASE = "ubuntu:24.04"
BASE_ID = "sha256:" + "b" * 64


def output(*lines: str) -> str:
    return "\n".join((HEADER, "os\tubuntu\t24.04", *lines)) + "\n"


def deb(name: str, version: str) -> str:
    return f"deb\tinstall ok installed\t{name}\t{version}\tamd64"


PYTHON = "python\t/opt/venv/bin/python3\t3.12.3\t/opt/venv"
BASE_OUTPUT = output(deb("dpkg", "1.22.6"), deb("libc6", "2.39-0ubuntu8"))
# What each stage's image lists: every stage adds to its parent's.
OUTPUTS = {
    "*-core": output(deb("dpkg", "1.22.6"), deb("libc6", "2.39-0ubuntu8"), deb("curl", "8.5.0")),
    "*-frame_2.0": output(
        deb("dpkg", "1.22.6"), deb("libc6", "2.39-0ubuntu8"), deb("curl", "8.5.0"), PYTHON
    ),
    "*-accel": output(
        deb("dpkg", "1.22.6"),
        deb("libc6", "2.39-0ubuntu8"),
        deb("curl", "8.5.0"),
        PYTHON,
        "pypi\tNumPy\t2.2.1\t/opt/venv",
        'source\t/usr/share/jetforge/sources/accel.json\t{"name": "accel", "url": '
        '"https://example.org/accel.tar.gz", "sha256": "' + "a" * 64 + '"}',
    ),
    "*-bundle": output(
        deb("dpkg", "1.22.6"),
        deb("libc6", "2.39-0ubuntu8"),
        PYTHON,
        "pypi\tNumPy\t2.2.2\t/opt/venv",
        "pypi\tbundle-tools\t1.0\t/opt/venv",
        'source\t/usr/share/jetforge/sources/accel.json\t{"name": "accel", "url": '
        '"https://example.org/accel.tar.gz", "sha256": "' + "a" * 64 + '"}',
        'source\t/usr/share/jetforge/sources/bundle.json\t{"name": "bundle", "url": '
        '"https://example.org/bundle.git", "commit": "c0ffee"}',
    ),
}


@pytest.fixture(scope="module")
def plan() -> Plan:
    return golden_plan()


def golden_plan() -> Plan:
    """The golden tree's chain (core, frame:2.0, accel, bundle) on a base with an id."""
    platform = detect_platform({}, target="x86_64-cu128")
    catalog = discover([GOLDEN_TREE], platform)
    resolution = resolve(catalog, ["bundle"], {})
    options = PlanOptions(created="2026-01-02T03:04:05Z", base_id=BASE_ID)
    return plan_build(resolution, platform, options, read_context)


def make_engine(**outputs: str) -> FakeEngine:
    engine = FakeEngine(run_output={BASE: BASE_OUTPUT, **OUTPUTS, **outputs})
    engine.images[BASE_ID] = FakeImage(BASE_ID, {}, [BASE])
    return engine


def execute(plan: Plan, engine: FakeEngine, tmp_path: Path, **options: object) -> Summary:
    chosen = BuildOptions(
        logs_dir=tmp_path / "logs",
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        state_dir=tmp_path / "state",
        lock=True,
        **options,  # type: ignore[arg-type]
    )
    return Executor(plan, engine, chosen).execute()


def collector_runs(engine: FakeEngine) -> list[tuple[str, ...]]:
    return [call for call in engine.calls_of("run") if call[2:3] == ("-c",)]


def read_lock(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((tmp_path / "logs" / "jetforge.lock.json").read_text())


def locked_data(tmp_path: Path) -> LockData:
    """The lockfile of the build logged under ``tmp_path``, read back."""
    return parse_lock_data(read_lock(tmp_path))


@pytest.mark.process
def test_a_build_writes_the_lockfile_with_the_platform_base_and_every_stage(
    plan: Plan, tmp_path: Path
) -> None:
    engine = make_engine()
    summary = execute(plan, engine, tmp_path, lock_file=tmp_path / "my.lock.json")
    assert summary.ok
    lock = read_lock(tmp_path)
    assert (tmp_path / "my.lock.json").read_text() == (
        tmp_path / "logs" / "jetforge.lock.json"
    ).read_text()
    assert summary.lock == str(tmp_path / "logs" / "jetforge.lock.json")
    assert lock["format"] == 1
    assert lock["platform"] == plan.platform.to_json()
    assert lock["chain"] == ["core", "frame:2.0", "accel", "bundle"]
    final = engine.inspect(FINAL)
    assert final is not None
    assert (lock["final_image"], lock["final_image_id"]) == (FINAL, final.id)
    assert lock["base"]["reference"] == BASE
    assert lock["base"]["id"] == BASE_ID
    assert lock["base"]["digests"] == []
    assert lock["base"]["os"] == {"id": "ubuntu", "version": "24.04"}
    assert [d["name"] for d in lock["base"]["installed"]["deb"]] == ["dpkg", "libc6"]
    stages = lock["stages"]
    assert [(s["variant"], s["package"]) for s in stages] == [
        ("core", "core"),
        ("frame:2.0", "frame"),
        ("accel", "accel"),
        ("bundle", "bundle"),
    ]
    for stage, planned, result in zip(stages, plan.stages, summary.stages, strict=True):
        assert stage["key"] == planned.key
        assert stage["image"] == str(planned.image)
        assert stage["image_id"] == result.image_id
        assert stage["inventoried"] is True
    # each stage lists only what it added to its parent
    assert stages[0]["installed"]["deb"] == [
        {"name": "curl", "version": "8.5.0", "architecture": "amd64"}
    ]
    assert stages[1]["installed"] == {
        "deb": [],
        "python": [],
        "interpreters": [
            {"path": "/opt/venv/bin/python3", "version": "3.12.3", "environment": "/opt/venv"}
        ],
    }
    assert stages[2]["installed"]["python"] == [
        {"name": "NumPy", "version": "2.2.1", "environment": "/opt/venv"}
    ]
    assert stages[2]["sources"] == [
        {
            "name": "accel",
            "url": "https://example.org/accel.tar.gz",
            "file": "/usr/share/jetforge/sources/accel.json",
            "sha256": "a" * 64,
        }
    ]
    assert [(p["name"], p["version"]) for p in stages[3]["installed"]["python"]] == [
        ("bundle-tools", "1.0"),
        ("NumPy", "2.2.2"),
    ]  # an upgrade is listed with its new version
    assert stages[3]["removed"] == {"deb": ["curl"], "python": []}
    assert [s["name"] for s in stages[3]["sources"]] == ["bundle"]
    assert stages[3]["sources"][0]["commit"] == "c0ffee"
    # one collector container per image (the base and four stages), each removed
    assert len(collector_runs(engine)) == 5
    assert summary.lock_containers == 5
    assert engine.containers == set()
    assert inventory_path(tmp_path / "state", final.id).exists()
    assert (tmp_path / "logs" / "sbom.spdx.json").read_text() == sbom_path(
        tmp_path / "state", final.id
    ).read_text()
    written = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert written["lock"] == summary.lock
    assert written["lock_containers"] == 5


def test_a_build_that_reuses_every_stage_runs_no_container_and_writes_the_same_files(
    plan: Plan, tmp_path: Path
) -> None:
    engine = make_engine()
    execute(plan, engine, tmp_path)
    lock = (tmp_path / "logs" / "jetforge.lock.json").read_text()
    sbom = (tmp_path / "logs" / "sbom.spdx.json").read_text()
    engine.calls.clear()
    summary = execute(plan, engine, tmp_path)
    assert summary.ok
    assert {stage.state for stage in summary.stages} == {"reused"}
    assert engine.calls_of("run") == []
    assert engine.calls_of("build") == []
    assert summary.lock_containers == 0
    assert (tmp_path / "logs" / "jetforge.lock.json").read_text() == lock
    assert (tmp_path / "logs" / "sbom.spdx.json").read_text() == sbom


def test_an_image_that_cannot_be_listed_is_marked_and_the_next_stage_compared_further_up(
    plan: Plan, tmp_path: Path
) -> None:
    engine = make_engine(**{"*-frame_2.0": "sh: not found"})
    summary = execute(plan, engine, tmp_path)
    assert summary.ok
    stages = read_lock(tmp_path)["stages"]
    assert stages[1]["inventoried"] is False
    assert stages[1]["installed"] == {"deb": [], "python": [], "interpreters": []}
    # accel is compared with core, the nearest image that was listed
    assert [i["path"] for i in stages[2]["installed"]["interpreters"]] == ["/opt/venv/bin/python3"]
    frame = summary.stages[1].image_id
    assert not inventory_path(tmp_path / "state", frame).exists()  # asked again next time


def test_a_broken_source_record_fails_the_build_before_the_final_tag(
    plan: Plan, tmp_path: Path
) -> None:
    bad = output(
        deb("dpkg", "1.22.6"),
        deb("libc6", "2.39-0ubuntu8"),
        'source\t/usr/share/jetforge/sources/core.json\t{"name": "core"}',
    )
    engine = make_engine(**{"*-core": bad})
    with pytest.raises(FailureError) as raised:
        execute(plan, engine, tmp_path)
    message = str(raised.value)
    assert message.startswith("core: image bundle:demo-x86_64-cu128-24.04-full-core: ")
    assert "/usr/share/jetforge/sources/core.json" in message
    assert "\n" not in message
    assert engine.inspect(FINAL) is None
    assert not (tmp_path / "logs" / "jetforge.lock.json").exists()


def test_ctrl_c_in_a_collector_removes_its_container(plan: Plan, tmp_path: Path) -> None:
    engine = make_engine()
    chosen = BuildOptions(
        logs_dir=tmp_path / "logs",
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        state_dir=tmp_path / "state",
    )
    Executor(plan, engine, chosen).execute()  # built and tested, nothing listed yet
    engine.interrupt_tests = {"sha256:*"}  # the collector runs in images named by id
    engine.calls.clear()
    with pytest.raises(KeyboardInterrupt):
        execute(plan, engine, tmp_path)
    assert len(collector_runs(engine)) == 1
    assert engine.containers == set()
    assert len(engine.calls_of("rm")) == 1


def test_no_lock_step_without_the_option(plan: Plan, tmp_path: Path) -> None:
    engine = make_engine()
    chosen = BuildOptions(
        logs_dir=tmp_path / "logs",
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        state_dir=tmp_path / "state",
    )
    summary = Executor(plan, engine, chosen).execute()
    assert summary.ok
    assert collector_runs(engine) == []
    assert not (tmp_path / "logs" / "jetforge.lock.json").exists()


def build_without_engine(jetforge, *argv: str):  # type: ignore[no-untyped-def]
    """``jetforge build`` of the golden tree where no engine program exists: what fails
    does so before an engine is asked."""
    return jetforge(
        "build", "--package-dirs", str(GOLDEN_TREE), "--target", "x86_64-cu128", *argv,
        env={"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"},
    )  # fmt: skip


@pytest.mark.process
@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("x.json", ["--multiple", "bundle", "core"], "build: --lock FILE takes one chain"),
        ("missing/x.json", ["bundle"], "--lock: {tmp}/missing/x.json: cannot write it (its"),
        (".", ["bundle"], "--lock: {tmp}: is a directory (name a file)"),
    ],
)
def test_a_bad_lock_option_is_one_line_before_the_engine_is_asked(
    jetforge, tmp_path: Path, target: str, extra: list[str], message: str
) -> None:
    result = build_without_engine(jetforge, "--lock", str(tmp_path / target), *extra)
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"jetforge: error: {message.format(tmp=tmp_path)}")
    assert "Traceback" not in result.stderr


# --- build --locked ------------------------------------------------------------------------


def test_a_locked_build_that_installs_the_same_passes(plan: Plan, tmp_path: Path) -> None:
    execute(plan, make_engine(), tmp_path / "first")
    pinned = Pinned(tmp_path / "lock.json", locked_data(tmp_path / "first"))
    summary = execute(plan, make_engine(), tmp_path / "again", locked=pinned)
    assert summary.ok
    assert not (tmp_path / "again" / "logs" / "lock-differences.txt").exists()


def test_a_locked_build_that_installs_another_version_fails_naming_it(
    plan: Plan, tmp_path: Path
) -> None:
    execute(plan, make_engine(), tmp_path / "first")
    pinned = Pinned(tmp_path / "lock.json", locked_data(tmp_path / "first"))
    drifted = OUTPUTS["*-accel"].replace("NumPy\t2.2.1", "NumPy\t2.3.0")
    engine = make_engine(**{"*-accel": drifted})
    with pytest.raises(FailureError) as failed:
        execute(plan, engine, tmp_path / "again", locked=pinned)
    message = str(failed.value)
    assert message.startswith(f"--locked {tmp_path / 'lock.json'}: stage ")
    assert "(accel): python NumPy" in message
    assert "NumPy (/opt/venv) is 2.3.0, locked 2.2.1" in message
    assert engine.inspect(FINAL) is None  # no final tag
    differences = (tmp_path / "again" / "logs" / "lock-differences.txt").read_text()
    assert "(accel): python NumPy (/opt/venv) is 2.3.0" in differences


def test_lock_differences_name_missing_extra_and_changed_packages() -> None:
    def stage(debs: dict[str, str]) -> LockedStage:
        added = Inventory(debs=tuple(Deb(n, v, "amd64") for n, v in debs.items()))
        return LockedStage(1, "core", "k", "", "", added, Inventory())

    locked = [stage({"curl": "8.5.0", "git": "2.43"})]
    built = [stage({"curl": "8.6.0", "jq": "1.7"})]
    assert lock_differences(locked, built) == [
        "stage 1 (core): deb curl is 8.6.0, locked 8.5.0",
        "stage 1 (core): deb git 2.43 (locked) was not installed",
        "stage 1 (core): deb jq 1.7 is not in the lock",
    ]
    assert lock_differences(locked, locked) == []


def test_a_lock_for_another_chain_platform_or_base_is_refused(plan: Plan, tmp_path: Path) -> None:
    execute(plan, make_engine(), tmp_path)
    data = read_lock(tmp_path)
    locked = parse_lock_data(data)
    assert plan_mismatch(locked, plan, BASE_ID) == ""
    other_chain = parse_lock_data({**data, "chain": ["core"], "stages": data["stages"][:1]})
    assert plan_mismatch(other_chain, plan, BASE_ID).startswith("it pins the chain")
    other_platform = {**data, "platform": {"label": "cuda-12.6 ubuntu-22.04 aarch64"}}
    assert "this build is for" in plan_mismatch(parse_lock_data(other_platform), plan, BASE_ID)
    assert "base image ubuntu:24.04" in plan_mismatch(locked, plan, "sha256:" + "c" * 64)
    assert plan_mismatch(locked, plan, None) == ""  # no engine: the base is not checked


@pytest.mark.process
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "--locked: cannot read {path}"),
        ("{not json", "--locked: {path} is not a jetforge lockfile ("),
        ('{"format": 9}', "--locked: {path} is not a jetforge lockfile of format 1"),
    ],
)
def test_a_bad_locked_file_is_one_line(
    jetforge, tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "lock.json"
    if text is not None:
        path.write_text(text)
    result = build_without_engine(jetforge, "--locked", str(path), "bundle")
    lines = result.stderr.strip().splitlines()
    assert result.code == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"jetforge: error: {message.format(path=path)}")
