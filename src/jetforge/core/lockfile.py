"""The lockfile of a chain (docs/builds.md, "Lockfile"): the platform, the base image, and
per stage its variant, key, image id and what it installed, as a value and as JSON.

Pure: the inventories come in from :mod:`jetforge.ops.lockstep`, which ran the collector.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jetforge import __version__
from jetforge.core.inventory import Distribution, Inventory, installed
from jetforge.core.lockdata import LOCK_FORMAT, LockData, LockedStage
from jetforge.core.names import base_name
from jetforge.core.pins import free_names

if TYPE_CHECKING:
    from jetforge.core.plan import Plan

LOCK_FILE = "jetforge.lock.json"


@dataclass(frozen=True, slots=True)
class Lock:
    """A built chain, pinned: its plan's platform and chain, the base image as the engine
    reported it, and every stage."""

    plan: Plan
    final_id: str
    base_id: str
    base_digests: tuple[str, ...]
    base: Inventory
    base_inventoried: bool
    stages: tuple[LockedStage, ...]


def lock_for(
    plan: Plan,
    base: tuple[str, tuple[str, ...], Inventory | None],
    stages: Sequence[tuple[str, Inventory | None]],
) -> Lock:
    """The lock of ``plan`` given the base image's (id, registry digests, inventory) and
    each stage's (image id, inventory); an inventory is None when it could not be had."""
    base_id, digests, base_inventory = base
    parent = base_inventory or Inventory()
    locked: list[LockedStage] = []
    for stage, (image_id, inventory) in zip(plan.stages, stages, strict=True):
        if inventory is None:
            added, removed = Inventory(), Inventory()
        else:
            added, removed = installed(inventory, parent)
            parent = inventory
        locked.append(
            LockedStage(
                index=stage.index,
                variant=stage.package,
                key=stage.key,
                image=str(stage.image),
                image_id=image_id,
                added=added,
                removed=removed,
                inventoried=inventory is not None,
            )
        )
    final_id = locked[-1].image_id if locked else base_id
    return Lock(
        plan=plan,
        final_id=final_id,
        base_id=base_id,
        base_digests=tuple(sorted(digests)),
        base=base_inventory or Inventory(),
        base_inventoried=base_inventory is not None,
        stages=tuple(locked),
    )


def lock_json(lock: Lock) -> dict[str, object]:
    """The lockfile's JSON data (format 1; keys documented in docs/builds.md)."""
    plan = lock.plan
    return {
        "format": LOCK_FORMAT,
        "generator": f"jetforge {__version__}",
        "platform": plan.platform.to_json(),
        "chain": list(plan.chain),
        "build_mode": plan.build_mode,
        "final_image": str(plan.final_image),
        "final_image_id": lock.final_id,
        "base": {
            "reference": plan.base_image,
            "id": lock.base_id,
            "digests": list(lock.base_digests),
            "os": {"id": lock.base.os_id, "version": lock.base.os_version},
            "inventoried": lock.base_inventoried,
            "installed": contents_json(lock.base),
            "sources": _sources(lock.base),
        },
        "stages": [
            {
                "index": stage.index,
                "variant": stage.variant,
                "package": base_name(stage.variant),
                "key": stage.key,
                "image": stage.image,
                "image_id": stage.image_id,
                "inventoried": stage.inventoried,
                "installed": contents_json(stage.added),
                "removed": {
                    "deb": [deb.name for deb in stage.removed.debs],
                    "python": [
                        {"name": found.name, "environment": found.environment}
                        for found in stage.removed.distributions
                    ],
                },
                "sources": _sources(stage.added),
            }
            for stage in lock.stages
        ],
    }


def contents_json(inventory: Inventory) -> dict[str, object]:
    """What an inventory holds as lock data (a stage's ``installed``)."""
    return {
        "deb": [
            {"name": deb.name, "version": deb.version, "architecture": deb.architecture}
            for deb in inventory.debs
        ],
        "python": [_distribution(found) for found in inventory.distributions],
        "interpreters": [
            {"path": one.path, "version": one.version, "environment": one.environment}
            for one in inventory.interpreters
        ],
    }


def _distribution(found: Distribution) -> dict[str, str]:
    record = {"name": found.name, "version": found.version, "environment": found.environment}
    if found.sha256:
        parts = urllib.parse.urlsplit(found.url)
        index = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        record.update(sha256=found.sha256, url=found.url, index=index)
    return record


def _sources(inventory: Inventory) -> list[dict[str, str]]:
    found = []
    for source in inventory.sources:
        record = {"name": source.name, "url": source.url, "file": source.file}
        record.update({"sha256": source.sha256} if source.sha256 else {})
        record.update({"commit": source.commit} if source.commit else {})
        found.append(record)
    return found


