"""jetforge's stand-in for the ``jetson_containers`` module, for jc config scripts.

Written from the documented behaviour of jetson-containers (no code of it is used). The
platform constants come from jetforge's platform value: :func:`configure` sets them once per
worker process, before any script runs. The helpers that would reach the network answer
offline at once, as jc's do when the network is down (``None``, or an error where jc
raises one), and leave a warning for the package that asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from packaging.version import Version

CUDA_ARCHS = {"tegra-aarch64": "arm64", "aarch64": "arm64", "x86_64": "amd64"}
SYSTEM_ARCH_LIST = [word for pair in CUDA_ARCHS.items() for word in pair]
LSB_RELEASES = {
    "16.04": "xenial",
    "18.04": "bionic",
    "20.04": "focal",
    "22.04": "jammy",
    "24.04": "noble",
    "26.04": "resolute",
}

L4T_VERSION = Version("0")
JETPACK_VERSION = Version("0")
CUDA_VERSION = Version("0")
CUDA_SHORT_VERSION = "cu00"
CUDA_ARCHITECTURES: list[int] = []
CUDA_ARCH = "x86_64"
SYSTEM_ARCH = "x86_64"
DOCKER_ARCH = "amd64"
SYSTEM_ARM = False
SYSTEM_X86 = True
IS_TEGRA = False
IS_SBSA = False
LSB_RELEASE = ""
PYTHON_VERSION = Version("0")
PYTHON_FREE_THREADING = False

_warnings: list[str] = []


def configure(values: Mapping[str, Any]) -> None:
    """Set the platform constants from the record the worker receives."""
    names = globals()
    for name in ("L4T_VERSION", "JETPACK_VERSION", "CUDA_VERSION", "PYTHON_VERSION"):
        names[name] = Version(str(values[name]))
    for name in ("CUDA_ARCH", "SYSTEM_ARCH", "LSB_RELEASE"):
        names[name] = str(values[name])
    names["CUDA_ARCHITECTURES"] = [int(item) for item in values["CUDA_ARCHITECTURES"]]
    names["PYTHON_FREE_THREADING"] = bool(values.get("PYTHON_FREE_THREADING", False))
    names["DOCKER_ARCH"] = CUDA_ARCHS[SYSTEM_ARCH]
    names["SYSTEM_ARM"] = CUDA_ARCH in ("aarch64", "tegra-aarch64")
    names["SYSTEM_X86"] = CUDA_ARCH == "x86_64"
    names["IS_TEGRA"] = CUDA_ARCH == "tegra-aarch64"
    names["IS_SBSA"] = CUDA_ARCH == "aarch64"
    names["CUDA_SHORT_VERSION"] = cuda_short_version()


def take_warnings() -> list[str]:
    """The warnings left since the last call (one package's worth)."""
    taken = list(_warnings)
    _warnings.clear()
    return taken


# --- logging: warnings and errors are kept for the package; the rest is dropped ----------


def log_warning(text: object, **_options: object) -> None:
    """A warning of the running config script."""
    _warnings.append(str(text))


def log_error(text: object, **_options: object) -> None:
    """An error message of the running config script (kept as a warning)."""
    _warnings.append(str(text))


def log_info(text: object, **_options: object) -> None:
    """Informational output: not shown."""


log_verbose = log_debug = log_success = log_status = log_info


# --- versions ---------------------------------------------------------------------------


def cuda_short_version(cuda_version: str | Version | None = None) -> str:
    """``cu126`` for CUDA 12.6 (the platform's CUDA when none is given)."""
    version = Version(str(cuda_version)) if cuda_version else CUDA_VERSION
    return f"cu{version.major}{version.minor}"


def check_arch(arch: str, system_arch: str | None = None) -> bool:
    """Whether ``arch`` names this platform's architecture (either spelling)."""
    if system_arch:
        return arch == system_arch
    return arch in (SYSTEM_ARCH, DOCKER_ARCH)


def nv_tegra_release(version_file: str = "/etc/nv_tegra_release", dst: str | None = None) -> str:
    """The text of an ``nv_tegra_release`` file for the target L4T release.

    jetforge plans for a target, not for the host, so the text is always generated from
    the platform (and written to ``dst`` when given and not already holding it: jc's
    ``ollama`` script writes it into its own directory every time it runs, and a file
    left as it was leaves the directory as the discovery index knows it)."""
    del version_file
    text = (
        f"# R{L4T_VERSION.major} (release), REVISION: {L4T_VERSION.minor}.{L4T_VERSION.micro}, "
        f"GCID: 00000000, BOARD: generic, EABI: {SYSTEM_ARCH}, DATE: unknown\n"
        "# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
        f"TARGET_USERSPACE_LIB_DIR_PATH=/usr/lib/{SYSTEM_ARCH}-linux-gnu/nvidia\n"
    )
    if dst:
        try:
            with open(dst, encoding="utf-8") as file:  # noqa: PTH123 - the script's path
                same = file.read() == text
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            with open(dst, "w", encoding="utf-8") as file:  # noqa: PTH123
                file.write(text)
    return text


# --- package helpers --------------------------------------------------------------------


def update_dependencies(old: list[str], new: str | list[str] | None) -> list[str]:
    """Merge dependency lists by base name, the new entries winning::

    update_dependencies(['pytorch', 'numpy'], ['pytorch:2.8']) == ['pytorch:2.8', 'numpy']
    """
    if not new:
        return old
    for dependency in [new] if isinstance(new, str) else new:
        base = dependency.split(":")[0]
        old = [dependency if entry == base else entry for entry in old]
        if dependency not in old:
            old.append(dependency)
    return old


def package_depends(package: MutableMapping[str, Any], *entries: str | Iterable[str]) -> Any:
    """Add or update dependencies of ``package`` (entries or lists of entries)."""
    new: list[str] = []
    for entry in entries:
        new.extend([entry] if isinstance(entry, str) else entry)
    package["depends"] = update_dependencies(package.get("depends", []), new)
    return package


def package_requires(
    package: Any,
    requires: str | None = None,
    system_arch: str | None = None,
    unless: str | list[str] | None = None,
) -> Any:
    """Add a platform requirement unless one of ``unless`` is already there.

    ``system_arch='aarch64'`` adds that architecture unless the package already names one.
    A list of packages is handled package by package. Like jc, a list of requirements that
    the package already holds is extended in place.
    """
    if isinstance(package, list | tuple):
        for item in package:
            package_requires(item, requires=requires, system_arch=system_arch, unless=unless)
        return package
    if system_arch:
        unless, requires = SYSTEM_ARCH_LIST, system_arch
    excluded = [] if not unless else unless if isinstance(unless, list) else [unless]
    current = package.get("requires", [])
    held = current if isinstance(current, list) else [current]
    if any(item in excluded for item in held):
        return None
    if requires not in held:
        held.append(requires)
    package["requires"] = held
    return package


# --- the network: offline at scan time --------------------------------------------------


def _offline(what: str) -> None:
    _warnings.append(f"asked for {what}; config scripts get no network, so it got None")


def github_latest_tag(repo: str) -> str | None:
    """None (offline), as jc answers when GitHub cannot be reached."""
    _offline(f"the latest GitHub tag of {repo}")
    return None


def github_latest_commit(repo: str, branch: str = "main") -> str | None:
    """None (offline), as jc answers when GitHub cannot be reached."""
    _offline(f"the latest commit of {repo}@{branch}")
    return None


def handle_text_request(url: str, *_args: object, **_options: object) -> str | None:
    """None (offline), as jc answers when a request fails."""
    _offline(url)
    return None


def handle_json_request(url: str, *_args: object, **_options: object) -> Any:
    """Raises, as jc does once every attempt at ``url`` failed."""
    _offline(url)
    raise RuntimeError(f"cannot fetch {url}: jetforge reads packages offline")


def get_json_value_from_url(url: str, notation: str | None = None) -> Any:
    """Raises, as jc does when ``url`` cannot be fetched."""
    del notation
    return handle_json_request(url)
