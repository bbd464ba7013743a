"""The platform table's values: L4T releases, server defaults, distro Pythons and
``--target`` presets, and :func:`parse_tables`, which makes them of the shipped data file's
plain data (loading it is :mod:`jetforge.host.platform_data`'s). No detection here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from jetforge.errors import PlatformError

TEGRA, SBSA, X86 = "tegra-aarch64", "aarch64-sbsa", "x86_64"
ARCH_OF = {TEGRA: "aarch64", SBSA: "aarch64", X86: "x86_64"}
NO_L4T = Version("0")


@dataclass(frozen=True, slots=True)
class Distro:
    """A distro release such as ``ubuntu:22.04`` or ``debian:12``."""

    name: str
    release: str

    def __str__(self) -> str:
        return f"{self.name}:{self.release}"

    @property
    def tag_part(self) -> str:
        """The distro part of image tags: ``22.04`` for Ubuntu, ``debian12`` otherwise."""
        return self.release if self.name == "ubuntu" else f"{self.name}{self.release}"

    @property
    def version(self) -> Version:
        """The release as a version (``22.04`` compares above ``20.04``)."""
        return Version(self.release)


def parse_distro(text: str) -> Distro:
    """Parse ``ubuntu:22.04``, ``ubuntu22.04``, ``22.04`` (Ubuntu), ``debian:12``, ``debian12``."""
    match = re.fullmatch(r"(?:([a-z]+)[:\-]?)?(\d+(?:\.\d+)*)", text.strip().lower())
    if match is None or (match[1] is None and "." not in match[2]):
        raise PlatformError(
            f"bad distro '{text}' (valid: 'ubuntu:22.04', 'ubuntu22.04', '22.04', 'debian:12')"
        )
    return Distro(match[1] or "ubuntu", match[2])


@dataclass(frozen=True, slots=True)
class Defaults:
    """One row of the tables: an L4T release, or a platform other than Jetson."""

    distro: Distro
    cuda: Version
    base_image: str
    gpu_archs: tuple[tuple[Version, tuple[int, ...]], ...]  # (lowest CUDA, SMs), ascending
    l4t: Version = NO_L4T  # a Jetson release row has its own
    jetpack: Version | None = None

    def gpu_archs_for(self, cuda: Version) -> tuple[int, ...]:
        fitting = [sms for lowest, sms in self.gpu_archs if lowest <= cuda]
        return (fitting or [self.gpu_archs[0][1]])[-1]


def _defaults(row: Mapping[str, Any]) -> Defaults:
    sms = row["gpu_archs"]
    by_cuda = sms.items() if isinstance(sms, Mapping) else [("0", sms)]
    return Defaults(
        parse_distro(row["distro"]),
        Version(row["cuda"]),
        row["base_image"],
        tuple(sorted((Version(cuda), tuple(numbers)) for cuda, numbers in by_cuda)),
        Version(row["l4t"]) if "l4t" in row else NO_L4T,
        Version(row["jetpack"]) if "jetpack" in row else None,
    )


@dataclass(frozen=True, slots=True)
class Facts:
    """What a preset or the host says before overrides; ``model`` names a Jetson module."""

    arch: str
    cuda_arch: str
    l4t: Version | None = None
    cuda: Version | None = None
    model: str = ""
    target: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Tables:
    releases: tuple[Defaults, ...]
    assumed_l4t: tuple[tuple[str, Version], ...]
    servers: Mapping[str, Defaults]
    python: Mapping[Distro, Version]
    targets: Mapping[str, Facts]
    jc_l4t: Version
    jc_jetpack: Version


def parse_tables(raw: Mapping[str, Any]) -> Tables:
    """The tables of the data file's plain data."""
    targets = {
        name: Facts("aarch64", TEGRA, l4t=Version(row["l4t"]), target=name)
        if "l4t" in row
        else Facts(
            ARCH_OF[row["cuda_arch"]], row["cuda_arch"], cuda=Version(row["cuda"]), target=name
        )
        for name, row in raw["targets"].items()
    }
    return Tables(
        tuple(sorted(map(_defaults, raw["l4t"]), key=lambda release: release.l4t)),
        tuple((row["model"], Version(row["l4t"])) for row in raw["assumed_l4t"]),
        {name: _defaults(row) for name, row in raw["servers"].items()},
        {parse_distro(name): Version(python) for name, python in raw["python"].items()},
        targets,
        Version(raw["jetson_containers"]["l4t"]),
        Version(raw["jetson_containers"]["jetpack"]),
    )
