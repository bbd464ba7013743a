"""The platform value (SPEC section 4): what a build targets, detected once per command.

Facts (L4T → JetPack → CUDA → distro → GPU architectures) live in
``data/platforms.yaml``; this module only reads them. Detection reads a host root that
tests point at fixture directories, takes the environment as a mapping, and never
crashes on an unknown machine.
"""

from __future__ import annotations

import json
import platform as host
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from jetforge._process import Runner, run
from jetforge.errors import PlatformError

CUDA_ARCHS = ("tegra-aarch64", "aarch64-sbsa", "x86_64")
_ARCH_NAMES = {"arm64": "aarch64", "aarch64": "aarch64", "amd64": "x86_64", "x86_64": "x86_64"}


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
        """The release as a version."""
        return Version(self.release)


def parse_distro(text: str) -> Distro:
    """``ubuntu:22.04``, ``ubuntu22.04``, ``22.04`` (Ubuntu), ``debian:12``, ``debian12``."""
    match = re.fullmatch(r"(?:([a-z]+):?)?(\d+(?:\.\d+)?)", text.strip().lower())
    if match is None:
        raise PlatformError(f"bad distro '{text}' (valid: ubuntu:22.04, ubuntu:24.04, debian:12)")
    return Distro(match[1] or "ubuntu", match[2])


@dataclass(frozen=True, slots=True)
class Platform:
    """The build target: architecture, L4T/JetPack, CUDA, Python, distro, GPU archs."""

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
        return self.cuda_arch == "tegra-aarch64"

    @property
    def cuda_tag(self) -> str:
        """``cu126`` for CUDA 12.6."""
        return f"cu{self.cuda_version.major}{self.cuda_version.minor}"

    @property
    def tag_postfix(self) -> str:
        """``r36.4.0-cu126-22.04`` on Jetson, ``x86_64-cu128-24.04``, ``sbsa-cu130-24.04``."""
        if self.is_jetson:
            first = f"r{self.l4t_version}"
        else:
            first = "sbsa" if self.cuda_arch == "aarch64-sbsa" else self.arch
        return f"{first}-{self.cuda_tag}-{self.distro.tag_part}"

    @property
    def label(self) -> str:
        """``l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64`` (no l4t part off Jetson)."""
        parts = [f"l4t-{self.l4t_version}"] if self.l4t_version else []
        parts += [f"cuda-{self.cuda_version}", f"{self.distro.name}-{self.distro.release}"]
        return " ".join([*parts, self.cuda_arch])

    def build_args(self) -> tuple[tuple[str, str], ...]:
        """The standard build arguments every stage receives, in a fixed order."""
        args = [("SYSTEM_ARCH", self.arch), ("CUDA_ARCH", self.cuda_arch)]
        if self.is_jetson:
            args += [("L4T_VERSION", str(self.l4t_version))]
            args += [("JETPACK_VERSION", str(self.jetpack_version))]
        return (
            *args,
            ("CUDA_VERSION", str(self.cuda_version)),
            ("CUDA_ARCHITECTURES", ";".join(map(str, self.gpu_archs))),
            ("PYTHON_VERSION", str(self.python_version)),
            ("LSB_RELEASE", self.distro.release),
            ("DISTRO", str(self.distro)),
        )

    def to_json(self) -> dict[str, object]:
        """Every field as JSON-ready data, plus the tag postfix and the label."""
        return {
            "arch": self.arch,
            "cuda_arch": self.cuda_arch,
            "l4t_version": str(self.l4t_version) if self.l4t_version else None,
            "jetpack_version": str(self.jetpack_version) if self.jetpack_version else None,
            "cuda_version": str(self.cuda_version),
            "python_version": str(self.python_version),
            "distro": str(self.distro),
            "gpu_archs": list(self.gpu_archs),
            "base_image": self.base_image,
            "target": self.target,
            "tag_postfix": self.tag_postfix,
            "label": self.label,
            "overridden": list(self.overridden),
            "warnings": list(self.warnings),
        }


