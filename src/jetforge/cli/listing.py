"""``jetforge list``: one variant name per line, sorted."""

from __future__ import annotations

import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_package_options
from jetforge.errors import UsageError


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "list",
        help=summary("list"),
        description="Print the variants of the package tree available on this platform, one "
        "per line, sorted (versions as versions); PATTERNs (shell wildcards) match names "
        "and aliases. A PATTERN that matches nothing is an error with the closest names.",
    )
    parser.add_argument("patterns", nargs="*", metavar="PATTERN", help="names or wildcards")
    parser.add_argument(
        "--all", action="store_true", help="also variants unavailable here, with the reason"
    )
    parser.add_argument("--json", action="store_true", help="print JSON objects")
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 when any package definition is broken"
    )
    add_package_options(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print the matching variants."""
    args = session.args
    listing = session.listing  # from the discovery index: no variant decoded
    session.report_problems(each=True)
    if args.json:
        from jetforge.cli.variants import variant_json  # here, not at the top: start-up time

        variants = session.catalog.match(args.patterns or ["*"], include_unavailable=args.all)
        print(json.dumps([variant_json(v) for v in variants], indent=2), file=session.stdout)
    else:
        lines = [
            f"{name}\t(unavailable: {unavailable})" if unavailable else name
            for name, unavailable, _ in listing.match(
                args.patterns or ["*"], include_unavailable=args.all
            )
        ]
        if lines:
            print("\n".join(lines), file=session.stdout)
    if any(not listing.match([pattern], include_unavailable=args.all) for pattern in args.patterns):
        from jetforge.cli.variants import check_matched  # a pattern matched nothing: rare

        check_matched(session.catalog, args.patterns, include_unavailable=args.all)
    if args.strict and listing.problems:
        raise UsageError(f"{len(listing.problems)} package definition(s) have errors")
    return 0
