"""``jetforge docs packages``: generate ``docs/packages.md`` from the shipped package tree
(:mod:`jetforge.ops.docs` makes the page)."""

from __future__ import annotations

from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, path_value
from jetforge.errors import UsageError
from jetforge.ops.docs import check_page_output, packages_page, read_page, write_page

DEFAULT_PAGE = "docs/packages.md"  # what --check compares without --output


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "docs",
        help=summary("docs"),
        description="Generate docs/packages.md (name, variants, platforms, tier, notes) from "
        "the shipped package tree.",
    )
    parser.add_argument("topic", choices=("packages",), help="what to generate")
    parser.add_argument(
        "--output", type=path_value, metavar="FILE", help="write to FILE instead of stdout"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 when FILE (default: {DEFAULT_PAGE} of the working directory) differs "
        "from what would be generated",
    )
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print or write the page; with ``--check``, compare it with the file instead."""
    args = session.args
    if args.output and not args.check:
        check_page_output(session.cwd / args.output)  # before the tree is read
    text = packages_page(session)
    if args.check:
        shown = args.output or DEFAULT_PAGE
        path = session.cwd / shown
        if not args.output and not path.is_file():
            raise UsageError(
                f"docs --check: no {DEFAULT_PAGE} in {session.cwd} (run it in a jetforge "
                "checkout, or name the page with --output FILE)"
            )
        if read_page(path) != text:
            print(
                f"jetforge: {shown} is out of date; regenerate it with: "
                f"jetforge docs packages --output {shown}",
                file=session.stderr,
            )
            return 1
        session.note(f"{shown} is current")
        return 0
    if args.output:
        write_page(session.cwd / args.output, text)
        session.note(f"wrote {args.output}")
    else:
        print(text, end="", file=session.stdout)
    return 0
