"""The resolver, driven by data: an index and cases giving a chain or a conflict."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from jetforge import errors
from jetforge.core.catalog import Catalog
from jetforge.core.preference import order_by_preference, version_env_name
from jetforge.core.resolve import (
    COMMAND_LINE,
    expand_requests,
    resolve,
)
from jetforge.discovery.discover import discover
from jetforge.host.platform import detect_platform

FIXTURES = Path(__file__).parent / "fixtures"
INDEX = FIXTURES / "resolve" / "index"
TREES = FIXTURES / "trees"
CASES = yaml.safe_load((FIXTURES / "resolve" / "cases.yaml").read_text())


@cache
def catalog_for(root: Path, target: str) -> Catalog:
    catalog = discover([root], detect_platform({}, target=target))
    assert catalog.problems == ()
    return catalog


def test_the_index_parses_and_the_cases_are_well_formed():
    assert len(CASES) >= 20
    for case in CASES:
        assert set(case) <= {"name", "request", "target", "env", "chain", "error", "message"}
        assert ("chain" in case) != ("error" in case), case["name"]


@pytest.mark.process
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_resolver_case(case):
    catalog = catalog_for(INDEX, case.get("target", "jp6"))
    env = case.get("env", {})
    if "chain" in case:
        resolution = resolve(catalog, case["request"], env)
        assert [variant.name for variant in resolution.chain] == case["chain"]
        return
    with pytest.raises(getattr(errors, case["error"])) as caught:
        resolve(catalog, case["request"], env)
    assert str(caught.value) == case["message"]
    assert caught.value.exit_code == 2


# --- pins in both orders, aliases, selection, on the fixture trees ----------------------


@pytest.mark.process
@pytest.mark.parametrize(
    "request_", [["zmid", "zlib:1"], ["zlib:1", "zmid"]], ids=["pin-after", "pin-before"]
)
def test_pins_in_either_order_give_the_same_chain(request_):
    resolution = resolve(catalog_for(TREES / "pins", "jp6"), request_, {})
    assert [v.name for v in resolution.chain] == ["zlib:1", "zmid"]


@pytest.mark.process
def test_without_a_pin_the_highest_version_is_chosen():
    resolution = resolve(catalog_for(TREES / "pins", "jp6"), ["zmid"], {})
    assert [v.name for v in resolution.chain] == ["zlib:2", "zmid"]


@pytest.mark.process
def test_a_pin_in_a_later_dependant_applies_to_earlier_requests():
    resolution = resolve(catalog_for(TREES / "pins", "jp6"), ["zmid", "ztop"], {})
    assert [v.name for v in resolution.chain] == ["zlib:1", "zmid", "ztop"]


@pytest.mark.process
@pytest.mark.parametrize(
    ("request_", "chain"),
    [
        (["torch", "torchvision"], ["pytorch:2.8", "torchvision"]),
        (["pytorch", "torchvision"], ["pytorch:2.8", "torchvision"]),
        (["torchvision", "torch", "torchaudio"], ["pytorch:2.8", "torchvision", "torchaudio"]),
        (["torch:2.6", "torchaudio", "torchvision"], ["pytorch:2.6", "torchaudio", "torchvision"]),
    ],
)
def test_alias_requests_build_pytorch_once(request_, chain):
    resolution = resolve(catalog_for(TREES / "alias", "jp6"), request_, {})
    assert [v.name for v in resolution.chain] == chain


@pytest.mark.process
@pytest.mark.parametrize(
    ("request_", "env", "expected"),
    [
        (["chooser"], {}, "chooser:2.0"),  # default: true
        (["chooser"], {"CHOOSER_VERSION": "3.0"}, "chooser:3.0"),  # env beats default
        (["chooser"], {"CHOOSER_VERSION": "1"}, "chooser:1.0"),  # compared as versions
        (["chooser:1.0"], {"CHOOSER_VERSION": "3.0"}, "chooser:1.0"),  # request beats env
        (["chooser>=3"], {}, "chooser:3.0"),  # a requirement beats default
        (["versioned"], {}, "versioned:1.10"),  # highest, as versions (not as text)
        (["versioned<1.10"], {}, "versioned:1.9"),
        (["versioned:edge"], {}, "versioned:edge"),
        (["multi-word"], {}, "multi-word:2"),
        (["multi-word"], {"MULTI_WORD_VERSION": "1"}, "multi-word:1"),
    ],
)
def test_variant_selection(request_, env, expected):
    resolution = resolve(catalog_for(TREES / "selection", "jp6"), request_, env)
    assert [v.name for v in resolution.chain] == [expected]


@pytest.mark.process
def test_dependencies_get_the_same_selection_rules():
    catalog = catalog_for(TREES / "selection", "jp6")
    chain = [v.name for v in resolve(catalog, ["user"], {"VERSIONED_VERSION": "1.2"}).chain]
    assert chain == ["chooser:2.0", "versioned:1.2", "user"]


def test_version_env_name():
    assert version_env_name("pytorch") == "PYTORCH_VERSION"
    assert version_env_name("build-essential") == "BUILD_ESSENTIAL_VERSION"
    assert version_env_name("onnx.runtime") == "ONNX_RUNTIME_VERSION"


@pytest.mark.process
def test_order_by_preference_env_then_default_then_highest_then_by_name():
    catalog = catalog_for(TREES / "selection", "jp6")
    versioned = catalog.lookup("versioned")
    assert [v.name for v in order_by_preference(versioned, {})] == [
        "versioned:1.10",
        "versioned:1.9",
        "versioned:1.2",
        "versioned:edge",
    ]
    chooser = catalog.lookup("chooser")
    assert [v.name for v in order_by_preference(chooser, {})] == [
        "chooser:2.0",
        "chooser:3.0",
        "chooser:1.0",
    ]
    assert [v.name for v in order_by_preference(chooser, {"CHOOSER_VERSION": "1.0"})] == [
        "chooser:1.0",
        "chooser:2.0",
        "chooser:3.0",
    ]


# --- what resolution records ------------------------------------------------------------


@pytest.mark.process
def test_resolution_records_requests_edges_and_why():
    catalog = catalog_for(INDEX, "jp6")
    resolution = resolve(catalog, ["app", "base:2.0"], {})
    assert [v.name for v in resolution.requested] == ["app", "base:2.0"]
    assert resolution.edges == (
        ("app", "lib:2.0"),
        ("lib:2.0", "base:2.0"),
        ("app", "tool"),
        ("tool", "base:2.0"),
    )
    why = {s.variant.name: s for s in resolution.selections}
    assert why["base:2.0"].reason == (
        "pinned by 'base:2.0' (from the command line) and 'base>=2' (from lib:2.0)"
    )
    assert why["base:2.0"].rejected == (
        ("base:1.0", "excluded by 'base:2.0' (from the command line)"),
    )
    assert why["lib:2.0"].reason == "highest version"
    assert why["lib:2.0"].rejected == (("lib:1.0", "less preferred (highest version wins)"),)
    assert {(n.origin, str(n.requirement)) for n in why["base:2.0"].needs} == {
        (COMMAND_LINE, "base:2.0"),
        ("lib:2.0", "base>=2"),
        ("tool", "base"),
    }


@pytest.mark.process
def test_selection_reasons_for_env_and_default():
    catalog = catalog_for(TREES / "selection", "jp6")
    [env_choice] = resolve(catalog, ["chooser"], {"CHOOSER_VERSION": "3.0"}).selections
    assert env_choice.reason == "CHOOSER_VERSION=3.0"
    [default] = resolve(catalog, ["chooser"], {}).selections
    assert default.reason == "marked default"


@pytest.mark.process
def test_unavailable_alternatives_are_rejected_with_the_platform_reason():
    catalog = catalog_for(TREES / "gated", "jp6")
    [selection] = resolve(catalog, ["accel"], {}).selections
    assert selection.variant.name == "accel:jp6"
    assert dict(selection.rejected)["accel:x86"] == (
        "unavailable: requires x86_64, >=cu128 "
        "(platform: l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64)"
    )


# --- wildcard requests ------------------------------------------------------------------


@pytest.mark.process
@pytest.mark.parametrize(
    ("patterns", "expanded"),
    [
        (["ros:*"], ["ros"]),  # every variant of a base name: the base name
        (["ros:j*"], ["ros:jazzy"]),  # some variants: each of them
        (["ros*"], ["ros", "ros-tools", "rviz"]),  # rviz by its alias ros-viewer
        (["rviz", "ros-*"], ["rviz", "ros-tools"]),
        (["ros:*", "ros"], ["ros"]),
    ],
)
def test_expand_requests(patterns, expanded):
    assert expand_requests(catalog_for(TREES / "wildcard", "jp6"), patterns) == expanded


@pytest.mark.process
def test_wildcard_that_matches_nothing_is_an_unknown_package():
    with pytest.raises(errors.UnknownPackageError, match="unknown package 'nothing\\*'"):
        expand_requests(catalog_for(TREES / "wildcard", "jp6"), ["nothing*"])


@pytest.mark.process
def test_wildcard_request_resolves_into_one_chain():
    catalog = catalog_for(TREES / "wildcard", "jp6")
    resolution = resolve(catalog, expand_requests(catalog, ["r*"]), {})
    assert [v.name for v in resolution.chain] == ["ros:humble", "ros-tools", "rviz"]
