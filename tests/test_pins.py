"""What a lockfile pins in a locked build (core/pins.py) and how the build uses it, on an
in-memory engine: each stage's pins are its own and its parents' packages, they go into
the stage's Dockerfile after the last FROM and so into its key, the lockfile's own images
are reused, `--upgrade` names what may move, and `jetforge lock` refreshes a file. The
real engine is tests/test_lock_engine.py."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jetforge.core.dockerfile import RESET_STAGE_KEY, edit_dockerfile, identity_label
from jetforge.core.inventory import Deb, Distribution, Inventory, parse_inventory
from jetforge.core.lockdata import LockedStage, parse_lock_data
from jetforge.core.lockfile import lock_differences, moved
from jetforge.core.pins import APT_PREFERENCES, PYTHON_PINS, Pinning, Pins
from jetforge.core.plan import Plan, PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.errors import FailureError
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.ops.lockstep import Pinned
from tests.test_lock import (
    BASE_ID,
    GOLDEN_TREE,
    OUTPUTS,
    execute,
    golden_plan,
    make_engine,
    output,
    read_lock,
)

SHA = "5" * 64


def locked_plan(locked: dict[str, Any], upgrade: tuple[str, ...] = ()) -> Plan:
    platform = detect_platform({}, target="x86_64-cu128")
    catalog = discover([GOLDEN_TREE], platform)
    resolution = resolve(catalog, ["bundle"], {})
    options = PlanOptions(
        created="2026-01-02T03:04:05Z",
        base_id=BASE_ID,
        locked=parse_lock_data(locked),
        upgrade=upgrade,
    )
    return plan_build(resolution, platform, options, read_context)


@pytest.fixture
def lock(tmp_path: Path) -> dict[str, Any]:
    """The lockfile of the golden chain built once."""
    execute(golden_plan(), make_engine(), tmp_path / "first")
    return read_lock(tmp_path / "first")


def stage_data(
    variant: str, debs: dict[str, str], python: dict[str, str], sha256: str = SHA
) -> LockedStage:
    """A locked stage that installed ``debs`` and ``python`` (name → version)."""
    added = Inventory(
        debs=tuple(Deb(n, v, "amd64") for n, v in debs.items()),
        distributions=tuple(Distribution(n, v, "/opt/venv", sha256) for n, v in python.items()),
    )
    return LockedStage(0, variant, f"key-{variant}", "", f"sha256:{variant}", added, Inventory())


def step(pinning: Pinning, variant: str, key: str = "") -> tuple[Pins, str]:
    """The next stage's pins and locked image, its key being ``key-VARIANT`` (the
    lock's) unless given."""
    pins = pinning.after(variant)
    return pins, pinning.locked_image({key or f"key-{variant}"})


LOCK = (
    stage_data("core", {"curl": "8.5.0"}, {}),
    stage_data("frame:2.0", {"python3": "3.12.3-1"}, {"pip": "24.0"}),
    stage_data("accel", {}, {"NumPy": "2.2.1"}),
)


def test_each_stage_is_pinned_to_its_own_and_its_parents_packages() -> None:
    pinning = Pinning(LOCK)
    core, core_id = step(pinning, "core")
    frame, frame_id = step(pinning, "frame:2.0")
    accel, _ = step(pinning, "accel")
    assert core == Pins(debs=(("curl", "8.5.0"),))
    assert frame.debs == (("curl", "8.5.0"), ("python3", "3.12.3-1"))
    assert frame.python == (("pip", "24.0", SHA, "/opt/venv"),)
    assert accel.python == (("NumPy", "2.2.1", SHA, "/opt/venv"), ("pip", "24.0", SHA, "/opt/venv"))
    assert (core_id, frame_id) == ("sha256:core", "sha256:frame:2.0")


def test_a_removed_package_is_no_longer_pinned() -> None:
    removing = replace(stage_data("accel", {}, {}), removed=Inventory(debs=(Deb("curl", "", ""),)))
    pinning = Pinning([LOCK[0], removing])
    step(pinning, "core")
    assert step(pinning, "accel")[0].debs == ()


