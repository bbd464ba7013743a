"""``jetforge lock PACKAGE… [--file FILE] [--upgrade NAME…]``: write or refresh a lockfile.

Without FILE (default ``jetforge.lock.json``) it is ``jetforge build PACKAGE… --lock FILE``.
With one, the build takes FILE's pins (docs/builds.md, "Locked builds") except for what
``--upgrade`` names, so only those move; anything else FILE pins that would move fails the
refresh, naming it, and FILE is left as it was. Stages the chain did not have are built
free and added. What is needed is built; the rest is reused.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from jetforge.cli.building import BUILD_DEFAULTS, render_builds, request_from
from jetforge.cli.commands import summary
from jetforge.cli.session import (
    Session,
    add_engine_option,
    add_image_options,
    add_package_options,
    add_stage_options,
    path_value,
    split_list,
)
from jetforge.cli.talk import reporter_for
from jetforge.core.lockfile import LOCK_FILE
from jetforge.ops.chains import build_chains


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "lock",
        help=summary("lock"),
        description="Build PACKAGEs as one chain and write its lockfile to FILE; when FILE "
        "exists, build with its pins so that only what --upgrade names moves.",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="packages of the chain")
    parser.add_argument(
        "--file",
        type=path_value,
        default=LOCK_FILE,
        metavar="FILE",
        help=f"the lockfile to write or refresh (default {LOCK_FILE})",
    )
    parser.add_argument(
        "--upgrade",
        action="append",
        default=[],
        metavar="NAMES",
        help="let these move: packages, Debian packages, Python distributions, or 'base' "
        "(comma-separated, repeatable)",
    )
    add_image_options(parser)
    parser.add_argument("--logs", type=path_value, metavar="DIR", help="log directory")
    add_stage_options(parser, flags_help="extra engine flags for every stage")
    add_engine_option(parser)
    add_package_options(parser)
    parser.set_defaults(handler=run, **BUILD_DEFAULTS)


def run(session: Session) -> int:
    """Build with the pins of ``--file`` (when it exists) and write it."""
    args = session.args
    path = Path(args.file)
    exists = (session.cwd / path).is_file()
    request = replace(
        request_from(session),
        lock_file=path,
        lock_option="--file",
        locked=path if exists else None,
        refresh=exists,
        upgrade=tuple(split_list(args.upgrade)),
    )
    if request.upgrade and not exists:
        session.note(f"{session.cwd / path} does not exist yet: --upgrade has nothing to move")
    session.resume = request.resume
    return render_builds(session, build_chains(request, session, lambda: reporter_for(session)))
