"""``jetforge doctor``: check the engine, builder, GPU access, disk, registries, caches
and platform; one line per check, with the fix for what is wrong.

Exit 1 when something stops builds (no engine, a stopped daemon, a full disk, a bad
platform override), else 0.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option, path_value
from jetforge.ops.doctor import Check, exit_code, host_root, iter_checks


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "doctor",
        help=summary("doctor"),
        description="Check what builds and runs need; print one line per check (ok, "
        "warning or problem) with the fix. Exit 1 when something stops builds.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of checks")
    add_engine_option(parser)
    parser.add_argument("--host-root", type=path_value, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Run every check; print them as they complete (or as JSON at the end)."""
    checks: list[Check] = []
    root = host_root(session.args.host_root, session.env)
    for check in iter_checks(session, session.args.engine, root):
        checks.append(check)
        if not session.args.json:
            print(check.line(), file=session.stdout, flush=True)
    if session.args.json:
        print(json.dumps([check.to_json() for check in checks], indent=2), file=session.stdout)
    code = exit_code(checks)
    if code:
        session.note("something above stops builds; apply its fix and run 'jetforge doctor' again")
    return code
