"""Tests inside the images a build produced (docs/builds.md, "Tests"): which packages' tests run,
and one test in one image, in a container removed however it ends, remembered by image id
once it passed (:mod:`jetforge.ops.results`: the markers), so it is not run again there."""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from jetforge.core.names import base_name
from jetforge.core.plan import Stage, StageTest
from jetforge.engine.base import Engine
from jetforge.engine.command import run_options_for_test
from jetforge.errors import StageFailedError
from jetforge.host.process import Completed, OutputSink
from jetforge.ops.results import TestResult, is_marked, mark, result_name, tested_marker
from jetforge.reporter import Reporter

_CONTAINERS = itertools.count(1)  # test container names, unique in this process

# One engine step of a stage, logged: (stage slug, log file, the engine call, a header
# line) -> (seconds, whether it succeeded, the log's last lines).
Step = Callable[
    [str, Path, Callable[[OutputSink], Completed], str], tuple[float, bool, tuple[str, ...]]
]


def is_listed(package: str, patterns: Sequence[str]) -> bool:
    """Whether a package's base or full name matches one of the shell patterns."""
    base = base_name(package)
    return any(fnmatch.fnmatchcase(package, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def should_test(package: str, skip: Sequence[str], only: Sequence[str], *, final: bool) -> bool:
    """Whether ``package``'s tests run (``--skip-tests`` ``skip``, ``--test-only``
    ``only``; ``final``: in the chain's last image)."""
    if "all" in skip or is_listed(package, skip):
        return False
    if "intermediate" in skip and not final:
        return False
    return not only or is_listed(package, only)


@dataclass(frozen=True)
class Verifier:
    """Runs tests on one engine; ``step`` logs each run as the build's other steps are."""

    engine: Engine
    reporter: Reporter
    step: Step
    results_dir: Path
    data_dir: Path
    logs_dir: Path
    run_options: tuple[str, ...] = ()
    resume: str = ""

    def test(self, stage: Stage, test: StageTest, image_id: str, image: str) -> TestResult:
        """Run ``test`` of ``stage`` in ``image`` (whose id is ``image_id``), unless it passed
        there before; a failure raises :class:`StageFailedError`."""
        marker = self.results_dir / result_name(image_id, test)
        result = TestResult(test.package, test.entry, image, "passed")
        if image_id and is_marked(marker):
            result.state = "cached"
            return result
        name = f"jetforge-test-{os.getpid()}-{next(_CONTAINERS)}"
        options = run_options_for_test(
            name=name,
            package_dir=str(test.package_dir),
            data_dir=str(self.data_dir),
            workdir=test.workdir,
            extra=self.run_options,
        )
        log_path = self.logs_dir / f"{stage.slug}.test.log"
        self.reporter.stage(stage.slug, "testing", detail=test.entry)
        with self._cleanup(name):
            seconds, ok, tail = self.step(
                stage.slug,
                log_path,
                lambda sink: self.engine.run(options, image, test.argv, sink),
                f"$ {test.entry}  (in {image})",
            )
        result.seconds = seconds
        if not ok:
            result.state = "failed"
            self.reporter.stage(stage.slug, "failed", seconds, test.entry)
            command = self.engine.run_command(options, image, test.argv).shell()
            raise StageFailedError(
                stage.package, f"test {test.entry}", command, log_path, tail, self.resume
            )
        if image_id:
            mark(marker, json.dumps(asdict(result)))
        self.reporter.stage(stage.slug, "passed", seconds, test.entry)
        return result

    def mark_tested(self, image_id: str) -> None:
        """Remember that ``image_id`` passed its tests (autotag offers only such images)."""
        if image_id:
            mark(tested_marker(self.results_dir, image_id))

    @contextmanager
    def _cleanup(self, container: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.engine.remove_container(container)
            raise
