"""The platform value (docs/platforms.md): what a build targets, and how it is derived from
raw facts (a host's, or a ``--target`` preset's), the overrides of an environment mapping
and the platform table. Pure: looking at the host is :mod:`jetforge.host.platform`'s.
Derivation never fails on an unknown machine; it falls back to documented defaults with a
warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

from packaging.version import Version

from jetforge.core.platform_table import (
    ARCH_OF,
    SBSA,
    TEGRA,
    X86,
    Defaults,
    Distro,
    Facts,
    Tables,
    parse_distro,
)
from jetforge.errors import PlatformError

__all__ = [
    "SBSA",
    "TEGRA",
    "X86",
    "Distro",
    "Facts",
    "Platform",
    "derive_platform",
    "parse_cuda_version",
    "parse_distro",
    "parse_overrides",
    "parse_tegra_release",
    "preset_facts",
]

ARCH_NAMES = {"aarch64": "aarch64", "arm64": "aarch64", "x86_64": "x86_64", "amd64": "x86_64"}
_CUDAARCH_NAMES = {TEGRA: TEGRA, "tegra": TEGRA, SBSA: SBSA, "sbsa": SBSA, X86: X86, "amd64": X86}
HOST_CUDA_ARCH = {"aarch64": SBSA, "x86_64": X86}
_TAG_HEAD = {SBSA: "sbsa", X86: "x86_64"}
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Platform:
    """The build target: architecture, L4T/JetPack, CUDA, Python, distro, GPU architectures.

    ``overridden`` names the fields set by environment variables or flags; ``warnings``
    holds lines the CLI shows once (e.g. an L4T release missing from the table).
    """

    arch: str
    cuda_arch: str
    l4t_version: Version | None
    jetpack_version: Version | None
    cuda_version: Version
    python_version: Version
    distro: Distro
    gpu_archs: tuple[int, ...]
    base_image: str
    target: str | None = None
    overridden: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def is_jetson(self) -> bool:
        """Whether this is a Jetson (L4T) platform."""
        return self.cuda_arch == TEGRA

    @property
    def cuda_tag(self) -> str:
        """``cu126`` for CUDA 12.6."""
        return f"cu{self.cuda_version.major}{self.cuda_version.minor}"

    @property
    def tag_postfix(self) -> str:
        """``r36.4.0-cu126-22.04`` on Jetson, ``x86_64-cu128-24.04``, ``sbsa-cu130-24.04``."""
        if self.is_jetson and self.l4t_version is not None:
            head = f"r{self.l4t_version}"
        else:
            head = _TAG_HEAD.get(self.cuda_arch, self.arch)
        return f"{head}-{self.cuda_tag}-{self.distro.tag_part}"

    @property
    def label(self) -> str:
        """``l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64`` (no l4t part off Jetson)."""
        parts = [] if self.l4t_version is None else [f"l4t-{self.l4t_version}"]
        parts += [f"cuda-{self.cuda_version}", f"{self.distro.name}-{self.distro.release}"]
        return " ".join((*parts, self.cuda_arch))

    def build_args(self) -> tuple[tuple[str, str], ...]:
        """The standard build arguments of every stage, in a fixed order."""
        jetson = (
            (("L4T_VERSION", str(self.l4t_version)), ("JETPACK_VERSION", str(self.jetpack_version)))
            if self.is_jetson
            else ()
        )
        return (
            ("SYSTEM_ARCH", self.arch),
            ("CUDA_ARCH", self.cuda_arch),
            *jetson,
            ("CUDA_VERSION", str(self.cuda_version)),
            ("CUDA_ARCHITECTURES", ";".join(map(str, self.gpu_archs))),
            ("PYTHON_VERSION", str(self.python_version)),
            ("LSB_RELEASE", self.distro.release),
            ("DISTRO", str(self.distro)),
        )

    def to_json(self) -> dict[str, object]:
        """Every field as JSON-ready data, plus ``tag_postfix`` and ``label``."""

        def plain(value: object) -> object:
            if isinstance(value, tuple):
                return [plain(item) for item in value]
            return value if value is None or isinstance(value, (str, int)) else str(value)

        data = {field.name: plain(getattr(self, field.name)) for field in fields(self)}
        return {**data, "tag_postfix": self.tag_postfix, "label": self.label}


# --- pure parsing -------------------------------------------------------------------------


def _major_minor(text: str) -> Version | None:
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.\d+)*", text)
    return None if match is None else Version(f"{int(match[1])}.{int(match[2] or 0)}")


def parse_cuda_version(text: str) -> Version | None:
    """``12.6``, ``12.6.77``, ``cu126``, ``cu12.6``, ``126`` → ``12.6``, ``13`` → ``13.0``;
    None for junk and for releases CUDA never had (``99``, ``1.0``)."""
    value = text.strip().lower().removeprefix("cu")
    if value.isdigit() and len(value) in (3, 4):
        value = f"{value[:-1]}.{value[-1]}" if len(value) == 3 else f"{value[:2]}.{value[2:]}"
    version = _major_minor(value)
    return version if version is not None and 7 <= version.major <= 20 else None


def _parse_python(text: str) -> Version | None:
    value = text.strip().lower().removeprefix("python").removeprefix("py")
    if value.isdigit() and len(value) in (2, 3):
        value = f"{value[0]}.{value[1:]}"
    version = _major_minor(value) if "." in value else None
    return version if version is not None and version.major == 3 else None


def _parse_l4t(text: str) -> Version | None:
    match = re.fullmatch(r"r?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip().lower())
    return None if match is None else Version(f"{match[1]}.{match[2] or 0}.{match[3] or 0}")


def _parse_jetpack(text: str) -> Version | None:
    match = re.fullmatch(r"(?:jp)?(\d+(?:\.\d+)*)", text.strip().lower())
    return None if match is None else Version(match[1])


def _parse_gpu_archs(text: str) -> tuple[int, ...] | None:
    items = [item for item in re.split(r"[;,\s]+", text.strip().lower()) if item]
    found = [re.fullmatch(r"(?:sm_)?(\d+)(?:\.(\d))?", item) for item in items]
    if not found or None in found:
        return None
    return tuple(sorted({int(m[1]) * 10 + int(m[2]) if m[2] else int(m[1]) for m in found if m}))


def _parse_distro_or_none(text: str) -> Distro | None:
    try:
        return parse_distro(text)
    except PlatformError:
        return None


def parse_tegra_release(text: str) -> Version | None:
    """The L4T release of ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3``)."""
    first = text.splitlines()[0] if text else ""
    match = re.search(r"R(\d+)\s*\(\w+\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", first)
    return None if match is None else Version(f"{match[1]}.{match[2]}.{match[3] or 0}")


@dataclass(frozen=True, slots=True)
class Overrides:
    """Values from the environment and flags; field names match :class:`Platform`'s."""

    arch: str | None = None
    cuda_arch: str | None = None
    l4t_version: Version | None = None
    jetpack_version: Version | None = None
    cuda_version: Version | None = None
    python_version: Version | None = None
    distro: Distro | None = None
    gpu_archs: tuple[int, ...] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(f.name for f in fields(self) if getattr(self, f.name) is not None))


