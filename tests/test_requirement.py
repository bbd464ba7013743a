"""Dependency entries and platform predicates (docs/package-format.md)."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from jetforge.core.requirement import (
    RequirementSyntaxError,
    is_version_match,
    parse_predicate,
    parse_requirement,
)
from jetforge.host.platform import detect_platform

TARGETS = ("jp5", "jp6", "jp7", "x86_64-cu128", "sbsa-cu130")


@pytest.fixture(scope="module")
def platforms():
    return {target: detect_platform({}, target=target) for target in TARGETS}


@pytest.mark.parametrize(
    ("text", "name", "tag", "specifier"),
    [
        ("numpy", "numpy", "", None),
        ("pytorch:2.8", "pytorch", "2.8", None),
        ("ros:humble", "ros", "humble", None),
        ("pytorch>=2.6", "pytorch", "", ">=2.6"),
        ("pytorch >= 2.6, <3", "pytorch", "", ">=2.6,<3"),
        ("build-essential", "build-essential", "", None),
        ("PyTorch", "pytorch", "", None),
    ],
)
def test_parse_requirement(text, name, tag, specifier):
    requirement = parse_requirement(text)
    assert (requirement.name, requirement.tag) == (name, tag)
    assert requirement.specifier == (SpecifierSet(specifier) if specifier else None)
    assert str(requirement) == text.strip()


@pytest.mark.parametrize("text", ["", ":2.8", "pytorch:2.8>=2", "pytorch>=two", "a b"])
def test_bad_requirement_says_what_is_valid(text):
    with pytest.raises(RequirementSyntaxError, match="valid"):
        parse_requirement(text)


@pytest.mark.parametrize(
    ("text", "kind", "specifier", "word"),
    [
        (">=r36", "l4t", ">=36", ""),
        ("==r35.*", "l4t", "==35.*", ""),
        ("<36.4", "l4t", "<36.4", ""),
        (">=32.6", "l4t", ">=32.6", ""),
        (">=cu126", "cuda", ">=12.6", ""),
        ("<cu130", "cuda", "<13.0", ""),
        (">=cu12.6", "cuda", ">=12.6", ""),
        ("<cu13", "cuda", "<13", ""),
        (">=cu118", "cuda", ">=11.8", ""),
        (">=py310", "python", ">=3.10", ""),
        (">=py3.10", "python", ">=3.10", ""),
        ("==ubuntu24.04", "distro", "==24.04", "ubuntu"),
        ("22.04", "distro", "==22.04", "ubuntu"),
        (">=debian12", "distro", ">=12", "debian"),
        ("aarch64", "arch", None, "aarch64"),
        ("arm64", "arch", None, "aarch64"),
        ("amd64", "arch", None, "x86_64"),
        ("tegra", "arch", None, "tegra"),
        ("sbsa", "arch", None, "sbsa"),
    ],
)
def test_parse_predicate(text, kind, specifier, word):
    predicate = parse_predicate(text)
    assert (predicate.kind, predicate.word) == (kind, word)
    assert predicate.specifier == (SpecifierSet(specifier) if specifier else None)
    assert str(predicate) == text


def test_negated_arch_predicate():
    predicate = parse_predicate("!=x86_64")
    assert (predicate.kind, predicate.word, predicate.negate) == ("arch", "x86_64", True)


@pytest.mark.parametrize(
    "text",
    ["gpu>=big", ">=r35.*", "fast", ">=cuda126", ">=rr36", "==q36", ">=", "r3x6"],
)
def test_malformed_predicate_is_an_error_listing_valid_forms(text):
    with pytest.raises(RequirementSyntaxError) as caught:
        parse_predicate(text)
    assert f"bad platform predicate '{text}'" in str(caught.value)
    assert "'>=cu126'" in str(caught.value)


# Which predicates hold where: jp5 = L4T 35.4.1 / CUDA 11.4 / Ubuntu 20.04 / Python 3.8,
# jp6 = 36.4.0 / 12.6 / 22.04 / 3.10, jp7 = 38.2.0 / 13.0 / 24.04 / 3.12,
# x86_64-cu128 = 12.8 / 24.04 / 3.12, sbsa-cu130 = 13.0 / 24.04 / 3.12.
HOLDS = {
    #                  jp5    jp6    jp7    x86    sbsa
    ">=r36": (False, True, True, True, True),  # L4T predicates hold off Jetson
    "==r35.*": (True, False, False, True, True),
    "<36.4": (True, False, False, True, True),
    ">=cu126": (False, True, True, True, True),
    "<cu130": (True, True, False, True, False),
    "<cu13": (True, True, False, True, False),
    ">=cu12": (False, True, True, True, True),
    ">=py310": (False, True, True, True, True),
    "<py3.10": (True, False, False, False, False),
    "==ubuntu24.04": (False, False, True, True, True),
    "22.04": (False, True, False, False, False),
    "!=ubuntu22.04": (True, False, True, True, True),
    ">=debian12": (False, False, False, False, False),
    "!=debian12": (True, True, True, True, True),
    "aarch64": (True, True, True, False, True),
    "!=x86_64": (True, True, True, False, True),
    "x86_64": (False, False, False, True, False),
    "tegra": (True, True, True, False, False),
    "sbsa": (False, False, False, False, True),
}


@pytest.mark.parametrize("text", HOLDS)
def test_predicate_holds_on_the_expected_platforms(text, platforms):
    got = tuple(parse_predicate(text).holds(platforms[target]) for target in TARGETS)
    assert got == HOLDS[text]


def test_distro_predicates_compare_on_the_matching_distro(platforms):
    debian = detect_platform({}, target="x86_64-cu128", distro="debian:12")
    assert parse_predicate(">=debian12").holds(debian)
    assert not parse_predicate("==ubuntu24.04").holds(debian)
    assert parse_predicate("!=ubuntu24.04").holds(debian)
    assert not parse_predicate(">=debian13").holds(debian)


@pytest.mark.parametrize(
    ("wanted", "tag", "expected"),
    [
        ("2.6", "2.6", True),
        ("2.6", "2.6.0", True),
        ("2.6", "2.8", False),
        ("humble", "humble", True),
        ("humble", "jazzy", False),
        ("2.6", "", False),
    ],
)
def test_is_version_match(wanted, tag, expected):
    assert is_version_match(wanted, tag) is expected
