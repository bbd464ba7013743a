"""Terminal progress for builds: a live line per stage on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # rich is imported when a live display is shown (start-up time)
    from rich.table import Table

    from jetforge.reporter import StageEvent

DONE_STATES = ("reused", "built", "passed", "failed")


class PlainReporter:
    """One line per state change, for logs and pipes."""

    def __init__(self, stream: TextIO, *, verbose: bool = False, quiet: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        self.quiet = quiet

    def stage(self, slug: str, state: StageEvent, seconds: float = 0.0, detail: str = "") -> None:
        """Print a state change."""
        if self.quiet:
            return
        timing = f" in {seconds:.1f}s" if seconds else ""
        extra = f" {detail}" if detail else ""
        print(f"jetforge: [{slug}] {state}{extra}{timing}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """Print a notice."""
        if not self.quiet:
            print(f"jetforge: {text}", file=self.stream, flush=True)

    def output(self, slug: str, line: str) -> None:
        """Echo engine output only with -v (it is always in the log files)."""
        if self.verbose:
            print(f"  {slug}| {line}", file=self.stream, flush=True)


class LiveReporter:
    """A rich live table: one row per stage with its state and elapsed time."""

    def __init__(self, stream: TextIO, *, color: bool = True) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream, no_color=not color, highlight=False)
        self.rows: dict[str, tuple[str, str, float]] = {}
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.get_renderable = self._render  # type: ignore[method-assign]

    def __enter__(self) -> LiveReporter:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.refresh()
        self.live.stop()

    def _render(self) -> Table:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for slug, (state, detail, started) in self.rows.items():
            elapsed = "" if state in DONE_STATES and not started else f"{now - started:5.1f}s"
            if state in DONE_STATES:
                elapsed = detail
                detail = ""
            style = {"failed": "red", "reused": "cyan", "built": "green", "passed": "green"}
            table.add_row(slug, f"[{style.get(state, 'yellow')}]{state}[/]", elapsed, detail)
        return table

    def stage(self, slug: str, state: StageEvent, seconds: float = 0.0, detail: str = "") -> None:
        """Update a stage's row."""
        if state in DONE_STATES:
            self.rows[slug] = (state, f"{seconds:.1f}s" if seconds else "", 0.0)
        else:
            self.rows[slug] = (state, detail, time.monotonic())

    def message(self, text: str) -> None:
        """Print a notice above the table."""
        self.console.print(text)

    def output(self, slug: str, line: str) -> None:
        """Engine output goes to the log files only."""
