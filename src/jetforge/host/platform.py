"""The platform of this host (docs/platforms.md), detected once per command: the raw facts
of a host root (``/etc/nv_tegra_release``, the device tree, CUDA's version files, ``nvcc``,
``nvidia-smi``) or of a ``--target`` preset, with the environment's overrides, derived into
the value of :mod:`jetforge.core.platform` by the shipped platform table
(:mod:`jetforge.host.platform_data`). This is the only place that looks at the host.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from packaging.version import Version

from jetforge.core.platform import (
    ARCH_NAMES,
    HOST_CUDA_ARCH,
    TEGRA,
    X86,
    Facts,
    Platform,
    derive_platform,
    parse_cuda_version,
    parse_overrides,
    parse_tegra_release,
    preset_facts,
    resolve_arch,
)
from jetforge.host.commands import Runner
from jetforge.host.files import MIB, UnreadableFileError, read_regular
from jetforge.host.platform_data import load_tables, target_names
from jetforge.host.runner import run_process

__all__ = ["detect_platform", "target_names"]


def _read(path: Path) -> str:
    """A small host file's text (``/etc/nv_tegra_release``, the device tree's model, CUDA's
    version file), or "" when it is missing or is no regular file of at most 1 MiB."""
    try:
        return read_regular(path, "host file", MIB).decode("utf-8", errors="replace")
    except UnreadableFileError:
        return ""


def _probe(runner: Runner, *argv: str) -> str:
    try:
        done = runner(argv, timeout=15)
    except OSError:
        return ""
    return done.stdout if done.returncode == 0 else ""


def host_facts(root: Path, arch: str | None, machine: str | None) -> Facts:
    release_file = root / "etc" / "nv_tegra_release"
    model = _read(root / "proc" / "device-tree" / "model").replace("\0", "").strip()
    if release_file.exists() or "jetson" in model.lower() or "tegra" in model.lower():
        return Facts("aarch64", TEGRA, l4t=parse_tegra_release(_read(release_file)), model=model)
    machine = arch or machine or os.uname().machine
    machine = ARCH_NAMES.get(machine.lower(), machine.lower())
    if machine in HOST_CUDA_ARCH:
        return Facts(machine, HOST_CUDA_ARCH[machine])
    warning = f"unknown architecture '{machine}'; using the {X86} defaults (set SYSTEM_ARCH)"
    return Facts(machine, X86, warnings=(warning,))


def host_cuda(root: Path, runner: Runner, *, jetson: bool) -> Version | None:
    """The host's CUDA: ``version.json``, then (off Jetson) ``nvcc``, then ``nvidia-smi``."""
    cuda_dir = root / "usr" / "local" / "cuda"
    try:
        found = parse_cuda_version(
            str(json.loads(_read(cuda_dir / "version.json"))["cuda"]["version"])
        )
    except (ValueError, KeyError, TypeError):
        match = re.search(r"CUDA Version (\d+\.\d+)", _read(cuda_dir / "version.txt"))
        found = None if match is None else Version(match[1])
    if found is not None or jetson:
        return found
    for argv, pattern in (
        (("nvcc", "--version"), r"release (\d+\.\d+)"),
        (("nvidia-smi",), r"CUDA Version:\s*(\d+\.\d+)"),
    ):
        match = re.search(pattern, _probe(runner, *argv))
        if match is not None:
            return Version(match[1])
    return None


def detect_platform(
    env: Mapping[str, str],
    *,
    root: Path = Path("/"),
    runner: Runner = run_process,
    target: str | None = None,
    distro: str | None = None,
    machine: str | None = None,
) -> Platform:
    """The platform of the host under ``root`` (or the preset ``target``), with overrides.

    ``env`` supplies the override variables of docs/platforms.md and ``distro`` is the
    ``--distro`` flag; ``machine`` is the host's ``uname -m`` (default: this machine's).
    Unknown targets and unparsable overrides raise :class:`PlatformError`.
    """
    wanted = parse_overrides(env, distro)
    tables = load_tables()
    if target is not None:
        facts = preset_facts(tables, target)
    else:
        facts = host_facts(root, wanted.arch, machine)
        _, cuda_arch = resolve_arch(facts, wanted)
        # The host's CUDA only matters when the platform is the host's own.
        if wanted.cuda_version is None and cuda_arch == facts.cuda_arch:
            facts = replace(facts, cuda=host_cuda(root, runner, jetson=cuda_arch == TEGRA))
    return derive_platform(facts, wanted, tables)
