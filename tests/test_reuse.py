"""Which images a build reuses (jetforge.ops.reuse): only a completed build of a stage's key on
the image chosen for its parent, and the stages reused form one chain of parents."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from jetforge.core.labels import PARENT, STAGE_KEY
from jetforge.core.plan import Plan, PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.engine.base import ImageInfo
from jetforge.engine.fake import FakeEngine
from jetforge.errors import StageFailedError
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.ops.reuse import is_built_on, named_chain, reusable_chain
from tests.test_executor import GOLDEN_TREE, execute, plan_for


def ids(summary) -> list[str]:  # type: ignore[no-untyped-def]
    return [stage.image_id for stage in summary.stages]


def parents_of(engine: FakeEngine, image_ids: list[str]) -> list[str]:
    return [engine.images[i].labels.get(PARENT, "") for i in image_ids]


def first_stages(plan: Plan, count: int) -> Plan:
    """The plan of ``plan``'s first ``count`` stages."""
    stages = plan.stages[:count]
    return Plan(
        plan.platform, plan.chain[:count], plan.base_image, stages[-1].image, plan.build_mode,
        stages,
    )  # fmt: skip


def other_plan() -> Plan:
    """The golden chain with another build argument: other keys, the same image names."""
    platform = detect_platform({}, target="x86_64-cu128")
    resolution = resolve(discover([GOLDEN_TREE], platform), ["bundle"], {})
    options = PlanOptions(created="2026-01-02T03:04:05Z", build_args=(("EXTRA", "1"),))
    return plan_build(resolution, platform, options, read_context)


def test_a_failed_builds_leftover_image_is_never_reused_as_its_parent_stage(
    tmp_path: Path,
) -> None:
    plan = plan_for(GOLDEN_TREE)
    engine = FakeEngine(keep_failed=True)
    first = execute(first_stages(plan, 2), engine, tmp_path / "one")
    frame_id = first.stages[1].image_id
    engine.fail_builds = {"*accel*"}
    with pytest.raises(StageFailedError):
        execute(plan, engine, tmp_path / "two")
    leftovers = [i for i in engine.images.values() if not i.tags]
    assert len(leftovers) == 1  # the failed accel build's last good step
    assert leftovers[0].labels[PARENT] == engine.images[frame_id].labels[PARENT]
    engine.fail_builds = set()
    again = execute(plan, engine, tmp_path / "three")
    assert again.stages[1].state == "reused"
    assert again.stages[1].image_id == frame_id
    assert engine.images[again.stages[2].image_id].labels[PARENT] == frame_id


def test_a_stage_image_built_on_another_parent_image_is_not_reused(tmp_path: Path) -> None:
    plan = plan_for(GOLDEN_TREE)
    engine = FakeEngine()
    first = execute(plan, engine, tmp_path / "one")
    # Another build of the first stage only (a newer image with the same key).
    newer = execute(first_stages(plan, 1), engine, tmp_path / "two", rebuild=True)
    assert newer.stages[0].image_id != first.stages[0].image_id
    builds = len(engine.calls_of("build"))
    again = execute(plan, engine, tmp_path / "three")
    # The chain the later stages were built on is reused whole: nothing is built, and
    # each stage's parent is the image reused for the stage before.
    assert len(engine.calls_of("build")) == builds
    assert ids(again) == ids(first)
    assert parents_of(engine, ids(again))[1:] == ids(again)[:-1]
    assert engine.inspect(str(plan.stages[0].image)).id == first.stages[0].image_id  # type: ignore[union-attr]


def test_a_chain_whose_images_lost_their_names_is_found_through_its_parents(
    tmp_path: Path,
) -> None:
    plan = plan_for(GOLDEN_TREE)
    engine = FakeEngine()
    first = execute(plan, engine, tmp_path / "one")
    execute(other_plan(), engine, tmp_path / "two")  # takes every name
    listed = {info.id for info in engine.list_images([f"label={STAGE_KEY}"])}
    assert set(ids(first)[:-1]).isdisjoint(listed)  # hidden: no name, a child each
    builds = len(engine.calls_of("build"))
    again = execute(plan, engine, tmp_path / "three")
    assert len(engine.calls_of("build")) == builds
    assert ids(again) == ids(first)


def image(identifier: str, key: str, parent: str = "", layers: tuple[str, ...] = ()) -> ImageInfo:
    labels = {STAGE_KEY: key, **({PARENT: parent} if parent else {})}
    return ImageInfo(identifier, labels, layers=layers)


def test_an_image_without_a_parent_label_must_start_with_its_parents_layers() -> None:
    base = image("base", "", layers=("l0",))
    assert is_built_on(image("a", "k", layers=("l0", "l1")), base)
    assert not is_built_on(image("b", "k", layers=("x0", "l1")), base)
    assert not is_built_on(image("c", "k", parent="other", layers=("l0", "l1")), base)
    assert is_built_on(image("d", "k", parent="base"), base)
    assert is_built_on(image("e", "k", parent="anything"), None)  # an unknown base


def test_the_longest_consistent_chain_wins_over_the_newest_image() -> None:
    base = image("base", "")
    a_new, a_old = image("a2", "A", "base"), image("a1", "A", "base")
    b_old = image("b1", "B", "a1")
    chosen = reusable_chain(["A", "B", "C"], [[a_new, a_old], [b_old], []], base, lambda _: None)
    assert [i.id for i in chosen] == ["a1", "b1"]
    alone = reusable_chain(["A", "B"], [[a_new, a_old], []], base, lambda _: None)
    assert [i.id for i in alone] == ["a2"]
    assert reusable_chain(["A"], [[image("x", "A", "elsewhere")]], base, lambda _: None) == []


def test_the_stage_names_holding_the_whole_chain_give_it_without_a_listing() -> None:
    plan = plan_for(GOLDEN_TREE)
    stages = plan.stages
    base = image("base", "")
    held = {}
    parent = "base"
    for number, stage in enumerate(stages):
        held[str(stage.image)] = image(f"i{number}", stage.key, parent)
        parent = f"i{number}"
    chain = named_chain(stages, base, held.get)
    assert chain is not None
    assert [i.id for i in chain] == [f"i{n}" for n in range(len(stages))]
    last = str(stages[-1].image)
    for wrong in (
        None,  # a name nothing holds
        image("x", "another key", f"i{len(stages) - 2}"),
        image("x", stages[-1].key, "another parent"),
    ):
        assert named_chain(stages, base, {**held, last: wrong}.get) is None
    assert named_chain(stages, image("other base", ""), held.get) is None
    locked = [*stages[:-1], replace(stages[-1], locked_id="the lockfile's")]
    assert named_chain(locked, base, held.get) is None
