"""Image references and the names jetforge gives images (docs/builds.md, "Stages, names
and arguments")."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetforge.core.spec import PackageSpec
from jetforge.core.tags import ImageRef, final_image, parse_image_ref, stage_image
from jetforge.host.platform import detect_platform


def spec(name: str, **keys: str) -> PackageSpec:
    return PackageSpec(name, Path("p"), Path("p/Dockerfile"), **keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest", "registry", "path", "name"),
    [
        ("ubuntu", "ubuntu", "", "", "", "ubuntu", "ubuntu"),
        ("ubuntu:22.04", "ubuntu", "22.04", "", "", "ubuntu", "ubuntu"),
        (
            "nvcr.io/nvidia/l4t-jetpack:r35.4.1",
            "nvcr.io/nvidia/l4t-jetpack",
            "r35.4.1",
            "",
            "nvcr.io",
            "nvidia/l4t-jetpack",
            "l4t-jetpack",
        ),
        (
            "127.0.0.1:5000/ns/pytorch",
            "127.0.0.1:5000/ns/pytorch",
            "",
            "",
            "127.0.0.1:5000",
            "ns/pytorch",
            "pytorch",
        ),
        (
            "localhost/ns/app:1@sha256:abc",
            "localhost/ns/app",
            "1",
            "sha256:abc",
            "localhost",
            "ns/app",
            "app",
        ),
        ("dustynv/ros:humble", "dustynv/ros", "humble", "", "", "dustynv/ros", "ros"),
    ],
)
def test_parse_image_ref(text, repository, tag, digest, registry, path, name):
    ref = parse_image_ref(text)
    assert ref == ImageRef(repository, tag, digest)
    assert (ref.registry, ref.path, ref.name) == (registry, path, name)
    assert str(ref) == text


def test_with_tag_drops_the_digest():
    ref = parse_image_ref("localhost/app:1@sha256:abc").with_tag("2")
    assert str(ref) == "localhost/app:2"


POSTFIX = {
    "jp5": "r35.4.1-cu114-20.04",
    "jp6": "r36.4.0-cu126-22.04",
    "jp6.2": "r36.4.3-cu126-22.04",
    "jp7": "r38.2.0-cu130-24.04",
    "x86_64-cu128": "x86_64-cu128-24.04",
    "sbsa-cu130": "sbsa-cu130-24.04",
}


@pytest.mark.parametrize("target", POSTFIX)
def test_final_image_tag_per_target(target):
    platform = detect_platform({}, target=target)
    postfix = POSTFIX[target]
    assert str(final_image(spec("numpy"), platform)) == f"numpy:{postfix}"
    assert str(final_image(spec("pytorch:2.8"), platform)) == f"pytorch:2.8-{postfix}"


def test_debian_distro_part():
    platform = detect_platform({}, target="x86_64-cu128", distro="debian:12")
    assert str(final_image(spec("numpy"), platform)) == "numpy:x86_64-cu128-debian12"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, "pytorch:2.8-r36.4.0-cu126-22.04"),
        ("mytorch", "mytorch:2.8-r36.4.0-cu126-22.04"),
        ("team/", "team/pytorch:2.8-r36.4.0-cu126-22.04"),
        ("127.0.0.1:5000/team/", "127.0.0.1:5000/team/pytorch:2.8-r36.4.0-cu126-22.04"),
        ("127.0.0.1:5000/team/img", "127.0.0.1:5000/team/img:2.8-r36.4.0-cu126-22.04"),
        ("mytorch:latest", "mytorch:latest"),
        ("127.0.0.1:5000/team/img:v1", "127.0.0.1:5000/team/img:v1"),
    ],
)
def test_final_image_name_option(name, expected):
    platform = detect_platform({}, target="jp6")
    assert str(final_image(spec("pytorch:2.8"), platform, name)) == expected


def test_prefix_and_postfix_join_the_tag():
    platform = detect_platform({}, target="x86_64-cu128")
    last = spec("ros:humble", prefix="desktop", postfix="full")
    assert str(final_image(last, platform)) == "ros:desktop-humble-x86_64-cu128-24.04-full"


@pytest.mark.parametrize(
    ("final", "variant", "expected"),
    [
        ("pytorch:2.8-r36.4.0-cu126-22.04", "numpy", "pytorch:2.8-r36.4.0-cu126-22.04-numpy"),
        (
            "pytorch:2.8-r36.4.0-cu126-22.04",
            "ros:humble",
            "pytorch:2.8-r36.4.0-cu126-22.04-ros_humble",
        ),
        ("team/app", "cmake", "team/app:cmake"),
    ],
)
def test_stage_image(final, variant, expected):
    assert str(stage_image(parse_image_ref(final), variant)) == expected
