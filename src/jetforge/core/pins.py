"""What a lockfile pins in each stage of a locked build (docs/builds.md, "Locked builds").

A stage is pinned to everything the locked chain had installed up to and including that
stage: its own packages and its parents', so that a later ``apt-get install`` or ``pip
install`` cannot move an earlier one. The pins reach the build as ``RUN`` instructions
inserted after the stage's last ``FROM`` (one, or several for thousands of packages: see
:data:`RUN_BYTES`); they write

- ``/etc/apt/preferences.d/jetforge-lock``: every Debian package at its locked version
  (priority 1001, so apt takes it, even as a downgrade);
- ``/etc/jetforge/lock/python.txt``: every Python distribution as ``name==version``
  (``===`` for a legacy version), with its file's sha256 and environment in a comment.
  ``jetforge-pip-install`` (the ``python`` package) passes the lines of its environment
  to pip as constraints and fails, naming the distribution, when pip got a file with
  another sha256.

The instructions are part of the stage's Dockerfile, so a locked stage has its own stage
key (the lock is in it). Everything here is pure; the values come from a lockfile read by
:func:`jetforge.core.lockdata.parse_lock_data`, so none can break a line or start an
option.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from jetforge.core.names import base_name

if TYPE_CHECKING:
    from jetforge.core.lockdata import LockedStage

APT_PREFERENCES = "/etc/apt/preferences.d/jetforge-lock"
PYTHON_PINS = "/etc/jetforge/lock/python.txt"


@dataclass(frozen=True, slots=True)
class Pins:
    """What one stage must install exactly: Debian packages (name, version) and Python
    distributions (name, version, sha256 or "", environment)."""

    debs: tuple[tuple[str, str], ...] = ()
    python: tuple[tuple[str, str, str, str], ...] = ()

    def instruction(self) -> str:
        """The Dockerfile ``RUN`` instructions that write the pins; empty when there are
        none. One physical line per package, and as many ``RUN`` as the pins need (one up
        to about 2,000 packages): see :data:`RUN_BYTES`."""
        if not self.debs and not self.python:
            return ""
        debs = [f"{shlex.quote(name)} {shlex.quote(version)}" for name, version in self.debs]
        python = [
            " ".join(
                shlex.quote(word)
                for word in (name, python_specifier(version), sha256 or "-", environment)
            )
            for name, version, sha256, environment in self.python
        ]
        commands = [
            ["mkdir -p /etc/apt/preferences.d /etc/jetforge/lock"],
            *_writes(APT_PREFERENCES, DEB_FORMAT, debs),
            *_writes(PYTHON_PINS, PYTHON_FORMAT, python),
        ]
        runs: list[list[list[str]]] = [[]]
        size = 0
        for command in commands:
            length = sum(len(line.encode()) + len(_NEXT) for line in command)
            if runs[-1] and size + length > RUN_BYTES:
                runs.append([])
                size = 0
            runs[-1].append(command)
            size += length
        return (
            "# jetforge --locked: what the lockfile pins for this stage and the ones before it\n"
            + "".join(
                "RUN " + " \\\n && ".join(_NEXT.join(command) for command in run) + "\n"
                for run in runs
            )
        )


# A RUN instruction's shell command reaches ``sh -c`` as one argument, which Linux limits
# to 128 KiB (MAX_ARG_STRLEN: "argument list too long" beyond, with BuildKit and the legacy
# builder alike); the Dockerfile parser limits a physical line to 64 KiB. So each package
# is a line of its own, and one RUN holds at most this many bytes of them.
RUN_BYTES = 96 * 1024
DEB_FORMAT = "Package: %s\\nPin: version %s\\nPin-Priority: 1001\\n\\n"
PYTHON_FORMAT = "%s%s # sha256=%s environment=%s\\n"
_NEXT = " \\\n    "


def _writes(path: str, format: str, rows: Sequence[str]) -> list[list[str]]:
    """The commands that write ``rows`` (each one package's ``printf`` arguments) to
    ``path`` in the ``printf`` ``format``: the first creates the file, the others append;
    each holds at most about :data:`RUN_BYTES`."""
    if not rows:
        return [[f": > {path}"]]
    chunks: list[list[str]] = [[]]
    size = 0
    for row in rows:
        length = len(row.encode()) + len(_NEXT)
        if chunks[-1] and size + length > RUN_BYTES - 1024:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += length
    return [
        [f"printf '{format}'", *chunk, f"{'>>' if number else '>'} {path}"]
        for number, chunk in enumerate(chunks)
    ]


class Pinning:
    """The pins of a chain's stages, given in order, from a lockfile's ``stages``;
    ``upgrade`` names what is left free: Debian packages, Python distributions, or
    packages (every pin of their stages)."""

    def __init__(self, stages: Sequence[LockedStage], upgrade: Collection[str] = ()) -> None:
        self._stages = {stage.variant: stage for stage in stages}
        self._chain = [stage.variant for stage in stages]
        self._free = free_names(upgrade)
        self._debs: dict[str, str] = {}
        self._python: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._position = 0
        self._same = True  # every stage so far is the lock's, at its place, none set free
        self._current: LockedStage | None = None

    def after(self, variant: str) -> Pins:
        """The pins of the next stage, ``variant``."""
        stage = self._stages.get(variant)
        at_place = self._position < len(self._chain) and self._chain[self._position] == variant
        self._position += 1
        self._current = stage
        if stage is None:
            self._same = False
            return self._pins()
        free = base_name(variant) in self._free or variant in self._free
        changed = free
        for deb in stage.removed.debs:
            self._debs.pop(deb.name, None)
        for found in stage.removed.distributions:
            self._python.pop((_canonical(found.name), found.environment), None)
        for deb in stage.added.debs:
            if free or deb.name in self._free:
                changed = True
                continue
            self._debs[deb.name] = deb.version
        for found in stage.added.distributions:
            name = _canonical(found.name)
            if free or name in self._free:
                changed = True
                continue
            self._python[(name, found.environment)] = (found.name, found.version, found.sha256)
        self._same = self._same and at_place and not changed
        return self._pins()

    def locked_image(self, keys: Collection[str]) -> str:
        """The image id the lock gives the stage :meth:`after` just pinned, when it and
        every stage before are the lock's own: the same variant at the same place, with
        one of ``keys`` (its key without and with the pins: the same inputs), nothing set
        free. Reusing that image is the locked build; empty otherwise."""
        stage = self._current
        self._same = self._same and stage is not None and stage.key in keys
        return stage.image_id if self._same and stage is not None else ""

    def _pins(self) -> Pins:
        return Pins(
            debs=tuple(sorted(self._debs.items())),
            python=tuple(
                (name, version, sha256, environment)
                for (_, environment), (name, version, sha256) in sorted(self._python.items())
            ),
        )


def python_specifier(version: str) -> str:
    """How a Python distribution is pinned to ``version``: ``==VERSION`` for a PEP 440
    version, ``===VERSION`` (arbitrary equality) for a legacy one such as Ubuntu's
    ``distro-info 1.1build1``, which ``==`` cannot name."""
    try:
        Version(version)
    except InvalidVersion:
        return f"==={version}"
    return f"=={version}"


def free_names(upgrade: Iterable[str]) -> set[str]:
    """The names ``--upgrade`` sets free, as given and normalised (a Python distribution
    matches by its PEP 503 name)."""
    given = set(upgrade)
    return given | {_canonical(name) for name in given}


def pinned_names(stages: Sequence[LockedStage]) -> set[str]:
    """Every name ``--upgrade`` may take for a lockfile's ``stages``: its packages, Debian
    packages and Python distributions."""
    names: set[str] = set()
    for stage in stages:
        names |= {stage.variant, base_name(stage.variant)}
        names |= {deb.name for deb in stage.added.debs}
        names |= {_canonical(found.name) for found in stage.added.distributions}
    return names


def _canonical(name: str) -> str:
    """A distribution's PEP 503 name (:mod:`jetforge.core.inventory` is imported by a
    lock's work only: start-up time)."""
    from jetforge.core.inventory import canonical_name

    return canonical_name(name)
