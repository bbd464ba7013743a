"""Plans: golden plan JSON per target, build arguments, stage keys and labels
(docs/builds.md, "Stages, names and arguments" and "Reuse").

The golden files under tests/golden/ are exact. After an intended change to planning, the
platform table or the golden fixture tree, regenerate them with
``JETFORGE_UPDATE_GOLDEN=1 pytest tests/test_plan.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jetforge import __version__
from jetforge.core.plan import (
    TRUST_STAGE,
    Plan,
    PlanOptions,
    argv_for_test,
    as_built,
    merge_build_args,
    plan_build,
    plan_json,
)
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.engine.command import build_command
from jetforge.host.context import META_DOCKERFILE, read_context
from jetforge.host.platform import detect_platform

TREES = Path(__file__).parent / "fixtures" / "trees"
GOLDEN_TREE = TREES / "golden"
GOLDEN = Path(__file__).parent / "golden"
TARGETS = ("jp5", "jp6", "jp7", "x86_64-cu128", "sbsa-cu130")
CREATED = "2026-01-02T03:04:05Z"


def make_plan(
    target: str,
    requests: tuple[str, ...] = ("bundle",),
    options: PlanOptions | None = None,
    tree: Path = GOLDEN_TREE,
) -> Plan:
    platform = detect_platform({}, target=target)
    catalog = discover([tree], platform)
    assert catalog.problems == ()
    resolution = resolve(catalog, list(requests), {})
    return plan_build(resolution, platform, options or PlanOptions(created=CREATED), read_context)


def document(plan: Plan) -> dict[str, object]:
    """The plan as ``build --simulate --json`` prints it with no engine (no base image id)."""
    commands = {
        stage.index: build_command(as_built(stage), plan.build_mode, "docker").argv
        for stage in plan.stages
    }
    return plan_json(plan, commands)


def normalized(value: object) -> object:
    """The plan JSON with the machine-specific parts replaced by placeholders."""
    if isinstance(value, str):
        value = value.replace(str(META_DOCKERFILE), "<meta.Dockerfile>")
        value = value.replace(str(GOLDEN_TREE), "<tree>")
        return "<version>" if value == f"jetforge.version={__version__}" else value
    if isinstance(value, dict):
        return {
            key: "<version>" if key == "jetforge.version" else normalized(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalized(item) for item in value]
    return value


def check_golden(name: str, data: object) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(normalized(data), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("JETFORGE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path} differs (see module docstring)"


# --- golden plans -------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_golden_plan(target):
    check_golden(f"plan-{target}", document(make_plan(target)))


def test_golden_plan_with_every_option():
    options = PlanOptions(
        name="registry.example:5000/team/",
        base_image="team/base:1",
        base_id="sha256:" + "ab" * 32,
        build_args=(("CORE_LEVEL", "9"), ("EXTRA", "yes")),
        build_flags="--pull --shm-size 2g",
        build_mode="legacy",
        created=CREATED,
    )
    plan = make_plan("x86_64-cu128", ("frame:1.0",), options)
    check_golden("plan-x86_64-cu128-options", document(plan))


def test_every_golden_file_is_checked():
    expected = {f"plan-{target}.json" for target in TARGETS} | {"plan-x86_64-cu128-options.json"}
    assert {path.name for path in GOLDEN.glob("plan-*.json")} == expected


# --- what the goldens encode, stated once more as rules -----------------------------------


@pytest.mark.parametrize(
    ("target", "final", "base"),
    [
        ("jp5", "bundle:demo-r35.4.1-cu114-20.04-full", "nvcr.io/nvidia/l4t-jetpack:r35.4.1"),
        ("jp6", "bundle:demo-r36.4.0-cu126-22.04-full", "ubuntu:22.04"),
        ("jp7", "bundle:demo-r38.2.0-cu130-24.04-full", "ubuntu:24.04"),
        ("x86_64-cu128", "bundle:demo-x86_64-cu128-24.04-full", "ubuntu:24.04"),
        ("sbsa-cu130", "bundle:demo-sbsa-cu130-24.04-full", "ubuntu:24.04"),
    ],
)
def test_names_chain_and_bases(target, final, base):
    plan = make_plan(target)
    assert str(plan.final_image) == final
    assert plan.chain == ("core", "frame:2.0", "accel", "bundle")
    assert [str(stage.image) for stage in plan.stages] == [
        f"{final}-core",
        f"{final}-frame_2.0",
        f"{final}-accel",
        f"{final}-bundle",
    ]
    assert [str(stage.base) for stage in plan.stages] == [
        base,
        *(str(stage.image) for stage in plan.stages[:-1]),
    ]
    assert [stage.slug for stage in plan.stages] == [
        "01-core",
        "02-frame_2.0",
        "03-accel",
        "04-bundle",
    ]


def test_build_args_order_base_platform_variant_then_user_later_wins():
    options = PlanOptions(build_args=(("CORE_LEVEL", "9"), ("CUDA_VERSION", "0.0"), ("NEW", "1")))
    core = make_plan("jp6", ("core",), options).stages[0]
    assert core.build_args == (
        ("BASE_IMAGE", "ubuntu:22.04"),
        ("SYSTEM_ARCH", "aarch64"),
        ("CUDA_ARCH", "tegra-aarch64"),
        ("L4T_VERSION", "36.4.0"),
        ("JETPACK_VERSION", "6.1"),
        ("CUDA_VERSION", "0.0"),
        ("CUDA_ARCHITECTURES", "87"),
        ("PYTHON_VERSION", "3.99"),
        ("LSB_RELEASE", "22.04"),
        ("DISTRO", "ubuntu:22.04"),
        ("CORE_LEVEL", "9"),
        ("CORE_FAST", "true"),
        ("NEW", "1"),
    )


def test_merge_build_args_keeps_first_position_and_last_value():
    assert merge_build_args((("A", "1"), ("B", "2")), (("C", "3"), ("A", "4"))) == (
        ("A", "4"),
        ("B", "2"),
        ("C", "3"),
    )


def test_meta_package_stage_uses_the_meta_dockerfile_in_its_own_dir():
    stages = {stage.package: stage for stage in make_plan("jp6").stages}
    assert stages["bundle"].is_meta
    assert stages["bundle"].dockerfile == META_DOCKERFILE
    assert stages["bundle"].context == GOLDEN_TREE / "bundle"
    assert not stages["core"].is_meta


def test_stage_flags_are_the_variants_then_the_users():
    options = PlanOptions(build_flags="--pull", created=CREATED)
    stages = make_plan("jp6", ("frame",), options).stages
    assert [stage.build_flags for stage in stages] == [
        ("--shm-size", "1g", "--pull"),
        ("--pull",),
    ]


@pytest.mark.parametrize(
    ("entry", "argv"),
    [
        ("test.py", ("python3", "/test/test.py")),
        ("test.py --quick", ("python3", "/test/test.py", "--quick")),
        ("check.sh a", ("bash", "/test/check.sh", "a")),
        ("echo core ok", ("sh", "-c", "echo core ok")),
        ("sh -c 'test -f /x'", ("sh", "-c", "sh -c 'test -f /x'")),
    ],
)
def test_argv_for_test(entry, argv):
    assert argv_for_test(entry) == argv


def test_labels_of_each_stage():
    plan = make_plan("jp6")
    chains = [dict(stage.labels)["jetforge.chain"] for stage in plan.stages]
    assert chains == [
        "core",
        "core,frame:2.0",
        "core,frame:2.0,accel",
        "core,frame:2.0,accel,bundle",
    ]
    for stage in plan.stages:
        labels = dict(stage.labels)
        assert labels == {
            "jetforge.stage-key": stage.key,
            "jetforge.package": stage.package,
            "jetforge.chain": labels["jetforge.chain"],
            "jetforge.platform": "l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64",
            "jetforge.version": __version__,
            "org.opencontainers.image.created": CREATED,
            "org.opencontainers.image.title": str(stage.image),
        }


# --- stage keys ---------------------------------------------------------------------------


def keys(plan: Plan) -> list[str]:
    return [stage.key for stage in plan.stages]


def test_stage_keys_do_not_depend_on_where_the_tree_is(tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(GOLDEN_TREE, copy)
    assert keys(make_plan("jp6", tree=copy)) == keys(make_plan("jp6"))


def test_stage_keys_ignore_the_image_name_and_the_created_time():
    renamed = make_plan("jp6", options=PlanOptions(name="other/", created="2030-01-01T00:00:00Z"))
    assert keys(renamed) == keys(make_plan("jp6"))


def test_changing_one_package_changes_its_key_and_every_later_one_only(tmp_path):
    copy = tmp_path / "tree"
    shutil.copytree(GOLDEN_TREE, copy)
    before = keys(make_plan("jp6", tree=copy))
    (copy / "frame" / "extra.txt").write_text("new file in the context\n")
    after = keys(make_plan("jp6", tree=copy))
    assert after[0] == before[0]
    assert all(new != old for new, old in zip(after[1:], before[1:], strict=True))


def test_hidden_and_cache_files_do_not_change_keys(tmp_path):
    copy = tmp_path / "tree"
    shutil.copytree(GOLDEN_TREE, copy)
    before = keys(make_plan("jp6", tree=copy))
    (copy / "core" / "__pycache__").mkdir()
    (copy / "core" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (copy / "core" / ".swp").write_text("editor state")
    assert keys(make_plan("jp6", tree=copy)) == before


@pytest.mark.parametrize(
    "options",
    [
        PlanOptions(build_mode="legacy"),
        PlanOptions(base_id="sha256:" + "00" * 32),
        PlanOptions(base_image="other:1"),
        PlanOptions(build_args=(("CORE_LEVEL", "4"),)),
        PlanOptions(build_flags="--pull"),
    ],
    ids=["build-mode", "base-id", "base-ref", "build-args", "build-flags"],
)
def test_every_input_of_the_first_stage_changes_every_key(options):
    default = keys(make_plan("jp6"))
    changed = keys(make_plan("jp6", options=options))
    assert all(new != old for new, old in zip(changed, default, strict=True))


def test_another_platform_changes_every_key():
    assert not set(keys(make_plan("jp6"))) & set(keys(make_plan("jp7")))


def test_the_trust_stage_comes_first_and_stays_out_of_the_chain(tmp_path):
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    (trust / "ca-bundle.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    plan = make_plan("jp6", ("core",), PlanOptions(trust_context=trust, created=CREATED))
    first, core = plan.stages
    assert (first.index, first.package, str(first.base)) == (0, TRUST_STAGE, "ubuntu:22.04")
    assert dict(first.labels)["jetforge.chain"] == ""
    assert core.base == first.image
    assert plan.chain == ("core",)
    assert core.key != make_plan("jp6", ("core",)).stages[0].key
