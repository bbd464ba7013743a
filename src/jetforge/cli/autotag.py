"""``jetforge autotag``: print a compatible image for a package (SPEC section 8).

Order: local images, then the configured registries (pulled unless ``--no-pull``), then a
build (unless ``--no-build``). Only the image reference (or ``--json`` object) goes to stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any

from jetforge.autotag import BUILT, LOCAL, REGISTRY, Choice, Wanted, find_in_registries, find_local
from jetforge.build import tested_marker
from jetforge.cli import build
from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option, add_package_options, split_list
from jetforge.credentials import CredentialStore
from jetforge.engine.base import Engine
from jetforge.engine.table import choose_engine
from jetforge.errors import FailureError, RegistryError, UsageError
from jetforge.registry import RegistryClient, registry_locations


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
    wanted = Wanted(args.name.strip())
    if not wanted.base_name:
        raise UsageError("autotag: NAME is empty")
    platform = session.platform
    engine = choose_engine(args.engine, session.env, session.settings.engine).connect(session.env)
    results = session.cache_dir / "test-results"
    local = find_local(
        engine, wanted, platform, lambda info: tested_marker(results, info.id).exists()
    )
    _explain(session, local)
    if local.chosen is not None:
        reason = f"local image built for {local.chosen.platform}{_among(local)}"
        return _print(session, local.chosen.reference, LOCAL, str(local.chosen.platform), reason)
    session.note(f"no compatible local image holds {wanted.name} ({platform.label})")
    locations = registry_locations(session.settings.registries, session.env)
    if locations:
        client = RegistryClient(
            CredentialStore(session.env),
            ca_bundle=session.env.get("REQUESTS_CA_BUNDLE") or session.env.get("SSL_CERT_FILE"),
        )

        def warn(error: RegistryError) -> None:
            session.warn(f"{error}; skipped")

        remote = find_in_registries(client, locations, wanted, platform, on_problem=warn)
        _explain(session, remote)
        chosen = remote.chosen
        if chosen is not None:
            reason = f"registry image built for {chosen.platform}{_among(remote)}"
            if args.no_pull:
                return _print(session, chosen.reference, REGISTRY, str(chosen.platform), reason)
            if _confirm(session, f"pull {chosen.reference}?"):
                _pull(session, engine, chosen.reference)
                reason += "; pulled"
                return _print(session, chosen.reference, REGISTRY, str(chosen.platform), reason)
        else:
            searched = ", ".join(map(str, locations))
            session.note(f"no compatible image of {wanted.name} in {searched}")
    if args.no_build:
        raise FailureError(f"no compatible image for {wanted.name} on {platform.label}")
    if not _confirm(session, f"build {wanted.name} for {platform.label}?"):
        raise FailureError(f"no compatible image for {wanted.name}; not built")
    reference = _build(session, wanted)
    return _print(session, reference, BUILT, platform.label, "nothing compatible found; built")


def _among(choice: Choice) -> str:
    count = len(choice.compatible)
    return f" (newest of {count} compatible)" if count > 1 else ""


def _explain(session: Session, choice: Choice) -> None:
    if not session.args.verbose:
        return
    for rejection in choice.rejected:
        session.note(f"skipped {rejection.reference}: {rejection.reason}")
    shown = 10
    for candidate in choice.compatible[1 : shown + 1]:
        session.note(f"passed over {candidate.reference} ({candidate.platform})")
    if len(choice.compatible) > shown + 1:
        session.note(f"passed over {len(choice.compatible) - shown - 1} more compatible images")


def _print(session: Session, reference: str, source: str, platform: str, reason: str) -> int:
    session.note(f"{reference}: {reason}")
    if session.args.json:
        document = {"image": reference, "source": source, "platform": platform, "reason": reason}
        print(json.dumps(document), file=session.stdout)
    else:
        print(reference, file=session.stdout)
    return 0


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _confirm(session: Session, question: str) -> bool:
    """Ask on the terminal; yes with ``--yes`` or when stdin is not a terminal."""
    if session.args.yes or not _stdin_is_terminal():
        return True
    # The question goes to stderr so that $(jetforge autotag …) captures only the answer.
    print(f"jetforge: {question} [Y/n] ", end="", file=session.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")


def _pull(session: Session, engine: Engine, reference: str) -> None:
    lines: list[str] = []

    def sink(line: str) -> None:
        lines.append(line)
        if session.args.verbose:
            print(f"  {line}", file=session.stderr)

    session.note(f"pulling {reference}")
    done = engine.pull(reference, sink)
    if done.returncode != 0:
        last = next((line for line in reversed(lines) if line.strip()), "")
        raise FailureError(f"pull of {reference} failed: {last or done.stderr.strip()}")


def _build(session: Session, wanted: Wanted) -> str:
    """Build ``wanted`` through ``jetforge build`` with this command's package options."""
    args = session.args
    argv = ["build"]
    for directory in split_list(args.package_dirs):
        argv += ["--package-dirs", directory]
    if args.package_format != "auto":
        argv += ["--package-format", args.package_format]
    for pattern in split_list(args.skip_packages):
        argv += ["--skip-packages", pattern]
    for option, value in (("--target", args.target), ("--distro", args.distro)):
        if value:
            argv += [option, value]
    if args.engine:
        argv += ["--engine", args.engine]
    argv.append(wanted.name)
    parser = argparse.ArgumentParser(prog="jetforge")
    build.register(parser.add_subparsers())
    build_args = parser.parse_args(argv)
    build_args.verbose, build_args.quiet, build_args.no_color = (
        args.verbose,
        args.quiet,
        args.no_color,
    )
    session.note(f"building: jetforge {' '.join(argv)}")
    captured = io.StringIO()
    inner = Session(build_args, captured, session.stderr, argv, session.env, session.cwd)
    code = build.run(inner)
    built = captured.getvalue().split()
    if code != 0 or not built:
        raise FailureError(f"build of {wanted.name} did not produce an image")
    return built[-1]
