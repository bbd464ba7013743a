"""``jetforge show``: everything known about the matching variants."""

from __future__ import annotations

import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_package_options
from jetforge.cli.variants import check_unknown, variant_json


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "show",
        help=summary("show"),
        description="Print everything known about the variants that PATTERNs (shell "
        "wildcards) match: every key of their definitions, their files and whether they "
        "are available on this platform.",
    )
    parser.add_argument("patterns", nargs="*", metavar="PATTERN", help="names or wildcards")
    parser.add_argument("--json", action="store_true", help="print JSON objects")
    add_package_options(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print the matching variants."""
    args = session.args
    catalog = session.catalog
    session.report_problems(each=False)
    patterns = args.patterns or ["*"]
    check_unknown(catalog, patterns)
    variants = catalog.match(patterns, include_unavailable=True)
    if args.json:
        print(json.dumps([variant_json(v) for v in variants], indent=2), file=session.stdout)
        return 0
    for number, variant in enumerate(variants):
        if number:
            print(file=session.stdout)
        for key, value in variant_json(variant).items():
            if value in ("", [], {}, None, False) and key != "available":
                continue
            if key == "format" and value == "jetforge":
                continue
            if isinstance(value, list):
                value = ", ".join(value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            print(f"{key + ':':<20}{value}", file=session.stdout)
    return 0
