"""What a build produced: per-test and per-stage results, one plan's summary (written as
``summary.json``), and the files that remember passed tests by image id (kept in the
state directory and trusted only when they are the user's own: a marker someone else
could write would skip a test)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jetforge.host.stash import read_private, write_private

if TYPE_CHECKING:
    from jetforge.core.plan import StageTest

StageState = Literal["pending", "building", "reused", "built", "failed"]
TestState = Literal["passed", "cached", "failed"]


@dataclass
class TestResult:
    """One test run (or remembered) on one image."""

    package: str
    entry: str
    image: str
    state: TestState
    seconds: float = 0.0


@dataclass
class StageResult:
    """What happened to one stage."""

    index: int
    package: str
    key: str
    image: str
    image_id: str = ""
    state: StageState = "pending"
    seconds: float = 0.0
    tests: list[TestResult] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    worker: str = ""  # the build farm's worker that holds it (empty: the local engine)


@dataclass
class Summary:
    """The outcome of one plan: per-stage results, final image, engine time spent."""

    final_image: str
    stages: list[StageResult]
    final_tests: list[TestResult] = field(default_factory=list)
    ok: bool = False
    pushed: str = ""
    engine_seconds: float = 0.0
    total_seconds: float = 0.0
    transfer_seconds: float = 0.0  # pushes and pulls between a build farm's workers
    lock: str = ""  # the lockfile in the logs directory
    lock_seconds: float = 0.0  # the lock step: listing the images, writing lock and SBOM
    lock_containers: int = 0  # collector containers it ran (none when every image was known)

    @property
    def built(self) -> list[str]:
        """Packages whose stage was built (not reused) in this run."""
        return [stage.package for stage in self.stages if stage.state == "built"]

    @property
    def outcome(self) -> str:
        """``reused`` when no stage was built in this run, else ``built``."""
        return "built" if self.built else "reused"

    def stage_counts(self) -> str:
        """``all 4 stages reused, nothing built``, ``2 of 4 stages built, 2 reused``."""
        built, total = len(self.built), len(self.stages)
        every = "the stage" if total == 1 else f"all {total} stages"
        if not built:
            return f"{every} reused, nothing built"
        if built == total:
            return f"{every} built"
        return f"{built} of {total} stages built, {total - built} reused"


def is_marked(marker: Path) -> bool:
    """Whether ``marker`` says a test passed: it is there, and the user's own."""
    return read_private(marker, limit=64 * 1024) is not None


def mark(marker: Path, text: str = "") -> None:
    """Write ``marker`` (private, atomically)."""
    write_private(marker, text.encode("utf-8"))


def tested_marker(results_dir: Path, image_id: str) -> Path:
    """The file that says an image passed its tests (its stage's, or its whole chain's)."""
    return results_dir / "tested" / image_id.replace(":", "_")


def result_name(image_id: str, test: StageTest) -> str:
    """The file name that says ``test`` passed in the image ``image_id``."""
    text = json.dumps([image_id, test.package, test.entry])
    return hashlib.sha256(text.encode()).hexdigest()
