"""``jetforge doctor``: check the engine, builder, GPU access, disk, registries, caches
and platform; one line per check, with the fix for what is wrong.

Exit 1 when something stops builds (no engine, a stopped daemon, a full disk, a bad
platform override), else 0.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from jetforge.cache.control import CachePaths, read_state
from jetforge.cache.sources import is_cache_off, mirrors_from, probe_build_sources, pypi_from
from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option
from jetforge.core.platform import Platform
from jetforge.engine.table import DEFAULT, ENGINES, choose_engine, engine_class, engine_names
from jetforge.errors import EngineUnavailableError, PlatformError, UsageError
from jetforge.host.platform import detect_platform
from jetforge.host.probe import HOST_ROOT_VARIABLE, probe_host
from jetforge.host.registry import registry_locations
from jetforge.host.settings import Settings, load_settings
from jetforge.ops.doctor import (
    OK,
    PROBLEM,
    WARNING,
    Check,
    check_builder,
    check_disk,
    check_engine,
    check_engine_error,
    check_gpu,
    check_platform,
    check_registry,
    check_source,
    check_worker,
    exit_code,
    free_bytes,
    probe_url,
    registry_url,
)


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "doctor",
        help=summary("doctor"),
        description="Check what builds and runs need; print one line per check (ok, "
        "warning or problem) with the fix. Exit 1 when something stops builds.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of checks")
    add_engine_option(parser)
    parser.add_argument("--host-root", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Run every check; print them as they complete (or as JSON at the end)."""
    checks: list[Check] = []
    for check in iter_checks(session):
        checks.append(check)
        if not session.args.json:
            print(check.line(), file=session.stdout, flush=True)
    if session.args.json:
        print(json.dumps([check.to_json() for check in checks], indent=2), file=session.stdout)
    code = exit_code(checks)
    if code:
        session.note("something above stops builds; apply its fix and run 'jetforge doctor' again")
    return code


def iter_checks(session: Session) -> Iterator[Check]:
    """Every check, in report order."""
    root = Path(session.args.host_root or session.env.get(HOST_ROOT_VARIABLE) or "/")
    platform: Platform | None = None
    try:
        platform = detect_platform(session.env, root=root)
    except PlatformError as error:
        platform_checks = check_platform(None, error)
    else:
        platform_checks = check_platform(platform)
    settings, config_check = _settings(session)
    yield config_check
    yield from _engine_checks(session, settings, root, platform)
    yield from _worker_checks(session, settings)
    yield from _endpoint_checks(session, settings, platform)
    yield from platform_checks


def _settings(session: Session) -> tuple[Settings, Check]:
    try:
        settings = load_settings(session.cwd, session.env, engine_names)
    except UsageError as error:
        return Settings(), Check("config", PROBLEM, str(error), "correct the file")
    where = f"read {settings.path}" if settings.path else "no jetforge.toml; using defaults"
    return settings, Check("config", OK, where)


def _engine_checks(
    session: Session, settings: Settings, root: Path, platform: Platform | None
) -> Iterator[Check]:
    try:
        kind = choose_engine(session.args.engine, session.env, settings.engine)
        engine = kind.connect(session.env)
        info = engine.info()
    except EngineUnavailableError as error:
        yield check_engine_error(error)
        return
    except UsageError as error:
        yield Check("engine", PROBLEM, str(error), f"choose {' or '.join(ENGINES)}")
        return
    yield check_engine(engine.name, info)
    yield check_builder(engine.builder())
    yield from check_gpu(
        engine,
        probe_host(
            root,
            session.env,
            runtimes=info.runtimes,
            cdi_spec_dirs=info.cdi_spec_dirs,
            gpus_flag=engine.gpus_flag,
        ),
        info,
        platform,
    )
    data_root = info.data_root
    prune = f"{engine.name} system prune"
    if not data_root:
        yield check_disk("", None, prune)
        return
    yield check_disk(data_root, free_bytes(root / data_root.lstrip("/")), prune)


def _worker_checks(session: Session, settings: Settings) -> Iterator[Check]:
    """Every worker of jetforge.toml, asked at its endpoint."""
    for worker in settings.workers:
        chosen = replace(worker, engine=worker.engine or settings.engine or DEFAULT)
        try:
            engine = engine_class(chosen.engine).at(chosen.endpoint, session.env)
            yield check_worker(chosen, engine.info())
        except EngineUnavailableError as error:
            yield check_worker(chosen, error)


def _endpoint_checks(
    session: Session, settings: Settings, platform: Platform | None
) -> Iterator[Check]:
    try:
        locations = registry_locations(settings.registries, session.env)
    except UsageError as error:
        yield Check("registry", WARNING, str(error), "correct 'registries' in jetforge.toml")
        locations = ()
    for location in locations:
        url = registry_url(location)
        yield check_registry(location, url, probe_url(url))
    yield from _cache_checks(session, settings, platform)


def _cache_checks(
    session: Session, settings: Settings, platform: Platform | None
) -> Iterator[Check]:
    """The package sources a build would use, probed the way a build probes them."""
    env = session.env
    state = read_state(CachePaths.under(session.cache_home))
    mirrors = mirrors_from(settings.cache_urls, env)
    if is_cache_off(env):
        yield Check("cache", OK, "JETFORGE_CACHE=off: builds use no package cache")
        return
    if state is None and not mirrors:
        yield Check(
            "cache",
            OK,
            "no package cache or mirror: builds install from the images' own sources "
            "('jetforge cache serve --background' starts a local cache)",
        )
        return
    postfix = platform.tag_postfix if platform is not None else ""
    pypi = pypi_from(settings.pypi_url, env)
    for probe in probe_build_sources(state, mirrors, pypi, postfix, env):
        yield check_source(probe)
