"""``jetforge bake``: write a ``docker-bake.json`` for the chain (or chains) a build of the
same packages would run; the work is :mod:`jetforge.ops.bake`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetforge.cli.building import BUILD_DEFAULTS, request_from
from jetforge.cli.commands import summary
from jetforge.cli.session import (
    Session,
    add_engine_option,
    add_image_options,
    add_package_options,
    add_stage_options,
    path_value,
)
from jetforge.errors import UsageError
from jetforge.ops.bake import BAKE_FILE, STAGES_GROUP, write_bake


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "bake",
        help=summary("bake"),
        description=f"Resolve and plan PACKAGEs as 'jetforge build' does and write {BAKE_FILE} "
        "(one target per stage, with its stage key label) for 'docker buildx bake'. It "
        "builds only: run 'jetforge build' with the same arguments afterwards to reuse the "
        "stage images by key and run the tests.",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="packages to plan")
    parser.add_argument(
        "-o",
        "--output",
        type=path_value,
        default=".",
        metavar="DIR",
        help=f"directory for {BAKE_FILE} and the files it needs (default: the current one)",
    )
    add_image_options(parser)
    parser.add_argument("--multiple", action="store_true", help="one chain per PACKAGE")
    add_stage_options(
        parser,
        flags_help="extra build flags for every stage (those bake can say: --pull, "
        "--no-cache, --shm-size, --ulimit, --target)",
    )
    add_engine_option(parser)
    add_package_options(parser)
    parser.set_defaults(handler=run, **BUILD_DEFAULTS)


def run(session: Session) -> int:
    """Write the bake file; print its path."""
    args = session.args
    if not args.packages:
        raise UsageError("bake: name at least one PACKAGE ('jetforge list' shows them)")
    outcome = write_bake(request_from(session), session, Path(args.output))
    session.note(
        f"wrote {outcome.path}: {len(outcome.targets)} target(s), default "
        f"{', '.join(outcome.default)}; build every stage with 'docker buildx bake "
        f"--load {STAGES_GROUP}' (or --push) in {outcome.path.parent}, then run "
        "'jetforge build' with the same arguments to reuse them and run the tests"
    )
    print(outcome.path, file=session.stdout)
    return 0
