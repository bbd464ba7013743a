"""The build farm's values: a worker with its engine, the graph of stages by key, and a
chain's end."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jetforge.core.plan import Plan, Stage
    from jetforge.engine.base import Engine
    from jetforge.errors import StageFailedError
    from jetforge.host.workers import Worker
    from jetforge.ops.results import StageResult, Summary


@dataclass(frozen=True, slots=True)
class Site:
    """A worker with its connected engine; ``has_base``: it holds the base image the
    plans' keys were computed from."""

    worker: Worker
    engine: Engine
    has_base: bool = True


@dataclass
class Node:
    """One stage key of the graph, built once under the names of its first plan."""

    key: str
    plan: int
    stage: Stage
    parent: str | None
    height: int = 1  # stages from here to the end of the longest chain through it
    result: StageResult | None = None
    site: str = ""  # the worker that built or reused it
    failure: StageFailedError | None = None
    tried: set[str] = field(default_factory=set)
    holders: set[str] = field(default_factory=set)  # workers known to hold its image
    pushed: bool = False  # its image is in the shared registry
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True, slots=True)
class Ended:
    """One chain's end: its summary, or the failure that stopped it."""

    plan: Plan
    summary: Summary | None = None
    failure: StageFailedError | None = None


def stage_graph(plans: Sequence[Plan]) -> dict[str, Node]:
    """Every stage of ``plans`` by key, with its parent's key and its height."""
    nodes: dict[str, Node] = {}
    for number, plan in enumerate(plans):
        parent: str | None = None
        for stage in plan.stages:
            nodes.setdefault(stage.key, Node(stage.key, number, stage, parent))
            parent = stage.key
    for plan in plans:
        for height, stage in enumerate(reversed(plan.stages), start=1):
            nodes[stage.key].height = max(nodes[stage.key].height, height)
    return nodes
