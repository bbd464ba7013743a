"""What ``build`` and ``lock`` share: the build request their arguments give, and how the
built chains are shown."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

from jetforge.cli.session import Session, parse_build_args, split_list, warn_about_secrets
from jetforge.core.tags import image_reference, repository_prefix
from jetforge.ops.chains import ChainOutcome
from jetforge.ops.planning import BuildRequest

# build's defaults of what request_from reads, for the commands that offer fewer options
BUILD_DEFAULTS: dict[str, object] = {
    "multiple": False,
    "skip_errors": False,
    "skip_tests": "",
    "test_only": "",
    "push": None,
    "logs": None,
    "use_proxy": False,
    "workers": (),
    "rebuild": False,
    "lock": None,
    "locked": None,
}


def request_from(session: Session) -> BuildRequest:
    """The build request the arguments give (bad ones fail here, before anything runs:
    ``--name``, ``--base`` and ``--push`` are image names, never words an engine reads as
    options)."""
    args = session.args
    if args.name is not None:  # a namespace ('ns/') or an image name, checked as one
        check = repository_prefix if args.name.endswith("/") else image_reference
        check(args.name, "--name")
    given = parse_build_args(args.build_args)
    warn_about_secrets(session, given)
    return BuildRequest(
        packages=tuple(args.packages),
        name=args.name,
        base=str(image_reference(args.base, "--base")) if args.base is not None else None,
        multiple=args.multiple,
        skip_errors=args.skip_errors,
        skip_tests=tuple(split_list([args.skip_tests])),
        test_only=tuple(split_list([args.test_only])),
        build_args=given,
        build_flags=args.build_flags,
        push=repository_prefix(args.push, "--push") if args.push is not None else None,
        no_github_api=args.no_github_api,
        logs=Path(args.logs) if args.logs else None,
        use_proxy=args.use_proxy,
        ca_bundle=args.ca_bundle,
        engine=args.engine,
        workers=tuple(split_list(args.workers)),
        rebuild=args.rebuild,
        lock_file=Path(args.lock) if args.lock else None,
        locked=Path(args.locked) if args.locked else None,
        resume="jetforge " + shlex.join(session.argv),
    )


def render_builds(
    session: Session, outcomes: Iterator[ChainOutcome], locked: Path | None = None
) -> int:
    """Print each built image as its chain ends (whether anything was built, and with
    the pins of which lockfile), the failures of ``--skip-errors`` and, for several
    chains, a table; 1 when a chain failed."""
    done = []
    pins = f" with the pins of {locked}" if locked is not None else ""
    for outcome in outcomes:
        done.append(outcome)
        summary = outcome.summary
        if outcome.failure is not None:
            session.render_failure(outcome.failure)
        elif summary is not None:
            session.note(
                f"{summary.outcome} {summary.final_image}{pins} "
                f"({summary.stage_counts()}; logs: {outcome.logs_dir})"
            )
            print(summary.final_image, file=session.stdout)
    if len(done) > 1:
        width = max(len(str(outcome.plan.final_image)) for outcome in done)
        for outcome in done:
            failure = outcome.failure
            state = f"FAILED at {failure.stage} ({failure.step})" if failure else "ok"
            session.note(f"{outcome.plan.final_image!s:<{width}}  {state}")
    return 1 if any(outcome.failure for outcome in done) else 0
