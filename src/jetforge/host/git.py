"""What git says changed in a package tree since a revision (``jetforge ci plan
--since``), through an injected runner."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jetforge.errors import UsageError
from jetforge.host.commands import Runner


def repository_top(directory: Path, runner: Runner, env: Mapping[str, str]) -> Path | None:
    """The top directory of the git work tree holding ``directory``, or None when it is
    in none (or git is not installed)."""
    try:
        done = runner(["git", "rev-parse", "--show-toplevel"], cwd=directory, env=env)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return Path(done.stdout.strip()).resolve()


def changed_files(
    top: Path, revision: str, runner: Runner, env: Mapping[str, str]
) -> tuple[Path, ...]:
    """Every file of the work tree ``top`` that differs from ``revision`` — committed
    since, changed and not committed, deleted, renamed (both names), or new and not
    ignored — as resolved absolute paths, sorted. A revision git does not know is a
    :class:`UsageError` naming it."""
    if revision.startswith("-"):
        raise UsageError(f"--since: '{revision}' is not a revision (it reads as an option)")
    check = runner(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"],
        cwd=top,
        env=env,
    )
    if check.returncode != 0:
        raise UsageError(f"--since: '{revision}' is not a revision of the git repository {top}")
    diff = _listed(
        runner, ["git", "diff", "--name-only", "-z", "--no-renames", revision, "--"], top, env
    )
    new = _listed(runner, ["git", "ls-files", "-z", "--others", "--exclude-standard"], top, env)
    return tuple(sorted({(top / name).resolve() for name in (*diff, *new)}))


def _listed(runner: Runner, argv: list[str], top: Path, env: Mapping[str, str]) -> list[str]:
    done = runner(argv, cwd=top, env=env)
    if done.returncode != 0:
        problem = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise UsageError(f"--since: '{' '.join(argv)}' failed in {top}: {problem[0]}")
    return [name for name in done.stdout.split("\0") if name]
