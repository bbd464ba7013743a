"""``jetforge explain``: why each variant of the chain was chosen."""

from __future__ import annotations

from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_package_options
from jetforge.core.resolve import COMMAND_LINE


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "explain",
        help=summary("explain"),
        description="Resolve PACKAGEs into one chain and say, for each variant, why it was "
        "chosen and why each alternative was rejected.",
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="packages to resolve")
    add_package_options(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print one block per variant of the chain, in build order."""
    resolution = session.resolve(session.args.packages)
    out = session.stdout
    for selection in resolution.selections:
        print(f"{selection.variant.name}: {selection.reason}", file=out)
        for need in selection.needs:
            origin = (
                "requested on the command line"
                if need.origin == COMMAND_LINE
                else (f"required by {need.origin}")
            )
            print(f"  wanted as '{need.requirement}', {origin}", file=out)
        for name, why in selection.rejected:
            print(f"  rejected {name}: {why}", file=out)
    return 0