def test_upgrade_leaves_a_name_free_and_ends_the_reuse_of_locked_images() -> None:
    pinning = Pinning(LOCK, upgrade=("numpy",))
    assert step(pinning, "core")[1] == "sha256:core"
    assert step(pinning, "frame:2.0")[1] == "sha256:frame:2.0"
    accel, accel_id = step(pinning, "accel")
    assert [name for name, *_ in accel.python] == ["pip"]  # NumPy is free, by its pip name
    assert accel_id == ""
    whole = Pinning(LOCK, upgrade=("frame",))  # a package: every pin its stage added
    step(whole, "core")
    assert step(whole, "frame:2.0") == (Pins(debs=(("curl", "8.5.0"),)), "")


def test_a_stage_with_other_inputs_than_the_locked_one_ends_the_reuse() -> None:
    pinning = Pinning(LOCK)
    assert step(pinning, "core", "another key") == (Pins(debs=(("curl", "8.5.0"),)), "")
    assert step(pinning, "frame:2.0")[1] == ""


def test_a_stage_the_lock_does_not_have_is_free_and_ends_the_reuse() -> None:
    pinning = Pinning(LOCK)
    step(pinning, "core")
    assert step(pinning, "other")[1] == ""
    assert step(pinning, "frame:2.0")[1] == ""  # the lock's, but no longer at its place


def test_the_pins_go_after_the_last_from_and_write_both_files() -> None:
    pins = Pins(debs=(("python3", "3.12.3-1"),), python=(("numpy", "2.2.1", SHA, "/opt/venv"),))
    text = "FROM a AS build\nRUN make\nFROM ${BASE_IMAGE} \\\n  AS final\nRUN true\n"
    edited = edit_dockerfile(text, (), pins.instruction())
    before, _, after = edited.partition("  AS final\n")
    assert before == f"FROM a AS build\n{RESET_STAGE_KEY}RUN make\nFROM ${{BASE_IMAGE}} \\\n"
    assert after.startswith(f"{RESET_STAGE_KEY}# jetforge --locked:")
    assert after.endswith("RUN true\n")
    assert after.count("RUN ") == 2
    assert f"    python3 3.12.3-1 \\\n    > {APT_PREFERENCES} \\\n" in after
    assert f"    numpy ==2.2.1 {SHA} /opt/venv \\\n    > {PYTHON_PINS}\n" in after
    assert Pins().instruction() == ""
    assert "jetforge --locked" not in edit_dockerfile(text, (), "")


def written(instruction: str, root: Path) -> tuple[str, str]:
    """The apt preferences and Python pins the ``RUN`` instructions of ``instruction``
    write, each logical line run with ``sh -c`` as an engine runs it, under ``root``."""
    for line in instruction.replace("\\\n", "").splitlines():
        if line.startswith("RUN "):
            subprocess.run(["sh", "-c", line[4:].replace("/etc/", f"{root}/etc/")], check=True)
    files = (root / APT_PREFERENCES.lstrip("/"), root / PYTHON_PINS.lstrip("/"))
    return files[0].read_text(), files[1].read_text()


@pytest.mark.process
def test_the_pins_write_apt_preferences_and_pip_constraints(tmp_path: Path) -> None:
    pins = Pins(
        debs=(("curl", "8.5.0"), ("libc6", "2.39-0ubuntu8~1")),
        python=(("NumPy", "2.2.1", SHA, "/opt/venv"), ("distro-info", "1.1build1", "", "/usr")),
    )
    preferences, python = written(pins.instruction(), tmp_path)
    assert preferences == (
        "Package: curl\nPin: version 8.5.0\nPin-Priority: 1001\n\n"
        "Package: libc6\nPin: version 2.39-0ubuntu8~1\nPin-Priority: 1001\n\n"
    )
    assert python == (
        f"NumPy==2.2.1 # sha256={SHA} environment=/opt/venv\n"
        "distro-info===1.1build1 # sha256=- environment=/usr\n"
    )
    assert written(Pins(debs=(("curl", "8.5.0"),)).instruction(), tmp_path)[1] == ""


