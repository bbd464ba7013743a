"""The executor on an in-memory engine: reuse by stage key, partial rebuild, resume after a
failure, the test memo, the final tag only after success, push, pull from a registry and
Ctrl-C clean-up (docs/builds.md, "Reuse", "Tests", "Logs"). No daemon: the real-engine
tests in test_build_engine*.py are the second line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jetforge.core.labels import STAGE_KEY
from jetforge.core.plan import Plan, PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.engine.fake import FakeEngine
from jetforge.errors import FailureError, StageFailedError
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.ops.executor import BuildOptions, Executor
from jetforge.ops.results import Summary
from jetforge.ops.results import tested_marker as marker_of

GOLDEN_TREE = Path(__file__).parent / "fixtures" / "trees" / "golden"
FINAL = "bundle:demo-x86_64-cu128-24.04-full"
STAGES = ("core", "frame:2.0", "accel", "bundle")


@pytest.fixture(scope="module")
def plan() -> Plan:
    """The golden tree's chain: core, frame:2.0, accel, bundle (planned once: the
    executor never changes a plan)."""
    return plan_for(GOLDEN_TREE)


def plan_for(tree: Path) -> Plan:
    platform = detect_platform({}, target="x86_64-cu128")
    catalog = discover([tree], platform)
    resolution = resolve(catalog, ["bundle"], {})
    options = PlanOptions(created="2026-01-02T03:04:05Z")
    return plan_build(resolution, platform, options, read_context)


def execute(plan: Plan, engine: FakeEngine, tmp_path: Path, **options: object) -> Summary:
    chosen = BuildOptions(
        logs_dir=tmp_path / "logs",
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        state_dir=tmp_path / "state",
        **options,  # type: ignore[arg-type]
    )
    return Executor(plan, engine, chosen).execute()


def states(summary: Summary) -> dict[str, str]:
    return {stage.package: stage.state for stage in summary.stages}


@pytest.mark.process
def test_a_first_build_builds_tests_and_tags_every_stage(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine()
    summary = execute(plan, engine, tmp_path)
    assert summary.ok
    assert states(summary) == dict.fromkeys(STAGES, "built")
    assert [call[1] for call in engine.calls_of("build")] == [str(s.image) for s in plan.stages]
    final = engine.inspect(FINAL)
    assert final is not None
    assert final.labels[STAGE_KEY] == plan.stages[-1].key
    # Each stage's tests in its own image, then all of them in the final one.
    assert [call[1] for call in engine.calls_of("run")] == [
        *(str(s.image) for s in plan.stages for _ in s.tests),
        *(str(plan.stages[-1].image) for s in plan.stages[:-1] for _ in s.tests),
    ]
    assert marker_of(tmp_path / "results", final.id).exists()
    written = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert written["ok"] is True


def test_a_repeated_build_reuses_every_stage_and_reruns_no_test(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine()
    execute(plan, engine, tmp_path)
    engine.calls.clear()
    summary = execute(plan, engine, tmp_path)
    assert summary.ok
    assert states(summary) == dict.fromkeys(STAGES, "reused")
    assert engine.calls_of("build") == []
    assert engine.calls_of("run") == []
    assert engine.calls_of("tag") == []  # everything already carries its tag
    assert engine.calls_of("images") == []  # the stage names hold the chain: no listing
    assert {t.state for s in summary.stages for t in s.tests} == {"cached"}


def test_a_stage_name_holding_another_image_makes_the_build_list_stage_images(
    plan: Plan, tmp_path: Path
) -> None:
    engine = FakeEngine()
    first = execute(plan, engine, tmp_path)
    engine.tag(first.stages[0].image_id, str(plan.stages[1].image))  # a name moved
    engine.calls.clear()
    summary = execute(plan, engine, tmp_path)
    assert states(summary) == dict.fromkeys(STAGES, "reused")
    assert len(engine.calls_of("images")) == 1  # one query for the whole chain
    assert [s.image_id for s in summary.stages] == [s.image_id for s in first.stages]
    assert engine.inspect(str(plan.stages[1].image)).id == first.stages[1].image_id


def test_reuse_is_by_stage_key_not_by_name(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine()
    execute(plan, engine, tmp_path)
    for image in engine.images.values():  # untagged, but still labelled
        image.tags.clear()
    summary = execute(plan, engine, tmp_path)
    assert states(summary) == dict.fromkeys(STAGES, "reused")
    assert engine.inspect(str(plan.stages[1].image)) is not None  # tagged again
    assert engine.inspect(FINAL) is not None


@pytest.mark.process
def test_an_edited_package_rebuilds_its_stage_and_those_above_only(tmp_path: Path) -> None:
    tree = Path(shutil.copytree(GOLDEN_TREE, tmp_path / "tree"))
    engine = FakeEngine()
    execute(plan_for(tree), engine, tmp_path)
    before = engine.inspect(FINAL)
    dockerfile = tree / "accel" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo changed\n")
    summary = execute(plan_for(tree), engine, tmp_path)
    assert states(summary) == {
        "core": "reused",
        "frame:2.0": "reused",
        "accel": "built",
        "bundle": "built",
    }
    after = engine.inspect(FINAL)
    assert before is not None
    assert after is not None
    assert after.id != before.id


def test_rebuild_builds_every_stage_again(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine()
    execute(plan, engine, tmp_path)
    summary = execute(plan, engine, tmp_path, rebuild=True)
    assert states(summary) == dict.fromkeys(STAGES, "built")


def test_a_failed_stage_leaves_no_final_tag_and_a_rerun_resumes_after_it(
    plan: Plan, tmp_path: Path
) -> None:
    engine = FakeEngine(fail_builds={"*-accel"})
    with pytest.raises(StageFailedError) as failed:
        execute(plan, engine, tmp_path, resume="jetforge build bundle")
    assert failed.value.stage == "accel"
    assert failed.value.resume == "jetforge build bundle"
    assert engine.inspect(FINAL) is None
    assert (
        (tmp_path / "logs" / "03-accel.build.log")
        .read_text()
        .endswith("the build of bundle:demo-x86_64-cu128-24.04-full-accel failed\n")
    )
    written = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert written["ok"] is False
    assert [s["state"] for s in written["stages"]] == ["built", "built", "failed", "pending"]

    engine.fail_builds.clear()
    engine.calls.clear()
    summary = execute(plan, engine, tmp_path)
    assert states(summary) == {
        "core": "reused",
        "frame:2.0": "reused",
        "accel": "built",
        "bundle": "built",
    }
    assert engine.inspect(FINAL) is not None
    # The tests that passed before the failure are not run again in the same images.
    assert [call[1] for call in engine.calls_of("run")][:1] == [
        "bundle:demo-x86_64-cu128-24.04-full-bundle"
    ]


def test_a_failed_final_test_leaves_no_final_tag_and_no_tested_mark(
    plan: Plan, tmp_path: Path
) -> None:
    # core's test passes in core's image and fails in the final one.
    engine = FakeEngine(fail_tests={"*-full-bundle *test.sh*"})
    with pytest.raises(StageFailedError) as failed:
        execute(plan, engine, tmp_path)
    assert (failed.value.stage, failed.value.step) == ("core", "test test.sh")
    written = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert [s["state"] for s in written["stages"]] == ["built"] * len(STAGES)
    assert engine.inspect(FINAL) is None
    last = engine.inspect("bundle:demo-x86_64-cu128-24.04-full-bundle")
    assert last is not None  # what was built stays
    assert not marker_of(tmp_path / "results", last.id).exists()

    engine.fail_tests.clear()
    engine.calls.clear()
    summary = execute(plan, engine, tmp_path)
    assert summary.ok
    assert engine.calls_of("build") == []
    assert engine.inspect(FINAL) is not None


def test_skipped_tests_are_run_by_a_later_build(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine()
    summary = execute(plan, engine, tmp_path, skip_tests=("all",))
    assert summary.ok
    assert engine.calls_of("run") == []
    summary = execute(plan, engine, tmp_path, skip_tests=("intermediate",))
    assert {call[1] for call in engine.calls_of("run")} == {str(plan.stages[-1].image)}
    summary = execute(plan, engine, tmp_path, test_only=("frame",))
    assert [t.entry for s in summary.stages for t in s.tests] == ["test.py --quick"]


def test_push_sends_the_stage_images_and_the_final_one(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine()
    summary = execute(plan, engine, tmp_path, push="registry.test:5000/ns/")
    assert summary.pushed == f"registry.test:5000/ns/{FINAL}"
    assert set(engine.registry) == {
        *(f"registry.test:5000/ns/{stage.image}" for stage in plan.stages),
        f"registry.test:5000/ns/{FINAL}",
    }
    assert engine.registry[summary.pushed][STAGE_KEY] == plan.stages[-1].key


def test_a_failed_push_fails_the_build_after_the_final_tag(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine(fail_pushes={f"*/{FINAL}"})
    with pytest.raises(FailureError, match=r"push of registry\.test/ns/bundle:.* failed: .*denied"):
        execute(plan, engine, tmp_path, push="registry.test/ns")
    assert engine.inspect(FINAL) is not None


def build_elsewhere_then_here(
    plan: Plan, tmp_path: Path, *, stale: bool = False
) -> tuple[FakeEngine, Summary]:
    """Build and push on one engine, then build on a second one that shares its registry
    (with ``stale``, every pushed image carries another stage key)."""
    first = FakeEngine()
    execute(plan, first, tmp_path / "first", push="registry.test/ns")
    if stale:
        for labels in first.registry.values():
            labels[STAGE_KEY] = "stale"
    # a registry keeps an image's id (pulled images are checked against their parents' ids)
    second = FakeEngine(registry=first.registry, registry_ids=first.registry_ids)
    summary = execute(
        plan, second, tmp_path / "second", remote=lambda stage: f"registry.test/ns/{stage.image}"
    )
    return second, summary


def test_stages_another_engine_pushed_are_pulled_instead_of_built(
    plan: Plan, tmp_path: Path
) -> None:
    second, summary = build_elsewhere_then_here(plan, tmp_path)
    assert states(summary) == dict.fromkeys(STAGES, "reused")
    assert second.calls_of("build") == []
    assert len(second.calls_of("pull")) == len(STAGES)
    assert second.inspect(FINAL) is not None


def test_a_pulled_image_with_another_key_is_not_used(plan: Plan, tmp_path: Path) -> None:
    second, summary = build_elsewhere_then_here(plan, tmp_path, stale=True)
    assert states(summary) == dict.fromkeys(STAGES, "built")
    assert len(second.calls_of("pull")) == len(STAGES)


def test_ctrl_c_in_a_test_removes_its_container_and_keeps_what_was_built(
    plan: Plan, tmp_path: Path
) -> None:
    engine = FakeEngine(interrupt_tests={"*-frame_2.0"})
    with pytest.raises(KeyboardInterrupt):
        execute(plan, engine, tmp_path)
    assert engine.containers == set()
    assert len(engine.calls_of("rm")) == 1
    assert engine.inspect(FINAL) is None
    written = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert [s["state"] for s in written["stages"]] == ["built", "built", "pending", "pending"]

    engine.interrupt_tests.clear()
    summary = execute(plan, engine, tmp_path)
    assert states(summary)["frame:2.0"] == "reused"
    assert summary.stages[1].tests[0].state == "passed"  # interrupted, so run again
    assert summary.stages[0].tests[0].state == "cached"


def test_ctrl_c_in_a_build_keeps_the_stages_before_it(plan: Plan, tmp_path: Path) -> None:
    engine = FakeEngine(interrupt_builds={"*-accel"})
    with pytest.raises(KeyboardInterrupt):
        execute(plan, engine, tmp_path)
    engine.interrupt_builds.clear()
    summary = execute(plan, engine, tmp_path)
    assert [s.state for s in summary.stages] == ["reused", "reused", "built", "built"]


def test_plan_and_build_scripts_are_written_before_the_first_build(
    plan: Plan, tmp_path: Path
) -> None:
    engine = FakeEngine(fail_builds={"*-core"})
    with pytest.raises(StageFailedError):
        execute(plan, engine, tmp_path)
    document = json.loads((tmp_path / "logs" / "plan.json").read_text())
    assert len(document["stages"]) == len(STAGES)
    script = (tmp_path / "logs" / "01-core.build.sh").read_text()
    assert "fake build --network host" in script
