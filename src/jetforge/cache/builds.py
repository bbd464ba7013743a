"""The package cache seen from builds: build secrets, RUN mounts and cache events.

The build's package sources (:mod:`jetforge.cache.sources`: local cache, mirrors, PyPI,
each probed, the ones that do not answer left out) and the upload credential reach the
stages only as engine secrets, mounted into every ``RUN`` of the stage Dockerfiles
(BuildKit, buildx, podman):

- ``/etc/xdg/pip/pip.conf``: the reachable sources as ``index-url`` / ``extra-index-url``,
  so every plain ``pip install`` uses them;
- ``/run/secrets/jetforge-cache``: ``key=value`` lines for the chain's helpers
  (``jetforge-pip``, ``jetforge-tarball`` from the ``cache-tools`` package), which upload
  compiled wheels and tarballs to the local cache.

Nothing of this is a build argument, an ``ENV`` or a file in a layer, so the final image's
environment and history hold no cache URL or credential. The legacy builder has no
secrets: it builds from the images' own sources (PyPI), with one warning.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jetforge.cache.control import (
    CachePaths,
    ServerState,
    ensure_credentials,
    read_state,
)
from jetforge.cache.sources import Probe, Source, is_cache_off, is_loopback, probe_build_sources
from jetforge.core.dockerfile import edit_dockerfile, identity_label
from jetforge.core.plan import Stage

CONFIG_SECRET = "jetforge-cache"  # noqa: S105 - a secret's id, not a password
CONFIG_TARGET = "/run/secrets/jetforge-cache"
PIP_SECRET = "jetforge-pip-conf"  # noqa: S105 - a secret's id, not a password
PIP_TARGET = "/etc/xdg/pip/pip.conf"
_EVENT = re.compile(r"(?:^|\s)jetforge-cache: ([a-z][a-z-]*)(?: (.*))?$")


def render_pip_config(sources: Sequence[Source]) -> str:
    """pip's configuration for the reachable ``sources``, first one as ``index-url``."""
    lines = ["# jetforge package sources (a build secret; not stored in any image)", "[global]"]
    if not sources:
        return "\n".join([*lines, "no-index = true", ""])
    lines.append(f"index-url = {sources[0].url}")
    if len(sources) > 1:
        lines.append("extra-index-url =")
        lines += [f"    {source.url}" for source in sources[1:]]
    insecure = sorted(
        {
            parts.hostname
            for parts in (urllib.parse.urlsplit(s.url) for s in sources)
            if parts.scheme == "http" and parts.hostname and not is_loopback(parts.hostname)
        }
    )
    if insecure:
        lines.append(f"trusted-host = {' '.join(insecure)}")
    return "\n".join([*lines, ""])


def render_helper_config(
    sources: Sequence[Source],
    platform: str,
    local: ServerState | None,
    credentials: tuple[str, str] | None,
) -> str:
    """The ``key=value`` file the chain's helpers read; upload keys only with a local cache
    that answers."""
    lines = ["# jetforge package cache (a build secret; not stored in any image)"]
    lines.append(f"platform={platform}")
    lines += [f"index_url={source.url}" for source in sources]
    lines += [f"mirror_url={source.url}" for source in sources if source.kind == "mirror"]
    if local is not None and credentials is not None:
        lines += [
            f"local_url={local.platform_url(platform)}",
            f"upload_url={local.platform_url(platform)}",
            f"tarball_url={local.platform_url(platform)}tarballs/",
            f"user={credentials[0]}",
            f"password={credentials[1]}",
        ]
    return "\n".join([*lines, ""])


