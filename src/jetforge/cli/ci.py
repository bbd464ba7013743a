"""``jetforge ci``: the affected set of a CI run (``plan``) and the pipelines that build
it (``github``, ``gitlab``); the work is :mod:`jetforge.ops.ci`'s (docs/ci.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_package_options, path_value
from jetforge.errors import UsageError
from jetforge.ops.ci import (
    CiRequest,
    append_outputs,
    check_request,
    matrix_outputs,
    plan_ci,
    plan_lines,
    write_pipeline,
)


def register(commands: Any) -> None:
    """Add the subcommand and its actions."""
    parser = commands.add_parser(
        "ci",
        help=summary("ci"),
        description="Plan what a CI run builds and generate the pipelines that build it on "
        "self-hosted runners, one job per stage, stages found in the registry by key.",
    )
    actions = parser.add_subparsers(dest="ci_action", metavar="ACTION")
    actions.required = True
    planning = actions.add_parser(
        "plan",
        help="the stages a CI run builds: what changed since REV and what depends on it",
        description="Resolve and plan each PACKAGE (or every variant) per --target as "
        "'build --simulate' plans without an engine, and print the stages whose package "
        "files changed since REV (git) and every stage built on them, sorted.",
    )
    _add_selection(planning)
    planning.add_argument("--since", metavar="REV", help="count changes from this git revision")
    planning.add_argument("--json", action="store_true", help="print the plan as JSON")
    planning.add_argument("--why", action="store_true", help="say why each stage is built")
    planning.add_argument(
        "--github-output",
        type=path_value,
        metavar="FILE",
        help="also append the build matrices to FILE ($GITHUB_OUTPUT)",
    )
    planning.set_defaults(handler=run_plan)
    github = actions.add_parser(
        "github",
        help="write a GitHub Actions workflow that builds the affected set",
        description="Write a workflow: a plan job running 'jetforge ci plan --since', then "
        "one build job per target, wave and matrix chunk on [self-hosted, labels].",
    )
    _add_selection(github)
    github.add_argument(
        "-o", "--output", type=path_value, metavar="FILE", help="write to FILE, not stdout"
    )
    github.set_defaults(handler=run_github)
    gitlab = actions.add_parser(
        "gitlab",
        help="write a GitLab CI parent pipeline (or, with --child, the child pipeline)",
        description="Write the pipeline to commit: a generate job that runs 'jetforge ci "
        "gitlab --child --since' and a job that triggers the child pipeline it writes. "
        "With --child, that child pipeline: one job per stage of the affected set.",
    )
    _add_selection(gitlab)
    gitlab.add_argument(
        "--child", action="store_true", help="write the child pipeline of the affected set"
    )
    gitlab.add_argument(
        "--since", metavar="REV", help="with --child: count changes from this git revision"
    )
    gitlab.add_argument(
        "-o", "--output", type=path_value, metavar="FILE", help="write to FILE, not stdout"
    )
    gitlab.set_defaults(handler=run_gitlab)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="packages to plan")
    parser.add_argument("--all", dest="every", action="store_true", help="every variant")
    add_package_options(parser, many_targets=True)


def request_from(session: Session, *, targets: bool = False) -> CiRequest:
    """The request the arguments give; with ``targets`` (a pipeline, ``--github-output``)
    it names at least one ``--target``: the runners' platforms, not this host's."""
    args = session.args
    if targets and not args.targets:
        raise UsageError(
            f"ci {args.ci_action}: name at least one --target (the platforms the runners "
            "build for; 'jetforge platform --help' lists them)"
        )
    return CiRequest(
        packages=tuple(args.packages),
        every=args.every,
        targets=tuple(args.targets),
        since=getattr(args, "since", None),
    )


def run_plan(session: Session) -> int:
    """Print the affected set (text, ``--why``, ``--json``) or append its matrices."""
    args = session.args
    plan = plan_ci(request_from(session, targets=bool(args.github_output)), session)
    for target, variant, why in plan.skipped:
        session.warn(f"{target}: {variant} left out: {why}")
    if args.github_output:
        append_outputs(session.cwd / args.github_output, matrix_outputs(plan))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2), file=session.stdout)
        return 0
    for line in plan_lines(plan, why=args.why):
        print(line, file=session.stdout)
    if not plan.stages:
        session.note("nothing to build")
    return 0


def run_github(session: Session) -> int:
    """Write (or print) the workflow."""
    from jetforge.ops.ci_github import github_workflow

    request = request_from(session, targets=True)
    return _emit(session, github_workflow(request, plan_ci(request, session)))


def run_gitlab(session: Session) -> int:
    """Write (or print) the parent pipeline, or with ``--child`` the child pipeline."""
    from jetforge.ops.ci_gitlab import gitlab_child, gitlab_parent

    request = request_from(session, targets=True)
    if not session.args.child:
        if request.since is not None:
            raise UsageError("ci gitlab: --since needs --child (the parent pipeline passes it)")
        check_request(request)
        return _emit(session, gitlab_parent(request))
    plan = plan_ci(request, session)
    for target, variant, why in plan.skipped:
        session.warn(f"{target}: {variant} left out: {why}")
    return _emit(session, gitlab_child(plan))


def _emit(session: Session, text: str) -> int:
    output = session.args.output
    if output is None:
        print(text, end="", file=session.stdout)
        return 0
    path = write_pipeline(session.cwd / output, text)
    print(path, file=session.stdout)
    return 0
