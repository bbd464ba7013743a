"""autotag's pure core: tag postfixes, platform labels, compatibility and ranking."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from packaging.version import Version

from jetforge.core.tags import parse_image_ref
from jetforge.host.platform import detect_platform
from jetforge.ops.autotag import (
    LOCAL,
    Candidate,
    ImagePlatform,
    Wanted,
    candidate_from_labels,
    candidate_from_tag,
    check_compatibility,
    choose,
    parse_platform_label,
    parse_tag_postfix,
    parse_time,
    preferred_tag,
)

TEGRA, SBSA, X86 = "tegra-aarch64", "aarch64-sbsa", "x86_64"


def host(target: str, **env: str):
    return detect_platform(env, target=target)


# tag → (prefix, cuda_arch, l4t, cuda, distro)
TAGS = {
    "r36.4.0": ("", TEGRA, "36.4.0", None, ""),
    "r35.4.1": ("", TEGRA, "35.4.1", None, ""),
    "r32.7.1": ("", TEGRA, "32.7.1", None, ""),
    "r36.4.tegra-aarch64-cu126-22.04": ("", TEGRA, "36.4", "12.6", "ubuntu-22.04"),
    "2.8-r36.4.tegra-aarch64-cu126-22.04": ("2.8", TEGRA, "36.4", "12.6", "ubuntu-22.04"),
    "amd64.x86_64-cu128-24.04": ("", X86, None, "12.8", "ubuntu-24.04"),
    "r36.4.0-cu126-22.04": ("", TEGRA, "36.4.0", "12.6", "ubuntu-22.04"),
    "x86_64-cu128-24.04": ("", X86, None, "12.8", "ubuntu-24.04"),
    "sbsa-cu130-24.04": ("", SBSA, None, "13.0", "ubuntu-24.04"),
    "2.8-r36.4.0-cu126-22.04": ("2.8", TEGRA, "36.4.0", "12.6", "ubuntu-22.04"),
    "2.8-x86_64-cu128-24.04": ("2.8", X86, None, "12.8", "ubuntu-24.04"),
    "2.8-sbsa-cu130-24.04": ("2.8", SBSA, None, "13.0", "ubuntu-24.04"),
    "1.2.3-r35.4.1": ("1.2.3", TEGRA, "35.4.1", None, ""),
    "r36.4.0-cu126-debian12": ("", TEGRA, "36.4.0", "12.6", "debian-12"),
    "x86_64-cu130-debian12": ("", X86, None, "13.0", "debian-12"),
    "r38.2.0-cu130-24.04": ("", TEGRA, "38.2.0", "13.0", "ubuntu-24.04"),
}


@pytest.mark.parametrize(("tag", "expected"), TAGS.items(), ids=list(TAGS))
def test_tag_postfix_names_the_platform(tag, expected):
    prefix, cuda_arch, l4t, cuda, distro = expected
    parsed = parse_tag_postfix(tag)
    assert parsed is not None
    assert parsed.prefix == prefix
    assert parsed.platform == ImagePlatform(
        cuda_arch,
        None if l4t is None else Version(l4t),
        None if cuda is None else Version(cuda),
        distro,
    )


@pytest.mark.parametrize(
    "tag",
    ["latest", "2.8", "", "cu126", "r36.4.0-cu126-22.04-fa", "x86_64-cu128-24.04-builder", "v1"],
)
def test_tags_without_a_platform_postfix_are_not_matched(tag):
    assert parse_tag_postfix(tag) is None


LABELS = {
    "l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64": ImagePlatform(
        TEGRA, Version("36.4.0"), Version("12.6"), "ubuntu-22.04"
    ),
    "cuda-12.8 ubuntu-24.04 x86_64": ImagePlatform(X86, None, Version("12.8"), "ubuntu-24.04"),
    "cuda-13.0 debian-12 aarch64-sbsa": ImagePlatform(SBSA, None, Version("13.0"), "debian-12"),
}


@pytest.mark.parametrize(("text", "expected"), LABELS.items(), ids=list(LABELS))
def test_platform_label_is_parsed_and_rendered_back(text, expected):
    assert parse_platform_label(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["", "cuda-12.6", "l4t-x cuda-12.6 tegra-aarch64", "riscv64"])
def test_bad_platform_labels_give_none(text):
    assert parse_platform_label(text) is None


# (image platform label, host target, host env overrides) → None (compatible) or a reason part
MATRIX = [
    # Jetson: same L4T major, image not newer than the host.
    ("l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", "jp6", {}, None),
    ("l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", "jp6.2", {}, None),
    ("l4t-36.2.0 cuda-12.2 ubuntu-22.04 tegra-aarch64", "jp6", {}, None),
    ("l4t-36.4.3 cuda-12.6 ubuntu-22.04 tegra-aarch64", "jp6", {}, "newer than"),
    ("l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", "jp6", {"L4T_VERSION": "36.3.0"}, "newer"),
    ("l4t-35.4.1 cuda-11.4 ubuntu-20.04 tegra-aarch64", "jp6", {}, "not L4T 36.x"),
    ("l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", "jp5", {}, "not L4T 35.x"),
    ("l4t-35.4.1 cuda-11.4 ubuntu-20.04 tegra-aarch64", "jp5", {}, None),
    ("l4t-38.2.0 cuda-13.0 ubuntu-24.04 tegra-aarch64", "jp6", {}, "not L4T 36.x"),
    # Jetson CUDA: same major, not newer.
    ("l4t-36.4.0 cuda-12.8 ubuntu-22.04 tegra-aarch64", "jp6", {}, "CUDA 12.8 is newer"),
    ("l4t-36.4.0 cuda-12.2 ubuntu-22.04 tegra-aarch64", "jp6", {}, None),
    ("l4t-36.4.0 cuda-12.8 ubuntu-22.04 tegra-aarch64", "jp6", {"CUDA_VERSION": "12.8"}, None),
    # Architecture.
    ("cuda-12.6 ubuntu-22.04 x86_64", "jp6", {}, "built for x86_64"),
    ("cuda-13.0 ubuntu-24.04 aarch64-sbsa", "jp7", {}, "built for aarch64-sbsa"),
    ("l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", "x86_64-cu128", {}, "tegra-aarch64"),
    ("cuda-12.8 ubuntu-24.04 x86_64", "sbsa-cu130", {}, "built for x86_64"),
    # Servers: CUDA major equal, image not newer.
    ("cuda-12.8 ubuntu-24.04 x86_64", "x86_64-cu128", {}, None),
    ("cuda-12.6 ubuntu-22.04 x86_64", "x86_64-cu128", {}, None),
    ("cuda-12.8 ubuntu-24.04 x86_64", "x86_64-cu126", {}, "CUDA 12.8 is newer"),
    ("cuda-12.8 ubuntu-24.04 x86_64", "x86_64-cu130", {}, "not CUDA 13.x"),
    ("cuda-13.0 ubuntu-24.04 x86_64", "x86_64-cu128", {}, "not CUDA 12.x"),
    ("cuda-13.0 ubuntu-24.04 aarch64-sbsa", "sbsa-cu130", {}, None),
    ("cuda-12.8 ubuntu-24.04 aarch64-sbsa", "sbsa-cu130", {}, "not CUDA 13.x"),
    # The distro does not decide.
    ("cuda-12.8 debian-12 x86_64", "x86_64-cu128", {}, None),
]


@pytest.mark.parametrize(
    ("label", "target", "env", "expected"),
    MATRIX,
    ids=[f"{label}@{target}{''.join(env.values())}" for label, target, env, _ in MATRIX],
)
def test_compatibility_matrix(label, target, env, expected):
    image = parse_platform_label(label)
    assert image is not None
    reason = check_compatibility(image, host(target, **env))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


# (tag, host target) → compatible; tags without a CUDA part are judged by L4T alone.
TAG_MATRIX = [
    ("r36.4.0", "jp6", True),
    ("r36.4.0", "jp6.2", True),
    ("r36.4.0", "jp5", False),
    ("r35.4.1", "jp5", True),
    ("r35.4.1", "jp6", False),
    ("r36.4.tegra-aarch64-cu126-22.04", "jp6", True),
    ("amd64.x86_64-cu128-24.04", "x86_64-cu128", True),
    ("amd64.x86_64-cu128-24.04", "x86_64-cu126", False),
    ("amd64.x86_64-cu128-24.04", "jp6", False),
    ("sbsa-cu130-24.04", "sbsa-cu130", True),
    ("sbsa-cu130-24.04", "x86_64-cu130", False),
]


@pytest.mark.parametrize(("tag", "target", "compatible"), TAG_MATRIX)
def test_tag_compatibility(tag, target, compatible):
    parsed = parse_tag_postfix(tag)
    assert parsed is not None
    assert (check_compatibility(parsed.platform, host(target)) is None) is compatible


@pytest.mark.parametrize(
    ("wanted", "chain", "expected"),
    [
        ("pytorch", "cuda,python,pytorch:2.8", True),
        ("pytorch", "cuda,python,pytorch:2.6", True),
        ("pytorch:2.8", "cuda,python,pytorch:2.8", True),
        ("pytorch:2.8", "cuda,python,pytorch:2.6", False),
        ("torch", "cuda,python,pytorch:2.8", False),
        ("python", "cuda,python,pytorch:2.8", True),
        ("pytorch", "", False),
    ],
)
def test_wanted_package_in_chain(wanted, chain, expected):
    assert Wanted(wanted).is_in_chain(chain.split(",")) is expected


def test_candidate_from_labels_reads_chain_platform_and_created():
    found = candidate_from_labels(
        "img:tag",
        {
            "jetforge.chain": "fa,fb",
            "jetforge.package": "fb",
            "jetforge.platform": "cuda-12.8 ubuntu-24.04 x86_64",
            "org.opencontainers.image.created": "2025-03-01T10:00:00Z",
        },
        "2020-01-01T00:00:00Z",
        LOCAL,
        Wanted("fa"),
    )
    assert found == Candidate(
        "img:tag",
        LOCAL,
        ImagePlatform(X86, None, Version("12.8"), "ubuntu-24.04"),
        datetime(2025, 3, 1, 10, tzinfo=timezone.utc),
        "fb",
        ("fa", "fb"),
    )
    labels = {"jetforge.chain": "fa,fb", "jetforge.platform": "cuda-12.8 ubuntu-24.04 x86_64"}
    assert candidate_from_labels("x", labels, "", LOCAL, Wanted("fc")) is None


@pytest.mark.parametrize(
    ("reference", "wanted", "matches"),
    [
        ("pytorch:r36.4.0", "pytorch", True),
        ("dustynv/pytorch:2.8-r36.4.tegra-aarch64-cu126-22.04", "pytorch", True),
        ("dustynv/pytorch:2.8-r36.4.tegra-aarch64-cu126-22.04", "pytorch:2.8", True),
        ("dustynv/pytorch:2.6-r36.4.tegra-aarch64-cu126-22.04", "pytorch:2.8", False),
        ("dustynv/pytorch:r36.4.0", "pytorch:2.8", False),
        ("dustynv/torchvision:r36.4.0", "pytorch", False),
        ("127.0.0.1:5000/team/pytorch:x86_64-cu128-24.04", "pytorch", True),
        ("pytorch:latest", "pytorch", False),
    ],
)
def test_images_without_labels_match_by_name_and_tag(reference, wanted, matches):
    found = candidate_from_tag(parse_image_ref(reference), "", LOCAL, Wanted(wanted))
    assert (found is not None) is matches


def at(day: int) -> datetime:
    return datetime(2025, 1, day, tzinfo=timezone.utc)


def candidate(reference, label, day, package="fb", chain=("fa", "fb")):
    platform = parse_platform_label(label)
    assert platform is not None
    return Candidate(reference, LOCAL, platform, at(day), package, chain)


def test_newest_platform_wins_over_newest_build():
    older_l4t_newer_build = candidate("a", "l4t-36.2.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", 9)
    newest_l4t = candidate("b", "l4t-36.4.0 cuda-12.2 ubuntu-22.04 tegra-aarch64", 1)
    newer_cuda = candidate("c", "l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64", 1)
    too_new = candidate("d", "l4t-36.4.3 cuda-12.6 ubuntu-22.04 tegra-aarch64", 9)
    choice = choose(
        [older_l4t_newer_build, newest_l4t, newer_cuda, too_new], host("jp6"), Wanted("fb")
    )
    assert choice.chosen == newer_cuda
    assert [c.reference for c in choice.compatible] == ["c", "b", "a"]
    assert [r.reference for r in choice.rejected] == ["d"]


def test_same_platform_newest_build_wins_then_exact_package_then_short_chain():
    label = "cuda-12.8 ubuntu-24.04 x86_64"
    old = candidate("old", label, 1)
    new = candidate("new", label, 2)
    assert choose([old, new], host("x86_64-cu128"), Wanted("fb")).chosen == new
    longer = candidate("longer", label, 2, package="fc", chain=("fa", "fb", "fc"))
    assert choose([longer, new], host("x86_64-cu128"), Wanted("fb")).chosen == new
    stage = candidate("stage", label, 2, package="fa", chain=("fa",))
    assert choose([longer, stage], host("x86_64-cu128"), Wanted("fa")).chosen == stage


def test_nothing_compatible_chooses_nothing():
    choice = choose([candidate("x", "cuda-12.8 ubuntu-24.04 x86_64", 1)], host("jp6"), Wanted("fb"))
    assert choice.chosen is None
    assert choice.rejected[0].reason == "built for x86_64, not tegra-aarch64"


def test_preferred_tag_is_in_the_package_repository_and_shortest():
    tags = ["ns/fd:r36.4.0-cu126-22.04-fb", "fb:r36.4.0-cu126-22.04-fb", "fb:r36.4.0-cu126-22.04"]
    assert preferred_tag(tags, Wanted("fb")) == "fb:r36.4.0-cu126-22.04"
    assert preferred_tag(["ns/fd:x-fb"], Wanted("fb")) == "ns/fd:x-fb"
    assert preferred_tag([], Wanted("fb")) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        (
            "2025-01-02T03:04:05.123456789Z",
            datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        ),
        ("2025-01-02T05:04:05+02:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("junk", datetime.min.replace(tzinfo=timezone.utc)),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected
