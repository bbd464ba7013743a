"""``jetforge build``: resolve, plan and build (SPEC section 6)."""

from __future__ import annotations

import functools
import json
import os
import shlex
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetforge.cli import listing, show
from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option, add_package_options, split_list
from jetforge.context import read_context
from jetforge.digests import Digests
from jetforge.engine.command import Command, build_command
from jetforge.engine.table import choose_engine
from jetforge.errors import JetforgeError, RegistryError, StageFailedError, UsageError
from jetforge.plan import Plan, PlanOptions, Stage, plan_build, plan_json
from jetforge.resolve import Resolution, expand_requests, resolve
from jetforge.trust import trust_context

if TYPE_CHECKING:
    from jetforge.engine.base import Engine
    from jetforge.engine.cli_engine import CliEngine
    from jetforge.reporter import Reporter

# A simulated build imports neither the executor, the package cache, the registry client
# nor the progress display: the functions that need them import them (start-up time).


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "build",
        help=summary("build"),
        description="Resolve PACKAGEs into one chain, build every stage on the engine and "
        "test it inside the image it produced.",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="packages to build")
    parser.add_argument("--name", help="image name; 'ns/' is a namespace, 'name:tag' is exact")
    parser.add_argument("--base", metavar="IMAGE", help="base image of the first stage")
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
    parser.add_argument(
        "--build-args",
        action="append",
        default=[],
        metavar="K=V,...",
        help="build arguments for every stage (K:V also accepted)",
    )
    parser.add_argument(
        "--build-flags", default="", metavar="STR", help="extra engine flags for every stage"
    )
    parser.add_argument("--push", metavar="REPO", help="push the final image to REPO")
    parser.add_argument(
        "--no-github-api",
        action="store_true",
        help="comment out 'ADD https://api.github.com/...' lines of Dockerfiles (jc packages "
        "use them to follow upstream commits); package config scripts never use the network",
    )
    parser.add_argument("--logs", metavar="DIR", help="log directory")
    parser.add_argument(
        "--use-proxy", action="store_true", help="pass the host's proxy variables as build args"
    )
    parser.add_argument("--ca-bundle", metavar="FILE", help="extra CA bundle to trust")
    add_engine_option(parser)
    parser.add_argument("--rebuild", action="store_true", help="ignore reusable stages")
    parser.add_argument("--list-packages", action="store_true", help="same as 'jetforge list'")
    parser.add_argument("--show-packages", action="store_true", help="same as 'jetforge show'")
    add_package_options(parser)
    parser.set_defaults(handler=run)


RESERVED_BUILD_ARGS = {"BASE_IMAGE": "the previous stage's image; choose the first one with --base"}
SECRET_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL")


def parse_build_args(values: list[str]) -> tuple[tuple[str, str], ...]:
    """``K=V,K2:V2`` (repeatable) into pairs; a pair without a separator is an error, and
    so is an argument jetforge sets itself (it would build stages that their keys do not
    describe)."""
    pairs = []
    for item in split_list(values):
        separator = "=" if "=" in item else ":"
        name, found, value = item.partition(separator)
        if not found or not name:
            raise UsageError(f"--build-args: '{item}' is not K=V (or K:V)")
        if name.strip() in RESERVED_BUILD_ARGS:
            raise UsageError(
                f"--build-args: {name.strip()} is set by jetforge "
                f"({RESERVED_BUILD_ARGS[name.strip()]})"
            )
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def warn_about_secrets(session: Session, pairs: tuple[tuple[str, str], ...]) -> None:
    """One warning per build argument whose name says it is a secret."""
    for name, _ in pairs:
        if any(word in name.upper() for word in SECRET_WORDS):
            session.warn(
                f"--build-args {name} looks like a secret: build arguments stay in the "
                "image's history and in the logs; pass it as a build secret instead "
                "(--build-flags '--secret id=NAME,env=NAME' with BuildKit)"
            )


def base_reference(session: Session) -> str:
    """The first stage's base: ``--base``, the config file's image for the distro, or the
    platform's default (SPEC section 7)."""
    platform = session.platform
    return (
        session.args.base
        or session.settings.base_image_for(str(platform.distro))
        or platform.base_image
    )


def proxy_args(session: Session) -> tuple[tuple[str, str], ...]:
    """The host's proxy variables as build args (``--use-proxy``); engines keep these
    predefined arguments out of the image history."""
    if not session.args.use_proxy:
        return ()
    names = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    return tuple(
        (variable, session.env[variable])
        for name in names
        for variable in (name, name.lower())
        if session.env.get(variable)
    )


def resolve_chains(session: Session) -> list[Resolution]:
    """Resolve every chain the arguments ask for (one, or one per package with
    ``--multiple``); bad requests fail here, before the engine is asked anything."""
    args = session.args
    if not args.packages:
        raise UsageError("build: name at least one PACKAGE ('jetforge list' shows them)")
    catalog = session.catalog
    session.report_problems(each=False)
    requests = expand_requests(catalog, args.packages)
    groups = [[request] for request in requests] if args.multiple else [requests]
    return [resolve(catalog, group, session.env) for group in groups]


def plan_options(session: Session, trust: Path | None) -> PlanOptions:
    """The plan options the arguments give; the build mode and base id come later."""
    args = session.args
    given = parse_build_args(args.build_args)
    warn_about_secrets(session, given)
    return PlanOptions(
        name=args.name,
        base_image=base_reference(session),
        build_args=(*proxy_args(session), *given),
        build_flags=args.build_flags,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        trust_context=trust,
        no_github_api=args.no_github_api,
        outputs=(_logs_root(session), session.cache_dir),
    )


def simulate(session: Session, plans: list[Plan], program: str, extra: tuple[str, ...] = ()) -> int:
    """Print the plans: text, or JSON with ``--json``; ``program`` and ``extra`` are the
    engine's program and the flags a build adds (package cache secrets)."""

    def command(stage: Stage, plan: Plan) -> Command:
        return build_command(stage, plan.build_mode, program, extra)

    documents = [
        plan_json(plan, {s.index: command(s, plan).argv for s in plan.stages}) for plan in plans
    ]
    if session.args.json:
        data = documents[0] if len(documents) == 1 else documents
        print(json.dumps(data, indent=2), file=session.stdout)
        return 0
    for plan in plans:
        print(f"# {plan.final_image}  ({plan.platform.label})", file=session.stdout)
        for stage in plan.stages:
            print(f"# {stage.slug}  {stage.image}  key {stage.key[:12]}", file=session.stdout)
            print(command(stage, plan).shell(), file=session.stdout)
            for test in stage.tests:
                print(f"#   test: {test.entry}", file=session.stdout)
    return 0


def run(session: Session) -> int:
    """Build, or print the plan with ``--simulate``."""
    args = session.args
    if args.list_packages or args.show_packages:
        args.patterns, args.all, args.strict = args.packages, False, False
        return listing.run(session) if args.list_packages else show.run(session)
    if args.json and not args.simulate:
        raise UsageError("build: --json needs --simulate")
    chains = resolve_chains(session)
    planning = plan_options(session, _trust_context(session))
    kind = choose_engine(args.engine, session.env, session.settings.engine)
    if args.simulate:
        return _simulate_with(session, chains, planning, kind)
    from jetforge.build import BuildOptions, Executor
    from jetforge.cli.cache import build_cache

    engine = kind.connect(session.env)
    base_id = _ensure_base(session, engine, base_reference(session))
    planning = replace(planning, build_mode=engine.build_mode, base_id=base_id)
    plans = _plans(session, chains, planning)
    package_cache = build_cache(session, engine.build_mode, secrets=engine.supports_secrets)
    logs = _logs_dir(session)
    remote = _registry_lookup(session)
    failures: list[tuple[Plan, StageFailedError]] = []
    summaries = []
    for number, plan in enumerate(plans, start=1):
        options = BuildOptions(
            logs_dir=logs / plan.final_image.name if len(plans) > 1 else logs,
            data_dir=session.data_dir,
            results_dir=session.cache_dir / "test-results",
            rebuild=args.rebuild,
            skip_tests=tuple(split_list([args.skip_tests])),
            test_only=tuple(split_list([args.test_only])),
            push=args.push,
            resume="jetforge " + shlex.join(session.argv),
            remote=None if args.rebuild else remote,
            build_extra=package_cache.build_extra,
            run_mounts=package_cache.run_mounts,
        )
        session.data_dir.mkdir(parents=True, exist_ok=True)
        if len(plans) > 1:
            session.note(f"chain {number}/{len(plans)}: {plan.final_image}")
        try:
            with _reporter(session) as reporter:
                summary = Executor(plan, engine, options, reporter).execute()
            summaries.append(summary)
            session.note(f"built {summary.final_image} (logs: {options.logs_dir})")
            print(summary.final_image, file=session.stdout)
        except StageFailedError as failure:
            if not args.skip_errors:
                raise
            session.render_failure(failure)
            failures.append((plan, failure))
    if len(plans) > 1:
        _print_table(session, plans, failures)
    return 1 if failures else 0


