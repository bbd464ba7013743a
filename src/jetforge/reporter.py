"""Progress reporting: the library calls a reporter; the CLI decides what to show."""

from __future__ import annotations

from typing import Literal, Protocol

# What happens to a stage, in the order it can happen.
StageEvent = Literal["reused", "building", "built", "testing", "passed", "failed"]


class Reporter(Protocol):
    """Receives progress events of a build. Every method has a no-op default below."""

    def stage(self, slug: str, state: StageEvent, seconds: float = 0.0, detail: str = "") -> None:
        """A stage changed state; ``detail`` names the test of ``testing``, ``passed`` and
        a test's ``failed``."""

    def message(self, text: str) -> None:
        """A one-line notice (a warning, a pushed image, the final tag)."""

    def output(self, slug: str, line: str) -> None:
        """One line of a running build or test."""


class NullReporter:
    """Reports nothing (the library default)."""

    def stage(self, slug: str, state: StageEvent, seconds: float = 0.0, detail: str = "") -> None:
        """Ignore a state change."""

    def message(self, text: str) -> None:
        """Ignore a notice."""

    def output(self, slug: str, line: str) -> None:
        """Ignore an output line."""