def write_secret(directory: Path, text: str, suffix: str) -> Path:
    """Write a secret's source file (mode 0600, named by its content) and return its path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}{suffix}"
    if not path.exists():
        partial = directory / f".{path.name}.{os.getpid()}"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        partial.replace(path)
    return path


@dataclass(frozen=True, slots=True)
class BuildCache:
    """How one build uses the package cache: engine flags, RUN mounts, and what to say."""

    build_extra: tuple[str, ...] = ()
    run_mounts: tuple[str, ...] = ()
    probes: tuple[Probe, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def prepare_build_cache(
    paths: CachePaths,
    *,
    mirrors: Sequence[str],
    pypi: str,
    build_mode: str,
    secrets: bool,
    platform: str,
    env: Mapping[str, str],
) -> BuildCache:
    """Decide the build's package sources, probe them and write the build secrets.

    Nothing happens (an empty value) when neither a local cache was ever started nor a
    mirror is configured, or with ``JETFORGE_CACHE=off``. ``secrets``: whether the
    builder (``build_mode``) takes build secrets; without them there is no cache.
    """
    state = read_state(paths)
    if is_cache_off(env) or (state is None and not mirrors):
        return BuildCache()
    if not secrets:
        return BuildCache(
            warnings=(
                f"the {build_mode} builder cannot pass build secrets, so this build uses no "
                "package cache and installs from the images' own sources (PyPI); use BuildKit "
                "for the cache (docs/builds.md, 'Package cache')",
            )
        )
    probes = probe_build_sources(state, mirrors, pypi, platform, env)
    up = [probe.source for probe in probes if probe.up]
    warnings = []
    for probe in probes:
        if not probe.up:
            hint = (
                ": start it with 'jetforge cache serve --background'"
                if probe.source.kind == "local"
                else ""
            )
            warnings.append(
                f"package source {probe.source.described} is down ({probe.problem}); "
                f"this build leaves it out{hint}"
            )
    if not up:
        warnings.append("no package source answers: pip can install only what the images hold")
    local_up = state if any(source.kind == "local" for source in up) else None
    credentials = ensure_credentials(paths) if local_up is not None else None
    pip_file = write_secret(paths.secrets_dir, render_pip_config(up), ".pip.conf")
    helper_file = write_secret(
        paths.secrets_dir, render_helper_config(up, platform, local_up, credentials), ".conf"
    )
    notes = ("package sources: " + (", ".join(s.described for s in up) or "none"),)
    return BuildCache(
        build_extra=(
            "--secret",
            f"id={PIP_SECRET},src={pip_file}",
            "--secret",
            f"id={CONFIG_SECRET},src={helper_file}",
        ),
        run_mounts=(
            f"--mount=type=secret,id={PIP_SECRET},target={PIP_TARGET},mode=0444",
            f"--mount=type=secret,id={CONFIG_SECRET},target={CONFIG_TARGET},mode=0444",
        ),
        probes=probes,
        notes=notes,
        warnings=tuple(warnings),
    )


_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_RUN = re.compile(r"(\s*)(run)(?=\s)", re.IGNORECASE)
_HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def add_run_mounts(text: str, mounts: Sequence[str]) -> str:
    """``text`` with ``mounts`` added to every ``RUN`` instruction (not ``ONBUILD RUN``).

    Follows the Dockerfile parser: the ``escape`` directive, line continuations, comment
    and empty lines inside a continuation, and heredoc bodies (never taken for
    instructions). Everything else is kept byte for byte.
    """
    if not mounts:
        return text
    escape = "\\"
    lines = text.splitlines(keepends=True)
    for line in lines:
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)
    out: list[str] = []
    continued = False
    heredocs: list[tuple[bool, str]] = []
    flags = " ".join(mounts)
    for line in lines:
        body = line.rstrip("\r\n")
        if heredocs:
            strip_tabs, word = heredocs[0]
            if (body.lstrip("\t") if strip_tabs else body) == word:
                heredocs.pop(0)
            out.append(line)
            continue
        stripped = body.strip()
        if continued and (not stripped or stripped.startswith("#")):
            out.append(line)
            continue
        if not continued and (not stripped or stripped.startswith("#")):
            out.append(line)
            continue
        if not continued:
            match = _RUN.match(line)
            if match:
                line = f"{line[: match.end(2)]} {flags}{line[match.end(2) :]}"
        heredocs += [(m.group(1) == "-", m.group(3)) for m in _HEREDOC.finditer(body)]
        continued = body.rstrip().endswith(escape) and not heredocs
        out.append(line)
    return "".join(out)


def parse_cache_event(line: str) -> str | None:
    """``EVENT DETAIL`` from a build output line that carries a ``jetforge-cache:`` report
    of the chain's helpers (any engine's progress prefix before it is ignored)."""
    match = _EVENT.search(line.rstrip())
    if not match:
        return None
    return f"{match.group(1)} {match.group(2) or ''}".strip()


def built_dockerfile(stage: Stage, parent: str, run_mounts: Sequence[str] = ()) -> str:
    """The Dockerfile text a build of ``stage`` on the image ``parent`` (its id, or a
    plan's placeholder for it) writes to its logs and builds: the package's own as
    :func:`edit_dockerfile` makes it (the stage key reset after each ``FROM``, the plan's
    edits, a locked build's pins), with the package cache's ``run_mounts``, ending with
    the stage's identity (:func:`identity_label`)."""
    text = stage.dockerfile.read_text(encoding="utf-8")
    edited = edit_dockerfile(text, stage.edits, stage.pins)
    edited = add_run_mounts(edited, run_mounts) if run_mounts else edited
    separator = "" if edited.endswith("\n") else "\n"
    return edited + separator + identity_label(stage.key, parent)