def _simulate_with(
    session: Session, chains: list[Resolution], planning: PlanOptions, kind: type[CliEngine]
) -> int:
    """``--simulate``: with an engine that answers, exactly the plan and commands a build
    would run (its build mode, the base image's id, the cache's flags); without one, the
    plan from the base image's reference and the configured engine's usual mode."""
    try:
        engine = kind.connect(session.env)
    except JetforgeError:
        planning = replace(planning, build_mode=kind.default_build_mode)
        return simulate(session, _plans(session, chains, planning), kind.name)
    base = base_reference(session)
    info = engine.inspect(base)
    if info is None:
        session.note(f"base image {base} is not here: keys use its name (a build pulls it)")
    planning = replace(planning, build_mode=engine.build_mode, base_id=info.id if info else None)
    plans = _plans(session, chains, planning)
    from jetforge.cli.cache import build_cache

    extra = build_cache(session, engine.build_mode, secrets=engine.supports_secrets).build_extra
    return simulate(session, plans, engine.program, tuple(extra))


def _plans(session: Session, chains: list[Resolution], planning: PlanOptions) -> list[Plan]:
    """The plan of each chain; context files are hashed once until they change."""
    digests = Digests(session.cache_dir / "digests")
    read = functools.partial(read_context, digest=digests.digest)
    plans = [plan_build(chain, session.platform, planning, read) for chain in chains]
    digests.save()
    return plans


def _print_table(
    session: Session, plans: list[Plan], failures: list[tuple[Plan, StageFailedError]]
) -> None:
    failed = {id(plan): failure for plan, failure in failures}
    width = max(len(str(plan.final_image)) for plan in plans)
    for plan in plans:
        failure = failed.get(id(plan))
        state = f"FAILED at {failure.stage} ({failure.step})" if failure else "ok"
        session.note(f"{plan.final_image!s:<{width}}  {state}")


def _registry_lookup(session: Session) -> Callable[[Stage], str | None] | None:
    """A finder of stage images in the configured registries (SPEC 6.4), or None.

    A stage image is looked up as ``<registry>/<namespace>/NAME:TAG-<variant>`` (where
    ``--push`` puts it) and reused when its ``jetforge.stage-key`` label matches. An
    unreachable registry is reported once and then left alone.
    """
    from jetforge.credentials import CredentialStore
    from jetforge.labels import STAGE_KEY
    from jetforge.registry import RegistryClient, registry_locations

    locations = registry_locations(session.settings.registries, session.env)
    if not locations:
        return None
    client = RegistryClient(CredentialStore(session.env), timeout=5.0)
    arch = session.platform.arch
    down: set[str] = set()

    def find(stage: Stage) -> str | None:
        for location in locations:
            if str(location) in down:
                continue
            reference = location.repository(stage.image.name).with_tag(stage.image.tag)
            try:
                remote = client.inspect(reference, arch)
            except RegistryError as error:
                down.add(str(location))
                session.warn(f"registry {location}: {error}; not looked at again in this build")
                continue
            if remote is not None and remote.labels.get(STAGE_KEY) == stage.key:
                return str(reference)
        return None

    return find


def _trust_context(session: Session) -> Path | None:
    return trust_context(session.args.ca_bundle, session.env, session.cache_dir)


def _ensure_base(session: Session, engine: Engine, base: str) -> str:
    """The base image's id, pulling it when it is not present."""
    info = engine.inspect(base)
    if info is None:
        session.note(f"pulling base image {base}")
        engine.pull(base, lambda _line: None)
        info = engine.inspect(base)
    if info is None:
        raise UsageError(
            f"base image '{base}' is neither present nor pullable; create it with "
            f"'jetforge bootstrap --distro {session.platform.distro} --tag {base}' "
            "or choose another with --base"
        )
    return info.id


def _logs_root(session: Session) -> Path:
    """``--logs``, else the directory the dated log directories go to."""
    if session.args.logs:
        return session.cwd / Path(session.args.logs)
    return session.settings.logs_dir or session.cwd / "logs"


def _logs_dir(session: Session) -> Path:
    """A new, unique ``logs/<YYYYMMDD_HHMMSS>`` (or ``--logs``) directory, readable by its
    owner only (logs hold build commands and their output)."""
    root = _logs_root(session)
    try:
        if session.args.logs:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(root, os.W_OK):
                raise PermissionError(13, "not writable")
            return root
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        for attempt in range(1000):
            path = root / (stamp if attempt == 0 else f"{stamp}_{attempt}")
            try:
                path.mkdir(mode=0o700, parents=True)
            except FileExistsError:
                continue
            return path
    except OSError as error:
        option = "--logs" if session.args.logs else "logs directory"
        raise UsageError(
            f"{option}: cannot use {root}: {error.strerror or error} (name a writable directory)"
        ) from None
    raise UsageError(f"cannot create a log directory under {root}")


def _reporter(session: Session) -> AbstractContextManager[Reporter]:
    from jetforge.cli.progress import LiveReporter, PlainReporter

    args = session.args
    if session.stderr.isatty() and not args.verbose and not args.quiet:
        return LiveReporter(session.stderr, color=not args.no_color)
    return nullcontext(PlainReporter(session.stderr, verbose=args.verbose, quiet=args.quiet))