def plan_mismatch(
    locked: LockData,
    plan: Plan,
    base_id: str | None,
    *,
    chain: bool = True,
    base: bool = True,
) -> str:
    """Why ``plan`` on the base image ``base_id`` is not the chain ``locked`` pins (empty
    when it is): another chain (with ``chain``) or platform, or another base image (with
    ``base``; not checked when ``base_id`` is None: no engine could say)."""
    planned = list(plan.chain)
    if chain and list(locked.chain) != planned:
        return f"it pins the chain {list(locked.chain)}, this build plans {planned}"
    if dict(locked.platform) != plan.platform.to_json():
        return platform_mismatch(locked.platform, plan.platform.to_json())
    pinned = locked.base
    if base and base_id is not None and pinned.id and pinned.id != base_id:
        how = f"--base {pinned.digests[0]}" if pinned.digests else "the base image it was built on"
        return (
            f"it pins the base image {pinned.reference} with id {pinned.id[:19]}, this "
            f"engine's is {base_id[:19]} (build with {how}, or refresh the lockfile on this "
            "base: 'jetforge lock --file FILE --upgrade base' with the same packages)"
        )
    return ""


def platform_mismatch(pinned: Mapping[str, object], planned: Mapping[str, object]) -> str:
    """Why a lockfile for the platform ``pinned`` does not fit a plan for ``planned``
    (their JSON values): both platforms, by label, and the first field that differs
    when the labels are the same."""
    wanted = str(pinned.get("label", "")) or "a platform with no label"
    have = str(planned.get("label", ""))
    differing = sorted(k for k in pinned.keys() | planned.keys() if pinned.get(k) != planned.get(k))
    field = next((k for k in differing if k != "label"), "")
    detail = (
        f" ({field}: {pinned.get(field)!r} there, {planned.get(field)!r} here)" if field else ""
    )
    return (
        f"it pins the platform {wanted}, this build is for {have}{detail}; build for the "
        "lockfile's platform (--target, --distro) or lock this one with 'jetforge lock'"
    )


def lock_differences(locked: Sequence[LockedStage], built: Sequence[LockedStage]) -> list[str]:
    """What a build (its stages ``built``) installed otherwise than the ``locked`` stages
    pin, one line per package, stage by stage; empty when it is the same."""
    found: list[str] = []
    for pinned, made in zip(locked, built, strict=False):
        found += stage_differences(pinned, made)
    return found


def stage_differences(pinned: LockedStage, made: LockedStage) -> list[str]:
    """What one stage (``made``) installed otherwise than ``pinned``."""
    where = f"stage {made.index} ({made.variant})"
    found: list[str] = []
    for (kind, pins), (_, have) in zip(_versions(pinned), _versions(made), strict=True):
        for name in sorted(pins.keys() | have.keys()):
            if name not in have:
                found.append(f"{where}: {kind} {name} {pins[name][0]} (locked) was not installed")
            elif name not in pins:
                found.append(f"{where}: {kind} {name} {have[name][0]} is not in the lock")
            elif pins[name][0] != have[name][0]:
                found.append(f"{where}: {kind} {name} is {have[name][0]}, locked {pins[name][0]}")
            elif pins[name][1] and have[name][1] and pins[name][1] != have[name][1]:
                found.append(
                    f"{where}: {kind} {name} {have[name][0]} was installed from another file "
                    f"(sha256 {have[name][1]}, locked {pins[name][1]})"
                )
    return found


def _versions(stage: LockedStage) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(kind, entries) for the Debian packages and the Python distributions (by name, with
    the environment) ``stage`` installed: each entry's version and, for Python, its
    file's sha256 if known."""
    return [
        ("deb", {deb.name: (deb.version, "") for deb in stage.added.debs}),
        (
            "python",
            {
                f"{found.name} ({found.environment})": (found.version, found.sha256)
                for found in stage.added.distributions
            },
        ),
    ]


def moved(
    locked: Sequence[LockedStage], built: Sequence[LockedStage], free: Sequence[str]
) -> list[str]:
    """What a refreshed build (its stages ``built``) moved that the ``locked`` stages pin
    and ``free`` does not name: a Debian package or Python distribution at another version
    or from another file, wherever in the chain it is. New and removed entries are not
    moves."""
    names = free_names(free)
    pinned, made = _everything(locked), _everything(built)
    found = []
    for (kind, name), (version, sha256) in sorted(pinned.items()):
        now = made.get((kind, name))
        bare = name.split(" ")[0]  # a Python entry's name is "NAME (ENVIRONMENT)"
        if now is None or free_names([bare]) & names:
            continue
        if now[0] != version or (sha256 and now[1] and now[1] != sha256):
            what = now[0] if now[0] != version else f"{now[0]} from another file"
            found.append(
                f"{kind} {name} moved to {what} from the locked {version} "
                f"(name it with --upgrade {bare} to let it move)"
            )
    return found


def _everything(stages: Sequence[LockedStage]) -> dict[tuple[str, str], tuple[str, str]]:
    """Every Debian package and Python distribution the stages installed, as the last
    stage that installed it has it."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for stage in stages:
        for kind, entries in _versions(stage):
            found.update({(kind, name): value for name, value in entries.items()})
    return found
