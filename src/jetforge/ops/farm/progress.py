"""Progress of the build farm: one reporter for all its threads, stage names with their
worker."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jetforge.reporter import Reporter, StageEvent


class Serialized:
    """A reporter that several threads may call; stage names carry their worker."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self._lock = threading.Lock()

    def stage(self, slug: str, state: StageEvent, seconds: float = 0.0, detail: str = "") -> None:
        with self._lock:
            self._reporter.stage(slug, state, seconds, detail)

    def message(self, text: str) -> None:
        with self._lock:
            self._reporter.message(text)

    def output(self, slug: str, line: str) -> None:
        with self._lock:
            self._reporter.output(slug, line)


class OnSite:
    """A reporter for one worker: ``[03-accel @ orin]``."""

    def __init__(self, reporter: Serialized, site: str) -> None:
        self._reporter = reporter
        self._site = site

    def stage(self, slug: str, state: StageEvent, seconds: float = 0.0, detail: str = "") -> None:
        self._reporter.stage(f"{slug} @ {self._site}", state, seconds, detail)

    def message(self, text: str) -> None:
        self._reporter.message(f"{self._site}: {text}")

    def output(self, slug: str, line: str) -> None:
        self._reporter.output(f"{slug} @ {self._site}", line)
