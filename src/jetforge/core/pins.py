"""What a lockfile pins in each stage of a locked build (docs/builds.md, "Locked builds").

A stage is pinned to everything the locked chain had installed up to and including that
stage: its own packages and its parents', so that a later ``apt-get install`` or ``pip
install`` cannot move an earlier one. The pins reach the build as one ``RUN`` inserted
after the stage's last ``FROM``; it writes

- ``/etc/apt/preferences.d/jetforge-lock``: every Debian package at its locked version
  (priority 1001, so apt takes it, even as a downgrade);
- ``/etc/jetforge/lock/python.txt``: every Python distribution as ``name==version``, with
  its file's sha256 and environment in a comment. ``jetforge-pip-install`` (the ``python``
  package) passes the lines of its environment to pip as constraints and fails, naming the
  distribution, when pip got a file with another sha256.

The instruction is part of the stage's Dockerfile, so a locked stage has its own stage key
(the lock is in it). Everything here is pure.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jetforge.core.inventory import canonical_name
from jetforge.core.names import base_name

APT_PREFERENCES = "/etc/apt/preferences.d/jetforge-lock"
PYTHON_PINS = "/etc/jetforge/lock/python.txt"


@dataclass(frozen=True, slots=True)
class Pins:
    """What one stage must install exactly: Debian packages (name, version) and Python
    distributions (name, version, sha256 or "", environment)."""

    debs: tuple[tuple[str, str], ...] = ()
    python: tuple[tuple[str, str, str, str], ...] = ()

    def instruction(self) -> str:
        """The Dockerfile ``RUN`` that writes the pins; empty when there are none."""
        if not self.debs and not self.python:
            return ""
        steps = ["set -e", "mkdir -p /etc/apt/preferences.d /etc/jetforge/lock"]
        preferences: list[str] = []
        for name, version in self.debs:
            preferences += [f"Package: {name}", f"Pin: version {version}", "Pin-Priority: 1001", ""]
        python = [
            f"{name}=={version} # sha256={sha256 or '-'} environment={environment}"
            for name, version, sha256, environment in self.python
        ]
        for path, lines in ((APT_PREFERENCES, preferences), (PYTHON_PINS, python)):
            words = " ".join(map(shlex.quote, lines))
            steps.append(f"printf '%s\\n' {words} > {path}" if lines else f": > {path}")
        return (
            "# jetforge --locked: what the lockfile pins for this stage and the ones before it\n"
            "RUN " + "; \\\n    ".join(steps) + "\n"
        )


class Pinning:
    """The pins of a chain's stages, given in order, from the lock data ``locked``;
    ``upgrade`` names what is left free: Debian packages, Python distributions, or
    packages (every pin of their stages)."""

    def __init__(self, locked: Mapping[str, Any], upgrade: Collection[str] = ()) -> None:
        self._stages = {str(stage.get("variant")): stage for stage in locked.get("stages") or []}
        self._chain = [str(stage.get("variant")) for stage in locked.get("stages") or []]
        self._free = free_names(upgrade)
        self._debs: dict[str, str] = {}
        self._python: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._position = 0
        self._same = True  # every stage so far is the lock's, at its place, none set free
        self._current: Mapping[str, Any] | None = None

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
        installed = stage.get("installed") or {}
        removed = stage.get("removed") or {}
        changed = free
        for name in removed.get("deb") or []:
            self._debs.pop(str(name), None)
        for found in removed.get("python") or []:
            self._python.pop((canonical_name(found["name"]), found["environment"]), None)
        for deb in installed.get("deb") or []:
            if free or deb["name"] in self._free:
                changed = True
                continue
            self._debs[deb["name"]] = deb["version"]
        for found in installed.get("python") or []:
            name = canonical_name(found["name"])
            if free or name in self._free:
                changed = True
                continue
            value = (found["name"], found["version"], found.get("sha256", ""))
            self._python[(name, found["environment"])] = value
        self._same = self._same and at_place and not changed
        return self._pins()

    def locked_image(self, keys: Collection[str]) -> str:
        """The image id the lock gives the stage :meth:`after` just pinned, when it and
        every stage before are the lock's own: the same variant at the same place, with
        one of ``keys`` (its key without and with the pins: the same inputs), nothing set
        free. Reusing that image is the locked build; empty otherwise."""
        stage = self._current
        self._same = self._same and stage is not None and stage.get("key") in keys
        return str(stage.get("image_id") or "") if self._same and stage is not None else ""

    def _pins(self) -> Pins:
        return Pins(
            debs=tuple(sorted(self._debs.items())),
            python=tuple(
                (name, version, sha256, environment)
                for (_, environment), (name, version, sha256) in sorted(self._python.items())
            ),
        )


def free_names(upgrade: Iterable[str]) -> set[str]:
    """The names ``--upgrade`` sets free, as given and normalised (a Python distribution
    matches by its PEP 503 name)."""
    given = set(upgrade)
    return given | {canonical_name(name) for name in given}


def pinned_names(locked: Mapping[str, Any]) -> set[str]:
    """Every name ``--upgrade`` may take for ``locked``: its packages, Debian packages
    and Python distributions."""
    names: set[str] = set()
    for stage in locked.get("stages") or []:
        names |= {str(stage.get("variant")), base_name(str(stage.get("variant")))}
        installed = stage.get("installed") or {}
        names |= {deb["name"] for deb in _items(installed, "deb")}
        names |= {canonical_name(found["name"]) for found in _items(installed, "python")}
    return names


def _items(installed: Mapping[str, Any], kind: str) -> Iterable[Mapping[str, Any]]:
    return installed.get(kind) or []
