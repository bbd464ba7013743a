"""A build on the farm: connect the workers ``--workers`` names, check which hold the base
image, and let :class:`jetforge.ops.farm.schedule.Farm` run the plans; the shared registry is
the first configured one (``registries`` in jetforge.toml, ``JETFORGE_REGISTRIES``), and a
build refuses to start when it does not answer (:func:`reach_registry`)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from jetforge.engine.table import engine_class
from jetforge.errors import EngineUnavailableError, UsageError
from jetforge.host.registry import (
    RegistryLocation,
    probe_registry,
    registry_locations,
    version_url,
)
from jetforge.host.workers import LOCAL, choose_workers
from jetforge.ops.farm.graph import Ended, Site
from jetforge.ops.farm.schedule import Farm, Store

if TYPE_CHECKING:
    from jetforge.core.plan import Plan, Stage
    from jetforge.engine.base import Engine
    from jetforge.ops.executor import BuildOptions
    from jetforge.ops.workspace import Workspace
    from jetforge.reporter import Reporter


def farm_chains(
    names: Sequence[str],
    workspace: Workspace,
    local: Engine,
    base: tuple[str, str],
    plans: Sequence[Plan],
    options: Sequence[BuildOptions],
    reporting: Callable[[], AbstractContextManager[Reporter]],
) -> Generator[Ended, None, None]:
    """Build ``plans`` on the workers called ``names``; ``local`` is the command's engine,
    ``base`` the base image's reference and the id the stage keys were computed from."""
    store = registry_store(workspace)
    sites = connect_sites(names, workspace, local, base)
    with reporting() as reporter:
        yield from Farm(plans, sites, options, store, reporter, base[1]).run()


def check_farm(names: Sequence[str], workspace: Workspace) -> None:
    """Refuse unknown worker names and a farm without a registry, before anything runs."""
    choose_workers(names, workspace.settings.workers, "")
    registry_store(workspace)


REGISTRY_DEADLINE = 10.0  # seconds the farm's registry has to answer before a build


def farm_registry(workspace: Workspace) -> RegistryLocation:
    """The registry the workers pass stage images through: the first configured one."""
    locations = registry_locations(workspace.settings.registries, workspace.env)
    if not locations:
        raise UsageError(
            "--workers: several workers pass stage images through a registry; set "
            "'registries' in jetforge.toml or JETFORGE_REGISTRIES"
        )
    return locations[0]


def reach_registry(workspace: Workspace) -> None:
    """Refuse a farm build whose registry does not answer, before any stage: every stage
    a worker builds goes there, and every stage built elsewhere comes from there.
    (A TLS handshake this host's trust refuses counts as an answer: the engines push and
    pull with their own trust.)"""
    location = farm_registry(workspace)
    url = version_url(location)
    probe = probe_registry(url, REGISTRY_DEADLINE)
    if probe.problem and not probe.tls:
        raise UsageError(
            f"--workers: the farm's registry {location} ({url}): {probe.problem}; the "
            "workers pass stage images through it: start it, or set a reachable one first "
            "in 'registries' (jetforge.toml) or JETFORGE_REGISTRIES"
        )


def registry_store(workspace: Workspace) -> Store:
    """Where stage images go between workers: the first configured registry, under the
    names a later build looks them up by."""
    location = farm_registry(workspace)

    def store(stage: Stage) -> str:
        return str(location.repository(stage.image.name).with_tag(stage.image.tag))

    return store


def connect_sites(
    names: Sequence[str], workspace: Workspace, local: Engine, base: tuple[str, str]
) -> list[Site]:
    """The workers, connected (one that does not answer is left out with a warning), and
    whether each holds the base image with the id the stage keys were computed from."""
    sites: list[Site] = []
    reference, base_id = base
    for worker in choose_workers(names, workspace.settings.workers, local.name):
        if worker.name == LOCAL:
            engine = local
        else:
            try:
                engine = engine_class(worker.engine).at(worker.endpoint, workspace.env)
            except EngineUnavailableError as error:
                workspace.warn(f"worker {worker.name}: {error.problem}; building without it")
                continue
        found = engine.inspect(reference)
        has_base = found is not None and found.id == base_id
        if not has_base:
            workspace.note(
                f"worker {worker.name} has no {reference} with id {base_id[:19]}: "
                "it builds no first stage"
            )
        sites.append(Site(worker, engine, has_base))
    if not sites:
        raise UsageError("--workers: none of the workers answers")
    return sites
