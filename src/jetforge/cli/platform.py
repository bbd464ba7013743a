"""``jetforge platform``: the detected platform and which fields were overridden."""

from __future__ import annotations

import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, target_help


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "platform",
        help=summary("platform"),
        description="Print the platform jetforge plans for: architecture, L4T/JetPack, CUDA, "
        "Python, distro and GPU architectures, detected on this machine (or a --target "
        "preset), marking the fields that environment variables override.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument("--target", metavar="NAME", help=target_help("show"))
    parser.add_argument("--distro", metavar="DISTRO", help="distro release, e.g. ubuntu:22.04")
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print the platform."""
    data = session.platform.to_json()
    if session.args.json:
        print(json.dumps(data, indent=2), file=session.stdout)
        return 0
    overridden = set(session.platform.overridden)
    for key, value in data.items():
        if key in ("overridden", "warnings"):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        mark = "  (overridden)" if key in overridden else ""
        print(f"{key + ':':<18}{'-' if shown is None else shown}{mark}", file=session.stdout)
    return 0
