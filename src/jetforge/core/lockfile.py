"""The lockfile of a chain (docs/builds.md, "Lockfile"): the platform, the base image, and
per stage its variant, key, image id and what it installed, as a value and as JSON.

Pure: the inventories come in from :mod:`jetforge.lock`, which ran the collector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jetforge import __version__
from jetforge.core.inventory import Inventory, installed
from jetforge.core.names import base_name

if TYPE_CHECKING:
    from jetforge.core.plan import Plan

LOCK_FORMAT = 1
LOCK_FILE = "jetforge.lock.json"


@dataclass(frozen=True, slots=True)
class LockedStage:
    """One stage as built: what it added to its parent image and what it removed.

    ``inventoried`` is false when the image could not be listed (no ``sh`` in it); the
    next stage is then compared with the nearest image that could."""

    index: int
    variant: str
    key: str
    image: str
    image_id: str
    added: Inventory
    removed: Inventory
    inventoried: bool = True


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
            "installed": _contents(lock.base),
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
                "installed": _contents(stage.added),
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


def _contents(inventory: Inventory) -> dict[str, object]:
    return {
        "deb": [
            {"name": deb.name, "version": deb.version, "architecture": deb.architecture}
            for deb in inventory.debs
        ],
        "python": [
            {"name": found.name, "version": found.version, "environment": found.environment}
            for found in inventory.distributions
        ],
        "interpreters": [
            {"path": one.path, "version": one.version, "environment": one.environment}
            for one in inventory.interpreters
        ],
    }


def _sources(inventory: Inventory) -> list[dict[str, str]]:
    found = []
    for source in inventory.sources:
        record = {"name": source.name, "url": source.url, "file": source.file}
        record.update({"sha256": source.sha256} if source.sha256 else {})
        record.update({"commit": source.commit} if source.commit else {})
        found.append(record)
    return found


def plan_mismatch(locked: Mapping[str, Any], plan: Plan, base_id: str) -> str:
    """Why ``plan`` on the base image ``base_id`` is not the chain ``locked`` pins (empty
    when it is): another chain or platform, or another base image."""
    chain = list(plan.chain)
    if locked.get("chain") != chain:
        return f"it pins the chain {locked.get('chain')}, this build plans {chain}"
    platform = plan.platform.to_json()
    if locked.get("platform") != platform:
        wanted = (locked.get("platform") or {}).get("label", "another platform")
        return f"it pins the platform {wanted}, this build is for {plan.platform.label}"
    base = locked.get("base") or {}
    if base.get("id") and base.get("id") != base_id:
        digests = base.get("digests") or []
        how = f"--base {digests[0]}" if digests else "the base image it was built on"
        return (
            f"it pins the base image {base.get('reference')} with id {str(base['id'])[:19]}, "
            f"this engine's is {base_id[:19]} (build with {how})"
        )
    return ""


def lock_differences(locked: Mapping[str, Any], built: Mapping[str, Any]) -> list[str]:
    """What a build (``built``: its lock data) installed otherwise than ``locked`` pins,
    one line per package, stage by stage; empty when it is the same."""
    found: list[str] = []
    for pinned, made in zip(locked.get("stages") or [], built.get("stages") or [], strict=False):
        where = f"stage {made.get('index')} ({made.get('variant')})"
        for kind, pins, have in _installed_pairs(pinned, made):
            for name in sorted(pins.keys() | have.keys()):
                if name not in have:
                    found.append(f"{where}: {kind} {name} {pins[name]} (locked) was not installed")
                elif name not in pins:
                    found.append(f"{where}: {kind} {name} {have[name]} is not in the lock")
                elif pins[name] != have[name]:
                    found.append(f"{where}: {kind} {name} is {have[name]}, locked {pins[name]}")
    return found


def _installed_pairs(
    pinned: Mapping[str, Any], made: Mapping[str, Any]
) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(kind, locked versions, built versions) for Debian packages and Python
    distributions (by name, and environment when it is not the only one)."""

    def debs(stage: Mapping[str, Any]) -> dict[str, str]:
        return {d["name"]: d["version"] for d in (stage.get("installed") or {}).get("deb", [])}

    def python(stage: Mapping[str, Any]) -> dict[str, str]:
        items = (stage.get("installed") or {}).get("python", [])
        return {f"{d['name']} ({d['environment']})": d["version"] for d in items}

    return [("deb", debs(pinned), debs(made)), ("python", python(pinned), python(made))]
