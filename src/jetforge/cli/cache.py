"""``jetforge cache``: the local wheel and tarball cache (SPEC section 10)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from jetforge.cache.bundle import count_paths, export_bundle, format_size, take_inventory
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
from jetforge.cli.commands import summary
from jetforge.cli.session import Session
from jetforge.errors import UsageError
from jetforge.host.process import run_attached


def register(commands: Any) -> None:
    """Add the subcommand and its actions."""
    parser = commands.add_parser(
        "cache",
        help=summary("cache"),
        description="Serve, inspect, stop, export and import the local package cache: a "
        "package index for wheels (pypiserver) and a tarball store on one port; downloads "
        "are open, uploads need the cache's credentials.",
    )
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION")
    actions.required = True
    serving = actions.add_parser("serve", help="run the cache server", description=serve.__doc__)
    serving.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    serving.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serving.add_argument("--dir", metavar="DIR", help="store directory (default: in the cache dir)")
    serving.add_argument(
        "--background", action="store_true", help="run detached with a pid file and a log"
    )
    serving.set_defaults(handler=serve)
    status_parser = actions.add_parser(
        "status", help="is it running, what it holds", description=status.__doc__
    )
    status_parser.add_argument("--dir", metavar="DIR", help="store directory to count")
    status_parser.add_argument("--json", action="store_true", help="as JSON")
    status_parser.set_defaults(handler=status)
    stop_parser = actions.add_parser("stop", help="stop the cache server", description=stop.__doc__)
    stop_parser.set_defaults(handler=stop)
    export = actions.add_parser(
        "export", help="write a bundle of the store", description=export_command.__doc__
    )
    export.add_argument("file", metavar="FILE", help="bundle to write (.tar, .tar.gz)")
    export.add_argument("--dir", metavar="DIR", help="store directory to export")
    export.add_argument(
        "--platform", default="*", metavar="PATTERN", help="only these platforms (shell pattern)"
    )
    export.set_defaults(handler=export_command)
    imported = actions.add_parser(
        "import", help="add a bundle to the store", description=import_command.__doc__
    )
    imported.add_argument("file", metavar="FILE", help="bundle made by 'jetforge cache export'")
    imported.add_argument("--dir", metavar="DIR", help="store directory to import into")
    imported.set_defaults(handler=import_command)


def _store(session: Session, paths: CachePaths) -> Path:
    """``--dir``, else the store of the running (or last) server, else the default."""
    if getattr(session.args, "dir", None):
        given: str = session.args.dir
        return (session.cwd / given).resolve()
    state = read_state(paths)
    return state.store if state is not None else paths.default_store


def serve(session: Session) -> int:
    """Run the package index and tarball store, in the foreground (Ctrl-C stops it) or with
    --background (pid and address in server.json, output in server.log, under the cache dir).
    """
    args = session.args
    if importlib.util.find_spec("pypiserver") is None:
        raise UsageError(
            "the package cache needs pypiserver: pip install 'jetforge[cache]' "
            "(scripts/setup installs it)"
        )
    paths = CachePaths.under(session.cache_dir)  # checked: the server keeps its state there
    state = read_state(paths)
    if state is not None and is_alive(state.pid):
        session.note(f"the package cache already runs at {state.url} (pid {state.pid})")
        print(state.url, file=session.stdout)
        return 0
    store = (session.cwd / args.dir).resolve() if args.dir else paths.default_store
    ensure_credentials(paths)
    argv = server_argv(sys.executable, paths, store, args.host, args.port)
    if not args.background:
        session.note(f"serving {store} on {args.host}:{args.port}; Ctrl-C stops it")
        return run_attached(argv, env=session.env)
    state = start_background(argv, paths, session.env)
    session.note(
        f"the package cache runs at {state.url} (pid {state.pid}, store {store}, "
        f"log {paths.log_file})"
    )
    print(state.url, file=session.stdout)
    return 0


def status(session: Session) -> int:
    """Whether the server answers, where it is, and how many wheels and tarballs the store
    holds on how much disk."""
    paths = CachePaths.under(session.cache_home)
    state = read_state(paths)
    running = state is not None and is_alive(state.pid) and fetch_health(state.url) is not None
    store = _store(session, paths)
    inventory = take_inventory(store)
    data: dict[str, object] = {
        "running": running,
        "url": state.url if state else None,
        "pid": state.pid if state and running else None,
        "store": str(store),
        "log": str(paths.log_file),
        "credentials": str(paths.credentials_file),
        **inventory.to_json(),
    }
    if session.args.json:
        print(json.dumps(data, indent=2), file=session.stdout)
        return 0
    if running and state:
        line = f"running at {state.url} (pid {state.pid})"
    elif state:
        line = f"not running (last served at {state.url}; 'jetforge cache serve --background')"
    else:
        line = "never started ('jetforge cache serve --background' starts it)"
    lines = [
        f"package cache: {line}",
        f"store: {store}",
        f"wheels: {inventory.wheels}, tarballs: {inventory.tarballs}, "
        f"other packages: {inventory.other}, disk used: {format_size(inventory.size)}",
        *(f"  {name}: {w} wheels, {t} tarballs" for name, w, t in inventory.platforms),
        f"log: {paths.log_file}",
    ]
    print("\n".join(lines), file=session.stdout)
    return 0


def stop(session: Session) -> int:
    """Stop the background server; builds then leave the local cache out, with a warning."""
    stopped = stop_server(CachePaths.under(session.cache_home))
    session.note(f"stopped the package cache (pid {stopped})" if stopped else "it was not running")
    return 0


def export_command(session: Session) -> int:
    """Write the store's wheels and tarballs, with a manifest of their sha256, into FILE
    (gzip-compressed when FILE ends in .gz or .tgz)."""
    store = _store(session, CachePaths.under(session.cache_home))
    bundle = Path(session.args.file)
    counted = export_bundle(store, bundle, session.args.platform)
    session.note(f"exported {counted.wheels} wheels and {counted.tarballs} tarballs from {store}")
    print(bundle, file=session.stdout)
    return 0


def import_command(session: Session) -> int:
    """Check every file of the bundle FILE against its manifest, then add the files the
    store lacks; a running server serves them at once."""
    store = _store(session, CachePaths.under(session.cache_home))
    result = import_bundle(Path(session.args.file), store)
    for path in result.conflicts:
        session.warn(f"kept the store's own {path}: the bundle's copy differs")
    added = count_paths(result.added)
    session.note(
        f"imported {added.wheels} wheels and {added.tarballs} tarballs into {store} "
        f"({len(result.present)} already there)"
    )
    return 0
