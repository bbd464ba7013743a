"""``jetforge build``: resolve, plan and build (docs/builds.md); the work is
:mod:`jetforge.ops.chains`'s, this parses the arguments and renders the outcome."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from jetforge.cli.building import render_builds, request_from
from jetforge.cli.commands import load, summary
from jetforge.cli.session import (
    Session,
    add_engine_option,
    add_image_options,
    add_package_options,
    add_stage_options,
    path_value,
)
from jetforge.cli.talk import reporter_for
from jetforge.core.plan import plan_json
from jetforge.errors import UsageError
from jetforge.ops.chains import build_chains
from jetforge.ops.planning import Simulation, simulated_plans

if TYPE_CHECKING:
    pass


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "build",
        help=summary("build"),
        description="Resolve PACKAGEs into one chain, build every stage on the engine and "
        "test it inside the image it produced.",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="packages to build")
    add_image_options(parser)
    parser.add_argument("--multiple", action="store_true", help="one chain per PACKAGE")
    parser.add_argument("--skip-errors", action="store_true", help="go on past failed chains")
    parser.add_argument(
        "--skip-tests", default="", metavar="LIST", help="names, wildcards, 'intermediate' or 'all'"
    )
    parser.add_argument("--test-only", default="", metavar="LIST", help="only test these")
    parser.add_argument(
        "--simulate", "--dry-run", action="store_true", help="print the plan instead of building"
    )
    parser.add_argument("--json", action="store_true", help="with --simulate: the plan as JSON")
    add_stage_options(parser, flags_help="extra engine flags for every stage")
    parser.add_argument("--push", metavar="REPO", help="push the final image to REPO")
    parser.add_argument("--logs", type=path_value, metavar="DIR", help="log directory")
    parser.add_argument(
        "--lock",
        type=path_value,
        metavar="FILE",
        help="also write the lockfile (jetforge.lock.json in the logs directory) to FILE",
    )
    parser.add_argument(
        "--locked",
        type=path_value,
        metavar="FILE",
        help="build the lockfile FILE's chain with its pins (apt and pip get its versions "
        "and file hashes, its base by digest); a stage that installs otherwise fails",
    )
    parser.add_argument(
        "--use-proxy", action="store_true", help="pass the host's proxy variables as build args"
    )
    add_engine_option(parser)
    parser.add_argument(
        "--workers",
        action="append",
        default=[],
        metavar="NAMES",
        help="spread the stages over these workers of jetforge.toml (comma-separated; "
        "'local' is the local engine; the first that fits a chain gets its final image)",
    )
    parser.add_argument("--rebuild", action="store_true", help="ignore reusable stages")
    parser.add_argument("--list-packages", action="store_true", help="same as 'jetforge list'")
    parser.add_argument("--show-packages", action="store_true", help="same as 'jetforge show'")
    add_package_options(parser)
    parser.set_defaults(handler=run)


def simulate(session: Session, simulation: Simulation) -> int:
    """Print the plans: text, or JSON with ``--json``."""

    plans = simulation.plans
    dockerfiles = simulation.dockerfiles or tuple({} for _ in plans)
    documents = [
        plan_json(plan, {s.index: simulation.command(plan, s).argv for s in plan.stages}, edited)
        for plan, edited in zip(plans, dockerfiles, strict=True)
    ]
    if session.args.json:
        data = documents[0] if len(documents) == 1 else documents
        print(json.dumps(data, indent=2), file=session.stdout)
        return 0
    out = session.stdout
    for plan, edited in zip(plans, dockerfiles, strict=True):
        print(f"# {plan.final_image}  ({plan.platform.label})", file=out)
        for stage in plan.stages:
            print(f"# {stage.slug}  {stage.image}  key {stage.key[:12]}", file=out)
            print(simulation.command(plan, stage).shell(), file=out)
            if stage.index in edited:
                print(f"#   Dockerfile as the build writes it ({stage.slug}.Dockerfile):", file=out)
                for line in edited[stage.index].splitlines():
                    print(f"#   | {line}", file=out)
            for test in stage.tests:
                print(f"#   test: {test.entry}", file=out)
    return 0


def run(session: Session) -> int:
    """Build, or print the plan with ``--simulate``."""
    args = session.args
    if args.list_packages or args.show_packages:
        # the list and show commands, through the command table, with their arguments
        chosen = {"patterns": args.packages, "all": False, "strict": False}
        listed = argparse.Namespace(**{**vars(args), **chosen})
        handler: Callable[[Session], int] = load("list" if args.list_packages else "show").run
        return handler(replace(session, args=listed))
    if args.json and not args.simulate:
        raise UsageError("build: --json needs --simulate")
    request = request_from(session)
    if args.simulate:
        return simulate(session, simulated_plans(request, session))
    session.resume = request.resume
    outcomes = build_chains(request, session, lambda: reporter_for(session))
    return render_builds(session, outcomes, request.locked)