@pytest.mark.process
def test_a_locked_plan_has_its_own_keys_and_the_same_lock_gives_the_same_keys(
    lock: dict[str, Any],
) -> None:
    plain, pinned, again = golden_plan(), locked_plan(lock), locked_plan(lock)
    assert [s.key for s in pinned.stages] == [s.key for s in again.stages]
    assert all(a.key != b.key for a, b in zip(plain.stages, pinned.stages, strict=True))
    assert [bool(s.pins) for s in pinned.stages] == [True, True, True, True]
    other = json.loads(json.dumps(lock))
    other["stages"][2]["installed"]["python"][0]["version"] = "2.2.9"
    changed = locked_plan(other)
    keys = [a.key == b.key for a, b in zip(pinned.stages, changed.stages, strict=True)]
    assert keys == [True, True, False, False]  # accel's pins and so its child change


@pytest.mark.process
def test_a_locked_build_reuses_the_lockfiles_images(tmp_path: Path) -> None:
    engine = make_engine()
    execute(golden_plan(), engine, tmp_path / "first")  # the images the lock names
    lock = read_lock(tmp_path / "first")
    plan = locked_plan(lock)
    built = len(engine.calls_of("build"))
    pinned = Pinned(tmp_path / "x", parse_lock_data(lock))
    summary = execute(plan, engine, tmp_path / "again", locked=pinned)
    assert [s.state for s in summary.stages] == ["reused"] * 4
    assert [s.image_id for s in summary.stages] == [s["image_id"] for s in lock["stages"]]
    assert len(engine.calls_of("build")) == built
    log = (tmp_path / "again" / "logs" / f"{plan.stages[1].slug}.build.log").read_text()
    assert "the lockfile's image for this stage" in log


@pytest.mark.process
def test_a_locked_build_without_the_images_builds_pinned_dockerfiles(
    lock: dict[str, Any], tmp_path: Path
) -> None:
    plan = locked_plan(lock)
    pinned = Pinned(tmp_path / "x", parse_lock_data(lock))
    summary = execute(plan, make_engine(), tmp_path, locked=pinned)
    assert summary.ok
    assert [s.state for s in summary.stages] == ["built"] * 4
    accel = plan.stages[2]
    assert accel.package == "accel"
    written = (tmp_path / "logs" / f"{accel.slug}.Dockerfile").read_text()
    parent = summary.stages[1].image_id  # frame's image, which accel was built on
    assert written == edit_dockerfile(accel.dockerfile.read_text(), (), accel.pins) + (
        identity_label(accel.key, parent)
    )
    assert "\n    curl 8.5.0 \\\n" in written
    assert "\n    NumPy ==2.2.1 - /opt/venv \\\n" in written


@pytest.mark.process
def test_a_drifted_stage_fails_right_after_it_is_built(
    lock: dict[str, Any], tmp_path: Path
) -> None:
    drifted = OUTPUTS["*-accel"].replace("NumPy\t2.2.1", "NumPy\t2.3.0")
    engine = make_engine(**{"*-accel": drifted})
    pinned, plan = Pinned(tmp_path / "x", parse_lock_data(lock)), locked_plan(lock)
    with pytest.raises(FailureError) as failed:
        execute(plan, engine, tmp_path, locked=pinned)
    assert str(failed.value).startswith(
        f"--locked {tmp_path / 'x'}: stage 3 (accel): python NumPy (/opt/venv) is 2.3.0, "
        "locked 2.2.1"
    )
    assert len(engine.calls_of("build")) == 3  # bundle, after accel, was not built


def test_a_file_hash_difference_is_named() -> None:
    def data(sha256: str) -> list[LockedStage]:
        return [replace(stage_data("accel", {}, {"numpy": "2.2.1"}, sha256), index=3)]

    assert lock_differences(data("a" * 64), data("b" * 64)) == [
        "stage 3 (accel): python numpy (/opt/venv) 2.2.1 was installed from another file "
        f"(sha256 {'b' * 64}, locked {'a' * 64})"
    ]
    assert lock_differences(data("a" * 64), data("a" * 64)) == []


