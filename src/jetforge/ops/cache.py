"""The local package cache's commands (``jetforge cache serve|status|stop|export|import``,
docs/builds.md, "Package cache"): the server started in the foreground or the background, found and
stopped, and its store counted, exported to a bundle and filled from one. Notes go to the
workspace; the CLI prints the results."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from jetforge.cache.bundle import Inventory, count_paths, export_bundle, format_size, take_inventory
from jetforge.cache.bundle_import import import_bundle
from jetforge.cache.control import (
    DEFAULT_PORT,
    CachePaths,
    ensure_credentials,
    fetch_health,
    is_alive,
    read_state,
    server_argv,
    start_background,
    stop_server,
)
from jetforge.errors import UsageError
from jetforge.host.process import run_attached
from jetforge.ops.workspace import Workspace

__all__ = [
    "DEFAULT_PORT",
    "CacheStatus",
    "cache_status",
    "export_cache",
    "import_cache",
    "serve_cache",
    "stop_cache",
]


@dataclass(frozen=True, slots=True)
class CacheStatus:
    """Whether the server answers, where it serves or served, and what its store holds."""

    running: bool
    url: str | None
    pid: int | None
    store: Path
    log: Path
    credentials: Path
    inventory: Inventory

    @property
    def disk_used(self) -> str:
        """The store's size for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
        return format_size(self.inventory.size)

    def to_json(self) -> dict[str, object]:
        """JSON-ready data (``cache status --json``)."""
        return {
            "running": self.running,
            "url": self.url,
            "pid": self.pid,
            "store": str(self.store),
            "log": str(self.log),
            "credentials": str(self.credentials),
            **self.inventory.to_json(),
        }


def store_of(workspace: Workspace, given: str | None, *, must_exist: bool = False) -> Path:
    """``--dir`` (``given``), else the store of the running (or last) server, else the
    default one. A ``--dir`` that is there but no directory (or, ``must_exist``, is not
    there) is a usage error."""
    if given:
        store = (workspace.cwd / given).resolve()
        if (store.exists() or must_exist) and not store.is_dir():
            raise UsageError(f"--dir: {store} is not a directory (valid: a package cache store)")
        return store
    paths = CachePaths.under(workspace.cache_home)
    state = read_state(paths)
    return state.store if state is not None else paths.default_store


def serve_cache(
    workspace: Workspace, given: str | None, host: str, port: int, *, background: bool
) -> tuple[int, str]:
    """Run the server: in the foreground until Ctrl-C (its exit code), or in the
    background (its address once it listens); one that already runs is not started
    again. The exit code and the address to print ("" for none)."""
    if importlib.util.find_spec("pypiserver") is None:
        raise UsageError(
            "the package cache needs pypiserver: pip install 'jetforge[cache]' "
            "(scripts/setup installs it)"
        )
    paths = CachePaths.under(workspace.cache_dir)  # checked: the server keeps its state there
    state = read_state(paths)
    if state is not None and is_alive(state.pid):
        workspace.note(f"the package cache already runs at {state.url} (pid {state.pid})")
        return 0, state.url
    store = (workspace.cwd / given).resolve() if given else paths.default_store
    ensure_credentials(paths)
    argv = server_argv(sys.executable, paths, store, host, port)
    if not background:
        workspace.note(f"serving {store} on {host}:{port}; Ctrl-C stops it")
        return run_attached(argv, env=workspace.env), ""
    state = start_background(argv, paths, workspace.env)
    workspace.note(
        f"the package cache runs at {state.url} (pid {state.pid}, store {store}, "
        f"log {paths.log_file})"
    )
    return 0, state.url


def cache_status(workspace: Workspace, given: str | None) -> CacheStatus:
    """What :class:`CacheStatus` says, for the store ``given`` (``--dir``) or the server's."""
    paths = CachePaths.under(workspace.cache_home)
    state = read_state(paths)
    running = state is not None and is_alive(state.pid) and fetch_health(state.url) is not None
    store = store_of(workspace, given)
    return CacheStatus(
        running=running,
        url=state.url if state else None,
        pid=state.pid if state and running else None,
        store=store,
        log=paths.log_file,
        credentials=paths.credentials_file,
        inventory=take_inventory(store),
    )


def stop_cache(workspace: Workspace) -> None:
    """Stop the background server (builds then leave the local cache out, with a warning)."""
    stopped = stop_server(CachePaths.under(workspace.cache_home))
    workspace.note(
        f"stopped the package cache (pid {stopped})" if stopped else "it was not running"
    )


def export_cache(workspace: Workspace, given: str | None, bundle: Path, platform: str) -> None:
    """Write the store's files of the platforms matching ``platform`` into ``bundle``."""
    store = store_of(workspace, given, must_exist=True)
    counted = export_bundle(store, bundle, platform)
    workspace.note(f"exported {counted.wheels} wheels and {counted.tarballs} tarballs from {store}")


def import_cache(workspace: Workspace, given: str | None, bundle: Path) -> None:
    """Add the files of ``bundle`` that the store lacks (all checked first)."""
    store = store_of(workspace, given)
    result = import_bundle(bundle, store)
    for path in result.conflicts:
        workspace.warn(f"kept the store's own {path}: the bundle's copy differs")
    added = count_paths(result.added)
    workspace.note(
        f"imported {added.wheels} wheels and {added.tarballs} tarballs into {store} "
        f"({len(result.present)} already there)"
    )