def parse_overrides(env: Mapping[str, str], distro: str | None) -> Overrides:
    """The overrides of docs/platforms.md in ``env``, and the ``--distro`` flag ``distro``;
    one that cannot be parsed raises :class:`PlatformError` naming the variable."""

    def read(variable: str, parse: Callable[[str], _T | None], valid: str) -> _T | None:
        text = env.get(variable, "").strip()
        value = parse(text) if text else None
        if text and value is None:
            raise PlatformError(f"{variable}: '{text}' is not valid (valid: {valid})")
        return value

    return Overrides(
        arch=read("SYSTEM_ARCH", lambda text: ARCH_NAMES.get(text.lower()), "aarch64, x86_64"),
        cuda_arch=read(
            "CUDA_ARCH", lambda text: _CUDAARCH_NAMES.get(text.lower()), ", ".join(ARCH_OF)
        ),
        l4t_version=read("L4T_VERSION", _parse_l4t, "'36.4.3', 'r36.4.3'"),
        jetpack_version=read("JETPACK_VERSION", _parse_jetpack, "'6.2', '5.1.2'"),
        cuda_version=read(
            "CUDA_VERSION", parse_cuda_version, "a CUDA release such as '12.6', '12.6.77', 'cu126'"
        ),
        python_version=read(
            "PYTHON_VERSION", _parse_python, "a Python 3 release such as '3.10', 'py310'"
        ),
        distro=parse_distro(distro)
        if distro
        else read("LSB_RELEASE", _parse_distro_or_none, "'22.04', 'ubuntu:22.04', 'debian:12'"),
        gpu_archs=read("CUDA_ARCHITECTURES", _parse_gpu_archs, "'87', '87;110', '8.7', '75,80'"),
    )


# --- derivation (pure) --------------------------------------------------------------------


