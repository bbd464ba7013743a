"""Workers: the engines one build may spread over (``[[workers]]`` in jetforge.toml).

A worker is an unmodified engine reached at an endpoint, with labels saying what it can
build for. Without workers configured, the local engine is the only one.

```toml
[[workers]]
name = "orin"
endpoint = "ssh://build@orin.local"
labels = {abi = "tegra", arch = "aarch64", sm = "87", memory = "64GiB"}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from jetforge.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from jetforge.core.platform import Platform

LOCAL = "local"
LABELS = ("abi", "arch", "sm", "memory")
ABIS = ("tegra", "sbsa", "x86_64")
GIB_PER_JOB = 16  # a compile-heavy stage (PyTorch, onnxruntime) wants about this much
_KEYS = ("name", "engine", "endpoint", "labels", "jobs")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(GiB|GB|G|MiB|MB|M)?", re.IGNORECASE)
_ABI_OF = {"tegra-aarch64": "tegra", "aarch64-sbsa": "sbsa", "x86_64": "x86_64"}


@dataclass(frozen=True, slots=True)
class Worker:
    """One engine a build may run stages on."""

    name: str
    engine: str = ""  # empty: the engine the command would use anyway
    endpoint: str = ""  # empty: the engine's default (its local socket)
    labels: tuple[tuple[str, str], ...] = ()
    jobs: int = 1  # stages it runs at once

    def label(self, key: str) -> str:
        """A label's value, or empty."""
        return dict(self.labels).get(key, "")

    def fits(self, platform: Platform) -> bool:
        """Whether this worker can build for ``platform``: its ``abi`` and ``arch`` labels,
        where set, are the platform's, and its ``sm`` label, where set, holds the
        platform's GPU architectures."""
        abi, arch, sm = self.label("abi"), self.label("arch"), self.label("sm")
        if abi and abi != _ABI_OF.get(platform.cuda_arch, platform.cuda_arch):
            return False
        if arch and arch != platform.arch:
            return False
        if sm and platform.gpu_archs:
            offered = {int(item) for item in re.split(r"[;, ]+", sm) if item.isdigit()}
            return set(platform.gpu_archs) <= offered
        return True


def local_worker(engine: str) -> Worker:
    """The local engine as a worker (the default, and what ``--workers local`` names)."""
    return Worker(LOCAL, engine)


def parse_workers(value: object, source: Path, engines: Sequence[str]) -> tuple[Worker, ...]:
    """``[[workers]]`` of the config file ``source``; ``engines`` are the valid engine names.
    Every problem names the file, the worker and what would be valid."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UsageError(f"{source}: 'workers' must be [[workers]] tables ({', '.join(_KEYS)})")
    found: list[Worker] = []
    for number, item in enumerate(value, start=1):
        found.append(_worker(item, f"{source}: workers #{number}", engines))
    names = [worker.name for worker in found]
    for name in names:
        if names.count(name) > 1 or name == LOCAL:
            raise UsageError(
                f"{source}: worker name '{name}' is "
                + ("used twice" if name != LOCAL else "reserved for the local engine")
            )
    return tuple(found)


def _worker(item: Mapping[str, object], where: str, engines: Sequence[str]) -> Worker:
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key '{unknown[0]}' (valid: {', '.join(_KEYS)})")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(f"{where}: 'name' must be lowercase letters, digits, '.', '_', '-'")
    where = f"{where.rsplit(':', 1)[0]}: worker '{name}'"
    engine = item.get("engine", "")
    if engine not in ("", *engines):
        raise UsageError(f"{where}: engine '{engine}' (valid: {', '.join(engines)})")
    endpoint = item.get("endpoint", "")
    if not isinstance(endpoint, str):
        raise UsageError(f"{where}: 'endpoint' must be a string (unix://, ssh://, tcp://)")
    labels = item.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str | int) for v in labels.values()):
        raise UsageError(f"{where}: 'labels' must map names to strings, e.g. {{abi = \"tegra\"}}")
    for key, text in labels.items():
        if key not in LABELS:
            raise UsageError(f"{where}: unknown label '{key}' (valid: {', '.join(LABELS)})")
        if key == "abi" and text not in ABIS:
            raise UsageError(f"{where}: abi '{text}' (valid: {', '.join(ABIS)})")
    jobs = item.get("jobs", _jobs_for(str(labels.get("memory", "")), where))
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"{where}: 'jobs' must be a whole number of at least 1")
    return Worker(
        name,
        str(engine),
        endpoint,
        tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        jobs,
    )


def _jobs_for(memory: str, where: str) -> int:
    """Stages at once for a worker with ``memory`` (one per 16 GiB, at least one)."""
    if not memory:
        return 1
    match = _MEMORY.fullmatch(memory.strip())
    if match is None:
        raise UsageError(f"{where}: memory '{memory}' (write it as e.g. '64GiB' or '8G')")
    amount, unit = float(match[1]), (match[2] or "G").upper()
    gib = amount / 1024 if unit.startswith("M") else amount
    return max(1, int(gib // GIB_PER_JOB))


def choose_workers(
    names: Sequence[str], configured: Sequence[Worker], engine: str
) -> tuple[Worker, ...]:
    """The workers ``--workers`` names (``local`` is the local engine), in that order; no
    names: the local engine alone. An unknown name is a usage error naming the valid ones."""
    if not names:
        return (local_worker(engine),)
    by_name = {LOCAL: local_worker(engine), **{w.name: w for w in configured}}
    chosen: list[Worker] = []
    for name in dict.fromkeys(names):
        if name not in by_name:
            raise UsageError(f"--workers: unknown worker '{name}' (valid: {', '.join(by_name)})")
        worker = by_name[name]
        chosen.append(worker if worker.engine else replace(worker, engine=engine))
    return tuple(chosen)
