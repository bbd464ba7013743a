"""What the host offers containers: GPU access, devices, display, jtop (docs/cli.md, "run").

:func:`probe_host` looks once at the engine's info and at a host root (``/`` normally, a
fixture directory in tests) and returns a :class:`HostProbe` value; :func:`choose_gpu` picks
the GPU option from it. GPU access, first that applies: the engine has a registered
``nvidia`` runtime (``--runtime nvidia``); the engine reads CDI specs and one of them under
its spec directories describes ``nvidia.com/gpu`` (``--device nvidia.com/gpu=all``); the
engine has ``--gpus`` (docker) and ``nvidia-container-runtime-hook``, what it runs, is on
the daemon's usual PATH (``--gpus all``); else no GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jetforge.host.files import MIB, UnreadableFileError, read_regular

# Where dockerd finds nvidia-container-runtime-hook for --gpus (its PATH as a service).
_DAEMON_PATH = ("usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin")
_GPUS_HOOK = "nvidia-container-runtime-hook"
_CDI_SUFFIXES = (".json", ".yaml")
_CDI_GPU_KIND = "nvidia.com/gpu"
CDI_SPEC_LIMIT = 16 * MIB
_DEVICE_PATTERNS = ("video*", "i2c-*", "snd", "bus/usb", "ttyACM*", "ttyUSB*")
HOST_ROOT_VARIABLE = "JETFORGE_HOST_ROOT"  # another host root, for tests
JTOP_SOCKET = "/run/jtop.sock"
X11_SOCKETS = "/tmp/.X11-unix"


@dataclass(frozen=True, slots=True)
class HostProbe:
    """What the engine and the host offer a container; paths are host paths."""

    runtimes: tuple[str, ...] = ()
    cdi_gpu: bool = False
    gpus_hook: bool = False
    localtime: bool = False
    display: str = ""
    x11_sockets: bool = False
    xauthority: str = ""
    devices: tuple[str, ...] = ()
    jtop_socket: bool = False


@dataclass(frozen=True, slots=True)
class GpuAccess:
    """How containers reach the GPU: ``runtime``, ``cdi``, ``gpus``, ``none``, or ``user``
    (the user's own run options give it)."""

    kind: Literal["runtime", "cdi", "gpus", "none", "user"]
    options: tuple[str, ...]
    detail: str


def choose_gpu(probe: HostProbe) -> GpuAccess:
    """The GPU option for this engine and host (order in the module docstring)."""
    if "nvidia" in probe.runtimes:
        return GpuAccess("runtime", ("--runtime", "nvidia"), "the 'nvidia' runtime is registered")
    if probe.cdi_gpu:
        return GpuAccess(
            "cdi", ("--device", "nvidia.com/gpu=all"), "a CDI spec describes nvidia.com/gpu"
        )
    if probe.gpus_hook:
        return GpuAccess("gpus", ("--gpus", "all"), f"--gpus works through {_GPUS_HOOK}")
    return GpuAccess("none", (), "no nvidia runtime, no CDI spec for nvidia.com/gpu, no --gpus")


def _under(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _natural(path: str) -> tuple[object, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path))


def iter_host_devices(root: Path) -> Iterator[str]:
    """Host paths of the devices containers get when present (docs/cli.md, "run")."""
    dev = root / "dev"
    for pattern in _DEVICE_PATTERNS:
        found = sorted((str(path.relative_to(root)) for path in dev.glob(pattern)), key=_natural)
        yield from (f"/{path}" for path in found)


def has_cdi_gpu(root: Path, spec_dirs: Sequence[str]) -> bool:
    """Whether a CDI spec (``.json``/``.yaml``) in ``spec_dirs`` describes nvidia.com/gpu."""
    for directory in spec_dirs:
        folder = _under(root, directory)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix not in _CDI_SUFFIXES or not path.is_file():
                continue
            try:  # a FIFO or a device among the specs is skipped, never waited on
                data = read_regular(path, "CDI spec", CDI_SPEC_LIMIT)
            except UnreadableFileError:
                continue
            if _CDI_GPU_KIND in data.decode("utf-8", errors="replace"):
                return True
    return False


def has_gpus_hook(root: Path) -> bool:
    """Whether ``nvidia-container-runtime-hook`` (what docker's ``--gpus`` runs) exists."""
    return any((root / directory / _GPUS_HOOK).exists() for directory in _DAEMON_PATH)


def _xauthority(root: Path, env: Mapping[str, str]) -> str:
    given = env.get("XAUTHORITY", "")
    home = env.get("HOME", "")
    candidate = given or (f"{home.rstrip('/')}/.Xauthority" if home else "")
    return candidate if candidate and _under(root, candidate).is_file() else ""


def probe_host(
    root: Path,
    env: Mapping[str, str],
    *,
    runtimes: Sequence[str],
    cdi_spec_dirs: Sequence[str],
    gpus_flag: bool,
) -> HostProbe:
    """Look at the host under ``root`` for an engine with ``runtimes`` registered, reading
    CDI specs from ``cdi_spec_dirs`` and taking ``--gpus`` when ``gpus_flag`` (what the
    engine says of itself); ``env`` gives the display settings (``DISPLAY``,
    ``XAUTHORITY``, ``HOME``)."""
    display = env.get("DISPLAY", "")
    return HostProbe(
        runtimes=tuple(runtimes),
        cdi_gpu=has_cdi_gpu(root, cdi_spec_dirs),
        gpus_hook=gpus_flag and has_gpus_hook(root),
        localtime=_under(root, "/etc/localtime").exists(),
        display=display,
        x11_sockets=bool(display) and _under(root, X11_SOCKETS).exists(),
        xauthority=_xauthority(root, env) if display else "",
        devices=tuple(iter_host_devices(root)),
        jtop_socket=_under(root, JTOP_SOCKET).exists(),
    )
