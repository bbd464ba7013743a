"""A jetson-containers checkout as jetforge searches it: telling one apart, and what its
config scripts get (:func:`jc_setup`: the compatibility module's constants on the
platform, the roots of ``packages.*`` imports). Apart from reading jc directories
(:mod:`jetforge.discovery.jc.scan`): every command that reads packages needs these, and a
run answered by the discovery index reads no directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.platform_table import SBSA, TEGRA
from jetforge.host.platform_data import load_tables

if TYPE_CHECKING:
    from jetforge.core.platform import Platform

CONFIG_SUFFIXES = (".json", ".yml", ".yaml")  # jc's config files besides config.py


def is_jc_checkout(root: Path) -> bool:
    """Whether ``root`` is the ``packages`` tree of a jetson-containers checkout."""
    return (root.parent / "jetson_containers" / "__init__.py").is_file()


def import_roots(roots: Sequence[Path]) -> tuple[Path, ...]:
    """Where ``packages.*`` imports look: for each search directory the nearest directory
    named ``packages`` at or above it, else the search directory itself."""
    found: dict[Path, None] = {}
    for root in roots:
        absolute = root.resolve()
        named = next((p for p in (absolute, *absolute.parents) if p.name == "packages"), absolute)
        found[named] = None
    return tuple(found)


def platform_constants(platform: Platform, env: Mapping[str, str]) -> dict[str, object]:
    """The values of the compatibility module's constants on ``platform``.

    Off Jetson, jc takes L4T 39.1.0 / JetPack 7.2 (so that L4T checks pass there); the
    data file records those values.
    """
    tables = load_tables()
    cuda_arch = {TEGRA: "tegra-aarch64", SBSA: "aarch64"}.get(platform.cuda_arch, "x86_64")
    free_threading = env.get("PYTHON_FREE_THREADING", "0") == "1"
    return {
        "L4T_VERSION": str(platform.l4t_version or tables.jc_l4t),
        "JETPACK_VERSION": str(platform.jetpack_version or tables.jc_jetpack),
        "CUDA_VERSION": f"{platform.cuda_version.major}.{platform.cuda_version.minor}",
        "PYTHON_VERSION": str(platform.python_version),
        "CUDA_ARCH": cuda_arch,
        "SYSTEM_ARCH": platform.arch,
        "LSB_RELEASE": platform.distro.release,
        "CUDA_ARCHITECTURES": list(platform.gpu_archs),
        "PYTHON_FREE_THREADING": free_threading,
    }


def jc_setup(
    platform: Platform, env: Mapping[str, str], roots: Sequence[Path]
) -> dict[str, object]:
    """What a script worker needs for jc scripts: the constants and the import roots."""
    return {
        "jc": platform_constants(platform, env),
        "roots": [str(root) for root in import_roots(roots)],
    }
