"""``jetforge cache``: the local wheel and tarball cache (docs/builds.md, "Package cache")."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, path_value
from jetforge.ops.cache import (
    DEFAULT_PORT,
    cache_status,
    export_cache,
    import_cache,
    serve_cache,
    stop_cache,
)


def port_number(text: str) -> int:
    """The ``type`` of ``--port``: a whole number from 0 (any free port) to 65535."""
    try:
        port = int(text, 10)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port (valid: 1 to 65535, or 0 for any free one)"
        )
    return port


def listen_host(text: str) -> str:
    """The ``type`` of ``--host``: an address or host name, not empty, with no whitespace
    or control characters (the server would take it as something else)."""
    if not text or any(character.isspace() or not character.isprintable() for character in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an address to listen on (valid: e.g. 127.0.0.1, 0.0.0.0, ::1)"
        )
    return text


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
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: any)",
    )
    serving.add_argument(
        "--host",
        type=listen_host,
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1)",
    )
    serving.add_argument(
        "--dir", type=path_value, metavar="DIR", help="store directory (default: in the cache dir)"
    )
    serving.add_argument(
        "--background", action="store_true", help="run detached with a pid file and a log"
    )
    serving.set_defaults(handler=serve)
    status_parser = actions.add_parser(
        "status", help="is it running, what it holds", description=status.__doc__
    )
    status_parser.add_argument(
        "--dir", type=path_value, metavar="DIR", help="store directory to count"
    )
    status_parser.add_argument("--json", action="store_true", help="as JSON")
    status_parser.set_defaults(handler=status)
    stop_parser = actions.add_parser("stop", help="stop the cache server", description=stop.__doc__)
    stop_parser.set_defaults(handler=stop)
    export = actions.add_parser(
        "export", help="write a bundle of the store", description=export_command.__doc__
    )
    export.add_argument(
        "file", type=path_value, metavar="FILE", help="bundle to write (.tar, .tar.gz)"
    )
    export.add_argument("--dir", type=path_value, metavar="DIR", help="store directory to export")
    export.add_argument(
        "--platform", default="*", metavar="PATTERN", help="only these platforms (shell pattern)"
    )
    export.set_defaults(handler=export_command)
    imported = actions.add_parser(
        "import", help="add a bundle to the store", description=import_command.__doc__
    )
    imported.add_argument(
        "file", type=path_value, metavar="FILE", help="bundle made by 'jetforge cache export'"
    )
    imported.add_argument(
        "--dir", type=path_value, metavar="DIR", help="store directory to import into"
    )
    imported.set_defaults(handler=import_command)


def serve(session: Session) -> int:
    """Run the package index and tarball store, in the foreground (Ctrl-C stops it) or with
    --background (pid and address in server.json, output in server.log, under the cache dir).
    """
    args = session.args
    code, url = serve_cache(session, args.dir, args.host, args.port, background=args.background)
    if url:
        print(url, file=session.stdout)
    return code


def status(session: Session) -> int:
    """Whether the server answers, where it is, and how many wheels and tarballs the store
    holds on how much disk."""
    found = cache_status(session, session.args.dir)
    if session.args.json:
        print(json.dumps(found.to_json(), indent=2), file=session.stdout)
        return 0
    if found.running:
        line = f"running at {found.url} (pid {found.pid})"
    elif found.url:
        line = f"not running (last served at {found.url}; 'jetforge cache serve --background')"
    else:
        line = "never started ('jetforge cache serve --background' starts it)"
    inventory = found.inventory
    lines = [
        f"package cache: {line}",
        f"store: {found.store}",
        f"wheels: {inventory.wheels}, tarballs: {inventory.tarballs}, "
        f"other packages: {inventory.other}, disk used: {found.disk_used}",
        *(f"  {name}: {w} wheels, {t} tarballs" for name, w, t in inventory.platforms),
        f"log: {found.log}",
    ]
    print("\n".join(lines), file=session.stdout)
    return 0


def stop(session: Session) -> int:
    """Stop the background server; builds then leave the local cache out, with a warning."""
    stop_cache(session)
    return 0


def export_command(session: Session) -> int:
    """Write the store's wheels and tarballs, with a manifest of their sha256, into FILE
    (gzip-compressed when FILE ends in .gz or .tgz)."""
    bundle = Path(session.args.file)
    export_cache(session, getattr(session.args, "dir", None), bundle, session.args.platform)
    print(bundle, file=session.stdout)
    return 0


def import_command(session: Session) -> int:
    """Check every file of the bundle FILE against its manifest, then add the files the
    store lacks; a running server serves them at once."""
    import_cache(session, getattr(session.args, "dir", None), Path(session.args.file))
    return 0