def resolve_arch(facts: Facts, wanted: Overrides) -> tuple[str, str]:
    """``(arch, cuda_arch)``: explicit values win; an L4T release implies a Jetson."""
    if wanted.cuda_arch is not None:
        cuda_arch = wanted.cuda_arch
    elif wanted.l4t_version is not None and facts.target is None and wanted.arch != "x86_64":
        cuda_arch = TEGRA
    elif wanted.arch is not None and wanted.arch != ARCH_OF[facts.cuda_arch]:
        cuda_arch = HOST_CUDA_ARCH[wanted.arch]
    else:
        cuda_arch = facts.cuda_arch
    implied = ARCH_OF[cuda_arch]
    arch = wanted.arch or (facts.arch if cuda_arch == facts.cuda_arch else implied)
    if wanted.arch is not None and arch != implied:
        raise PlatformError(f"SYSTEM_ARCH={arch} does not fit CUDA_ARCH={cuda_arch}")
    return arch, cuda_arch


def _release_for(tables: Tables, l4t: Version, warnings: list[str]) -> Defaults:
    """The row of ``l4t``, else of the nearest lower release (same major first), warned."""
    for release in tables.releases:
        if release.l4t == l4t:
            return release
    lower = [release for release in tables.releases if release.l4t < l4t]
    same_major = [release for release in lower if release.l4t.major == l4t.major]
    chosen = (same_major or lower or [tables.releases[0]])[-1]
    warnings.append(f"L4T {l4t} is not in the platform table; using the defaults of {chosen.l4t}")
    return chosen


def _assume_l4t(tables: Tables, model: str, warnings: list[str]) -> Version:
    l4t = next(version for word, version in tables.assumed_l4t if word in model.lower())
    warnings.append(
        f"cannot read the L4T release of {model or 'this Jetson'}; "
        f"assuming L4T {l4t} (set L4T_VERSION to choose)"
    )
    return l4t


def _python_for(tables: Tables, distro: Distro, fallback: Distro, warnings: list[str]) -> Version:
    if distro in tables.python:
        return tables.python[distro]
    same = sorted(
        (known.version, python)
        for known, python in tables.python.items()
        if known.name == distro.name and known.version < distro.version
    )
    python = same[-1][1] if same else tables.python[fallback]
    warnings.append(
        f"no default Python known for {distro}; using {python} (set PYTHON_VERSION to choose)"
    )
    return python


def derive_platform(facts: Facts, wanted: Overrides, tables: Tables) -> Platform:
    """The platform of raw ``facts`` with the overrides ``wanted``, by the platform table."""
    warnings = list(facts.warnings)
    arch, cuda_arch = resolve_arch(facts, wanted)
    l4t = jetpack = None
    if cuda_arch == TEGRA:
        l4t = wanted.l4t_version or facts.l4t or _assume_l4t(tables, facts.model, warnings)
        defaults = _release_for(tables, l4t, warnings)
        jetpack = wanted.jetpack_version or defaults.jetpack
    else:
        for variable, value in (
            ("L4T_VERSION", wanted.l4t_version),
            ("JETPACK_VERSION", wanted.jetpack_version),
        ):
            if value is not None:
                raise PlatformError(f"{variable} applies to Jetson ({TEGRA}) only, not {cuda_arch}")
        defaults = tables.servers[cuda_arch]
    cuda = wanted.cuda_version or facts.cuda or defaults.cuda
    distro = wanted.distro or defaults.distro
    base_image = defaults.base_image if wanted.distro is None else str(wanted.distro)
    python = wanted.python_version or _python_for(tables, distro, defaults.distro, warnings)
    return Platform(
        arch=arch,
        cuda_arch=cuda_arch,
        l4t_version=l4t,
        jetpack_version=jetpack,
        cuda_version=cuda,
        python_version=python,
        distro=distro,
        gpu_archs=wanted.gpu_archs or defaults.gpu_archs_for(cuda),
        base_image=base_image,
        target=facts.target,
        overridden=wanted.names,
        warnings=tuple(warnings),
    )


def preset_facts(tables: Tables, target: str) -> Facts:
    """The facts of the ``--target`` preset ``target``; an unknown one is a
    :class:`PlatformError` with the closest name and every valid one."""
    targets = tables.targets
    if target not in targets:
        import difflib  # here, not at the top: only a typo needs it

        close = difflib.get_close_matches(target, targets, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise PlatformError(f"unknown target '{target}' ({hint}valid: {', '.join(targets)})")
    return targets[target]