def test_the_collectors_file_records_give_each_distribution_its_sha256_and_url() -> None:
    inventory = parse_inventory(
        output(
            "pypi\tnumpy\t2.2.1\t/opt/venv",
            "pypi\tnumpy\t1.26.4\t/usr",
            f"pipfile\tNumPy\t2.2.1\t{SHA}\thttps://files.example/numpy.whl\t/opt/venv",
        )
    )
    found = {(d.environment, d.sha256, d.url) for d in inventory.distributions}
    assert found == {("/opt/venv", SHA, "https://files.example/numpy.whl"), ("/usr", "", "")}


def test_a_refresh_fails_on_what_moved_unless_it_was_named() -> None:
    locked = [stage_data("core", {"curl": "8.5.0", "git": "2.43"}, {"numpy": "2.2.1"})]
    built = [stage_data("core", {"curl": "8.6.0", "git": "2.43", "jq": "1.7"}, {"numpy": "2.3.0"})]
    assert moved(locked, built, ()) == [
        "deb curl moved to 8.6.0 from the locked 8.5.0 "
        "(name it with --upgrade curl to let it move)",
        "python numpy (/opt/venv) moved to 2.3.0 from the locked 2.2.1 "
        "(name it with --upgrade numpy to let it move)",
    ]
    assert moved(locked, built, ("curl", "NumPy")) == []


@pytest.mark.process
def test_jetforge_lock_refuses_an_upgrade_of_a_name_the_file_does_not_pin(
    jetforge, lock: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "bundle.lock.json"
    path.write_text(json.dumps(lock))
    result = jetforge(
        "lock", "--package-dirs", str(GOLDEN_TREE), "--target", "x86_64-cu128",
        "--file", str(path), "--upgrade", "numpy,nosuch", "bundle",
        env={"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"},
    )  # fmt: skip
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"jetforge: error: --upgrade nosuch: {path} pins no package, Debian package or Python "
        "distribution of that name ('base' lets the base image move)"
    ]


@pytest.mark.process
def test_the_sbom_gives_a_recorded_file_its_sha256_and_download_location(tmp_path: Path) -> None:
    url = "https://files.example/numpy-2.2.2-cp312-none-any.whl"
    record = f"pipfile\tNumPy\t2.2.2\t{SHA}\t{url}\t/opt/venv\n"
    execute(golden_plan(), make_engine(**{"*-bundle": OUTPUTS["*-bundle"] + record}), tmp_path)
    document = json.loads((tmp_path / "logs" / "sbom.spdx.json").read_text())
    numpy = next(p for p in document["packages"] if p["name"] == "NumPy")
    assert numpy["versionInfo"] == "2.2.2"
    assert numpy["downloadLocation"] == url
    assert numpy["checksums"] == [{"algorithm": "SHA256", "checksumValue": SHA}]
    dpkg = next(p for p in document["packages"] if p["name"] == "dpkg")
    assert dpkg["downloadLocation"] == "NOASSERTION"
    assert "checksums" not in dpkg


@pytest.mark.process
def test_simulate_with_locked_plans_the_pinned_stages(
    jetforge, lock: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "bundle.lock.json"
    path.write_text(json.dumps(lock))

    def simulated(*extra: str) -> list[str]:
        result = jetforge(
            "build", "--package-dirs", str(GOLDEN_TREE), "--target", "x86_64-cu128",
            "--simulate", "--json", *extra, "bundle",
            env={"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"},
        )  # fmt: skip
        assert result.code == 0, result.stderr
        return [stage["key"] for stage in json.loads(result.stdout)["stages"]]

    plain, pinned = simulated(), simulated("--locked", str(path))
    assert len(plain) == len(pinned)
    # the lock's four stages are pinned (a CA trust stage before them, if any, is not)
    assert all(a != b for a, b in zip(plain[-4:], pinned[-4:], strict=True))
    assert simulated("--locked", str(path)) == pinned
