"""The formats a package search directory is read in: jetforge's own, jetson-containers'
(``jc``), or ``auto`` (decided per package directory; a jetson-containers checkout is read
as jc). A module of its own: the config file and the command line check them at every
start, and need none of :mod:`jetforge.core.spec`."""

from __future__ import annotations

from typing import Literal

RootFormat = Literal["auto", "jetforge", "jc"]
ROOT_FORMATS: tuple[RootFormat, ...] = ("auto", "jetforge", "jc")


def root_format(text: str) -> RootFormat:
    """``text`` as a search directory format (one of :data:`ROOT_FORMATS`)."""
    for known in ROOT_FORMATS:
        if text == known:
            return known
    raise ValueError(f"unknown package format '{text}' (valid: {', '.join(ROOT_FORMATS)})")
