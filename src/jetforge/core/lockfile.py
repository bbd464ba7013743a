"""The lockfile of a chain (docs/builds.md, "Lockfile"): the platform, the base image, and
per stage its variant, key, image id and what it installed, as a value and as JSON.

Pure: the inventories come in from :mod:`jetforge.lock`, which ran the collector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
