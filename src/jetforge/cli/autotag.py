"""``jetforge autotag``: print a compatible image for a package (docs/cli.md, "autotag").

Order: local images, then the configured registries (pulled unless ``--no-pull``), then a
build (unless ``--no-build``). Only the image reference (or ``--json`` object) goes to stdout.
"""

from __future__ import annotations

import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option, add_package_options
from jetforge.cli.talk import TerminalConversation, build_command_line, reporter_for
from jetforge.ops.finding import FindRequest, find_or_build


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "autotag",
        help=summary("autotag"),
        description="Print one image reference for NAME that runs on this platform: a local "
        "image, else one from the configured registries (pulled), else a new build. The "
        "reasons go to stderr.",
    )
    parser.add_argument("name", metavar="NAME", help="package, e.g. pytorch or pytorch:2.8")
    parser.add_argument("--no-pull", action="store_true", help="do not pull a registry image")
    parser.add_argument("--no-build", action="store_true", help="do not build when none is found")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument("-y", "--yes", action="store_true", help="answer yes to every question")
    add_engine_option(parser)
    add_package_options(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Find, pull or build the image and print its reference."""
    args = session.args
    request = FindRequest(
        args.name,
        pull=not args.no_pull,
        build=not args.no_build,
        engine=args.engine,
        resume=build_command_line(session, args.name.strip(), args.engine),
    )
    conversation = TerminalConversation(session, yes=args.yes)
    found = find_or_build(request, session, conversation, lambda: reporter_for(session))
    session.note(f"{found.reference}: {found.reason}")
    if args.json:
        document = {
            "image": found.reference,
            "source": found.source,
            "platform": found.platform,
            "reason": found.reason,
        }
        print(json.dumps(document), file=session.stdout)
    else:
        print(found.reference, file=session.stdout)
    return 0