@cache
def _table() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (Path(__file__).parent / "data" / "platforms.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    return data


def target_names() -> tuple[str, ...]:
    """The ``--target`` preset names, in data-file order."""
    return tuple(_table()["targets"])


def _version(text: str, what: str, valid: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PlatformError(f"{what}: '{text}' is not a version (valid: {valid})") from None


def parse_cuda_version(text: str, what: str = "CUDA_VERSION") -> Version:
    """``12.6``, ``12.6.77``, ``cu126`` or ``cu12.6`` → ``12.6``."""
    value = text.strip().lower().removeprefix("cu")
    if value.isdigit() and len(value) >= 3:
        value = f"{value[:-1]}.{value[-1]}"
    version = _version(value, what, "12.6 or cu126")
    return Version(f"{version.major}.{version.minor}")


def _l4t_row(version: Version) -> tuple[Version, dict[str, Any], str]:
    """The table row for an L4T release: exact, else the nearest lower one (one warning)."""
    rows = {Version(key): value for key, value in _table()["l4t"].items()}
    if version in rows:
        return version, rows[version], ""
    known = sorted(rows)
    same_major = [v for v in known if v.major == version.major and v < version]
    lower = [v for v in known if v < version]
    chosen = (same_major or lower or known[:1])[-1]
    warning = f"L4T {version} is not in the platform table; using the defaults of L4T {chosen}"
    return chosen, rows[chosen], warning


def read_l4t_release(root: Path) -> Version | None:
    """The L4T release from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3``)."""
    try:
        first = (root / "etc" / "nv_tegra_release").read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", first)
    if match is None:
        return None
    return Version(f"{match[1]}.{match[2]}.{match[3] or 0}")


def _is_jetson_host(root: Path) -> bool:
    if (root / "etc" / "nv_tegra_release").exists():
        return True
    try:
        model = (root / "proc" / "device-tree" / "model").read_text(errors="replace")
    except OSError:
        return False
    return "jetson" in model.lower() or "tegra" in model.lower()


def detect_host_cuda(root: Path, runner: Runner) -> Version | None:
    """CUDA from ``/usr/local/cuda/version.json``, else ``nvcc``, else ``nvidia-smi``."""
    try:
        data = json.loads((root / "usr" / "local" / "cuda" / "version.json").read_text())
        return parse_cuda_version(str(data["cuda"]["version"]))
    except (OSError, ValueError, KeyError, TypeError, PlatformError):
        pass
    probes = (
        (["nvcc", "--version"], r"release (\d+\.\d+)"),
        (["nvidia-smi"], r"CUDA Version:\s*(\d+\.\d+)"),
    )
    for argv, pattern in probes:
        done = runner(argv, timeout=10)
        match = re.search(pattern, done.stdout) if done.returncode == 0 else None
        if match:
            return Version(match[1])
    return None


def _arch(env: Mapping[str, str], overridden: list[str]) -> str:
    raw = env.get("SYSTEM_ARCH")
    if raw:
        overridden.append("arch")
    else:
        raw = host.machine()
    arch = _ARCH_NAMES.get(raw.lower())
    if arch is None:
        if env.get("SYSTEM_ARCH"):
            raise PlatformError(f"SYSTEM_ARCH: '{raw}' is not valid (valid: aarch64, x86_64)")
        return raw.lower()
    return arch


def detect_platform(
    env: Mapping[str, str],
    *,
    root: Path = Path("/"),
    runner: Runner = run,
    target: str | None = None,
    distro: str | None = None,
) -> Platform:
    """Detect the platform (or build a ``target`` preset), then apply overrides."""
    table = _table()
    overridden: list[str] = []
    warnings: list[str] = []
    preset: dict[str, str] = {}
    if target is not None:
        if target not in table["targets"]:
            valid = ", ".join(table["targets"])
            raise PlatformError(f"unknown target '{target}' (valid: {valid})")
        preset = table["targets"][target]

    if preset:
        arch = "aarch64" if "l4t" in preset else table["servers"][preset["server"]]["arch"]
        cuda_arch = "tegra-aarch64" if "l4t" in preset else preset["server"]
    else:
        arch = _arch(env, overridden)
        if arch == "aarch64":
            cuda_arch = "tegra-aarch64" if _is_jetson_host(root) else "aarch64-sbsa"
        else:
            cuda_arch = "x86_64"
    if env.get("CUDA_ARCH"):
        if env["CUDA_ARCH"] not in CUDA_ARCHS:
            valid = ", ".join(CUDA_ARCHS)
            raise PlatformError(f"CUDA_ARCH: '{env['CUDA_ARCH']}' is not valid (valid: {valid})")
        cuda_arch = env["CUDA_ARCH"]
        overridden.append("cuda_arch")

    l4t = jetpack = None
    if cuda_arch == "tegra-aarch64":
        if env.get("L4T_VERSION"):
            text = env["L4T_VERSION"].lower().removeprefix("r")
            l4t = _version(text, "L4T_VERSION", "36.4.3 or r36.4.3")
            overridden.append("l4t_version")
        elif preset:
            l4t = Version(preset["l4t"])
        else:
            l4t = read_l4t_release(root)
            if l4t is None:
                l4t = max(Version(key) for key in table["l4t"])
                warnings.append(f"no L4T release found on this Jetson; assuming L4T {l4t}")
        _, row, warning = _l4t_row(l4t)
        warnings += [warning] if warning else []
        jetpack = Version(str(row["jetpack"]))
        if env.get("JETPACK_VERSION"):
            jetpack = _version(env["JETPACK_VERSION"], "JETPACK_VERSION", "6.2")
            overridden.append("jetpack_version")
    else:
        row = table["servers"]["aarch64-sbsa" if cuda_arch == "aarch64-sbsa" else "x86_64"]

    chosen_distro = parse_distro(str(row["distro"]))
    distro_text = distro or env.get("LSB_RELEASE")
    if distro_text:
        chosen_distro = parse_distro(distro_text)
        overridden.append("distro")

    if env.get("CUDA_VERSION"):
        cuda = parse_cuda_version(env["CUDA_VERSION"])
        overridden.append("cuda_version")
    elif preset.get("cuda"):
        cuda = parse_cuda_version(preset["cuda"])
    elif not preset:
        found = detect_host_cuda(root, runner) if cuda_arch != "tegra-aarch64" else None
        cuda = found or parse_cuda_version(str(row["cuda"]))
    else:
        cuda = parse_cuda_version(str(row["cuda"]))

    if env.get("PYTHON_VERSION"):
        python = _version(env["PYTHON_VERSION"], "PYTHON_VERSION", "3.10")
        overridden.append("python_version")
    else:
        python = Version(str(table["python"].get(str(chosen_distro), "3")))

    if env.get("CUDA_ARCHITECTURES"):
        gpu_archs = _parse_gpu_archs(env["CUDA_ARCHITECTURES"])
        overridden.append("gpu_archs")
    else:
        gpu_archs = tuple(int(sm) for sm in row["gpu_archs"])

    base_image = (
        str(chosen_distro) if "distro" in overridden else str(row.get("base_image", chosen_distro))
    )
    return Platform(
        arch=arch,
        cuda_arch=cuda_arch,
        l4t_version=l4t,
        jetpack_version=jetpack,
        cuda_version=cuda,
        python_version=python,
        distro=chosen_distro,
        gpu_archs=gpu_archs,
        base_image=base_image,
        target=target,
        overridden=tuple(sorted(overridden)),
        warnings=tuple(warnings),
    )


def _parse_gpu_archs(text: str) -> tuple[int, ...]:
    """``87``, ``87;110``, ``75,80``, ``8.7`` → SM numbers."""
    values = [item.strip() for item in re.split(r"[;, ]+", text) if item.strip()]
    try:
        return tuple(int(item.replace(".", "")) for item in values)
    except ValueError:
        raise PlatformError(
            f"CUDA_ARCHITECTURES: '{text}' is not valid (valid: '87', '87;110', '75,80')"
        ) from None
