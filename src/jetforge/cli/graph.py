"""``jetforge graph``: the resolved dependency graph."""

from __future__ import annotations

from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_package_options
from jetforge.core.graph import FORMATS, render_graph


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "graph",
        help=summary("graph"),
        description="Resolve PACKAGEs into one chain and print it in build order with each "
        "variant's dependencies, as text, Graphviz dot, Mermaid or JSON.",
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="packages to resolve")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    add_package_options(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print the graph."""
    resolution = session.resolve(session.args.packages)
    print(render_graph(resolution, session.args.format), file=session.stdout)
    return 0
