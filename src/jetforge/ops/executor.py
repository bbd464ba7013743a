"""Execute a plan on an engine: reuse or build each stage, test it, tag, push, log.

Reuse is by stage key (docs/builds.md, "Reuse"): a completed build of the stage's key on
the image chosen for its parent is tagged instead of built (:mod:`jetforge.ops.reuse`).
Passing tests are remembered per (image id, package, test) and not rerun
(:mod:`jetforge.ops.verify`). The final tag is applied only when every stage and test
passed. Logs follow docs/builds.md, "Logs".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from jetforge.cache.builds import built_dockerfile, parse_cache_event
from jetforge.core.labels import STAGE_KEY
from jetforge.core.plan import (
    Plan,
    Stage,
    as_built,
    built_dockerfile_path,
    parent_placeholder,
    plan_json,
)
from jetforge.engine.base import Engine, ImageInfo
from jetforge.engine.command import Command
from jetforge.errors import FailureError, StageFailedError
from jetforge.host.process import Completed, OutputSink
from jetforge.ops.lockstep import LockStep, Pinned
from jetforge.ops.results import (
    StageResult,
    Summary,
    TestResult,
)
from jetforge.ops.reuse import named_chain, on_parent, reusable_chain, stage_images
from jetforge.ops.verify import Verifier, should_test
from jetforge.reporter import NullReporter, Reporter

TAIL_LINES = 30
_CONTAINERS = itertools.count(1)  # test container names, unique in this process


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """How to execute a plan (the plan itself decides what is built)."""

    logs_dir: Path
    data_dir: Path  # mounted at /data in test containers: the user's, never jetforge's records
    results_dir: Path
    state_dir: Path  # jetforge's own records (the lock step's inventories and SBOMs)
    rebuild: bool = False
    skip_tests: tuple[str, ...] = ()
    test_only: tuple[str, ...] = ()
    push: str | None = None
    resume: str = ""
    run_options: tuple[str, ...] = ()
    build_extra: tuple[str, ...] = ()
    remote: Callable[[Stage], str | None] | None = None
    # RUN mounts added to every stage's Dockerfile (the package cache's build secrets);
    # the edited Dockerfile is written next to the logs, the plan keeps the original.
    run_mounts: tuple[str, ...] = ()
    # The lock step (jetforge.ops.lockstep): the lockfile and SBOM after the final tests, and a
    # copy of the lockfile at ``lock_file``. Builds on one engine only (``execute``).
    lock: bool = False
    lock_file: Path | None = None
    lock_option: str = "--lock"  # how the user named lock_file
    locked: Pinned | None = None  # build --locked: the build must install what it pins


class Executor:
    """Walks one plan on one engine."""

    def __init__(
        self, plan: Plan, engine: Engine, options: BuildOptions, reporter: Reporter | None = None
    ) -> None:
        self.plan = plan
        self.engine = engine
        self.options = options
        self.reporter = reporter or NullReporter()
        self.summary = Summary(
            str(plan.final_image),
            [StageResult(s.index, s.package, s.key, str(s.image)) for s in plan.stages],
        )
        self._cache_events: list[str] = []
        self._known: dict[str, list[ImageInfo]] | None = None
        # the lock step's collector; a farm also lists each stage where it ran
        self.locking = LockStep(plan, engine, options.state_dir, self.reporter)
        self.base_id = ""  # the base image's id, for an engine that does not hold it (a farm)
        self.verifier = Verifier(
            engine,
            self.reporter,
            self._engine_step,
            results_dir=options.results_dir,
            data_dir=options.data_dir,
            logs_dir=options.logs_dir,
            run_options=options.run_options,
            resume=options.resume,
        )

    def command(self, stage: Stage) -> Command:
        """The engine command that builds ``stage`` (from the Dockerfile written beside the
        logs: :meth:`write_dockerfile`)."""
        stage = as_built(stage, self.options.logs_dir)
        return self.engine.build_command(stage, self.options.build_extra)

    def write_dockerfile(self, stage: Stage, parent: str) -> None:
        """The Dockerfile that builds ``stage`` on the image ``parent`` (its id, or the
        plan's placeholder for it), beside the logs (:func:`built_dockerfile`)."""
        text = built_dockerfile(stage, parent, self.options.run_mounts)
        built_dockerfile_path(stage, self.options.logs_dir).write_text(text, encoding="utf-8")

    def execute(self) -> Summary:
        """Build and test every stage, then tag (and push) the final image.

        A log that cannot be written (a full disk) fails the build with one line; what was
        built so far stays, and a rerun resumes."""
        with self._logged():
            self.prepare()
            parent = self._base()
            chain = self._reusable(parent)
            for position, (stage, result) in enumerate(
                zip(self.plan.stages, self.summary.stages, strict=True)
            ):
                reuse = chain[position] if position < len(chain) else None
                parent = self._stage(stage, result, parent, reuse)
            self._conclude()
        return self.summary

    def prepare(self, *, write_plan: bool = True) -> None:
        """The logs directory, the edited Dockerfiles and (``write_plan``) plan.json,
        before any stage."""
        with self._logged(summary=False):
            self.options.logs_dir.mkdir(parents=True, exist_ok=True)
            base = self.base_id or self._image_id(self.plan.base_image)
            for stage in self.plan.stages:  # each written again with its parent's id
                self.write_dockerfile(stage, parent_placeholder(self.plan, stage, base))
            if write_plan:
                commands = {s.index: self.command(s).argv for s in self.plan.stages}
                _write_json(self.options.logs_dir / "plan.json", plan_json(self.plan, commands))

    def run_stage(
        self, stage: Stage, parent_id: str, known: Mapping[str, list[ImageInfo]] | None = None
    ) -> StageResult:
        """Reuse, pull or build one stage on this engine, on the image ``parent_id`` (which
        must be there), and run its tests: the unit of work a build farm hands to one
        worker. ``known``: the engine's stage images by key, when the caller has listed
        them; else they are listed now."""
        self._known = None if known is None or self.options.rebuild else dict(known)
        result = self.summary.stages[self.plan.stages.index(stage)]
        with self._logged(summary=False):
            parent = self.engine.inspect(parent_id) if parent_id else None
            if parent is None and parent_id:
                parent = ImageInfo(parent_id)
            reuse = None if self.options.rebuild else on_parent(self._candidates(stage), parent)
            self._stage(stage, result, parent, reuse)
        return result

    def conclude(
        self, results: Sequence[StageResult], tested: Sequence[TestResult] | None = None
    ) -> Summary:
        """Given every stage's result (from wherever each ran; the last stage's image is
        on this engine): the final tests (unless ``tested`` has them, from another engine
        holding the same image), the lock step, the final tag, the push, summary.json."""
        self.summary.stages = list(results)
        self._known = None
        with self._logged():
            self._conclude(tested)
        return self.summary

    def final_tests(self, results: Sequence[StageResult]) -> list[TestResult]:
        """The chain's final tests in the last stage's image on this engine, given every
        stage's result (another engine concludes the chain)."""
        self.summary.stages = list(results)
        with self._logged(summary=False):
            self._final_tests()
        return self.summary.final_tests

    def _conclude(self, tested: Sequence[TestResult] | None = None) -> None:
        if tested is None:
            self._final_tests()
        else:
            self.summary.final_tests = list(tested)
        locking = self.locking
        lock = (
            locking.collect([s.image_id for s in self.summary.stages], self.base_id)
            if self.options.lock
            else None
        )
        if lock is not None and self.options.locked is not None:
            self.options.locked.check(lock, self.options.logs_dir)  # before the final tag
        self._finish()
        if lock is not None:
            written = locking.write(
                lock, self.options.logs_dir, self.options.lock_file, self.options.lock_option
            )
            self.summary.lock, self.summary.lock_containers = str(written), locking.containers
            self.summary.lock_seconds = round(locking.seconds, 3)
        self.summary.ok = True

    @contextmanager
    def _logged(self, *, summary: bool = True) -> Iterator[None]:
        """A log that cannot be written is one line; ``summary.json`` is written however
        the block ends (with ``summary``)."""
        started = time.monotonic()
        logs = self.options.logs_dir
        try:
            try:
                yield
            finally:
                if summary:
                    self.summary.total_seconds = round(time.monotonic() - started, 3)
                    with contextlib.suppress(OSError):
                        _write_json(logs / "summary.json", asdict(self.summary))
        except OSError as error:
            where = error.filename or logs
            raise FailureError(f"{where}: {error.strerror or error}") from None

    def _base(self) -> ImageInfo | None:
        """The base image the first stage is built on (None: not on this engine)."""
        found = self.engine.inspect(self.plan.base_image)
        if found is None and self.base_id:
            return ImageInfo(self.base_id)
        return found

    def _image_id(self, reference: str) -> str:
        found = self.engine.inspect(reference)
        return found.id if found else ""

    def _candidates(self, stage: Stage) -> list[ImageInfo]:
        """The images that may stand for ``stage``, preferred first: the lockfile's own
        image for it, then the completed builds of its key, newest first."""
        if self._known is None:
            self._known = {} if self.options.rebuild else stage_images(self.engine)
        found = list(self._known.get(stage.key, []))
        if stage.locked_id and not any(info.id == stage.locked_id for info in found):
            locked = self.engine.inspect(stage.locked_id)
            if locked is not None:
                found.insert(0, locked)
        return found

    def _reusable(self, base: ImageInfo | None) -> list[ImageInfo]:
        """The images of the longest prefix of the plan that one chain of completed stage
        builds covers, starting on ``base``: the stage names' own when they cover it all
        (no listing), else the engine's stage images are listed."""
        if self.options.rebuild:
            return []
        stages = self.plan.stages
        named = named_chain(stages, base, self.engine.inspect)
        if named is not None:
            self._known = {stage.key: [image] for stage, image in zip(stages, named, strict=True)}
            return named
        candidates = [self._candidates(stage) for stage in stages]
        return reusable_chain([s.key for s in stages], candidates, base, self.engine.inspect)

    def _stage(
        self, stage: Stage, result: StageResult, parent: ImageInfo | None, reuse: ImageInfo | None
    ) -> ImageInfo | None:
        """Reuse ``reuse`` for ``stage``, else pull or build it on ``parent``, then test it;
        the image it ends with."""
        reporter = self.reporter
        log_path = self.options.logs_dir / f"{stage.slug}.build.log"
        why = f"label {STAGE_KEY}={stage.key} on its parent"
        if reuse is not None and reuse.id == stage.locked_id:
            why = "the lockfile's image for this stage"
        if reuse is None and not self.options.rebuild and self.options.remote is not None:
            reuse = self._pull_stage(stage, parent, log_path)
        if reuse is None:
            self.write_dockerfile(stage, parent.id if parent else "")
        command = self.command(stage)
        (self.options.logs_dir / f"{stage.slug}.build.sh").write_text(
            f"#!/bin/sh\n# {stage.package}: stage {stage.index} of {self.plan.final_image}\n"
            f"{command.shell()}\n",
            encoding="utf-8",
        )
        image = reuse
        if reuse is not None:
            if str(stage.image) not in reuse.tags:
                self.engine.tag(reuse.id, str(stage.image))
            result.state, result.image_id = "reused", reuse.id
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"reused {reuse.id} ({why})\n")
            reporter.stage(stage.slug, "reused")
        else:
            reporter.stage(stage.slug, "building")
            result.state = "building"
            self._cache_events = result.cache
            seconds, done_ok, tail = self._engine_step(
                stage.slug, log_path, lambda sink: self.engine.build(command, sink)
            )
            self._cache_events = []
            result.seconds = seconds
            if not done_ok:
                result.state = "failed"
                reporter.stage(stage.slug, "failed", seconds)
                raise StageFailedError(
                    stage.package, "build", command.shell(), log_path, tail, self.options.resume
                )
            image = self.engine.inspect(str(stage.image))
            result.state, result.image_id = "built", image.id if image else ""
            reporter.stage(stage.slug, "built", seconds)
            if self.options.locked is not None:
                self._check_locked(stage, result.image_id)
        last = stage is self.plan.stages[-1]
        if self._should_test(stage.package, final=last):
            result.tests = [
                self.verifier.test(stage, test, result.image_id, str(stage.image))
                for test in stage.tests
            ]
            if not last:  # the last image is the final one: marked when all its tests pass
                self.verifier.mark_tested(result.image_id)
        return image

    def _check_locked(self, stage: Stage, image_id: str) -> None:
        """``build --locked``: fail right after a stage that installed otherwise than the
        lockfile pins (the chain's later stages are not built)."""
        position = self.plan.stages.index(stage)
        if position:
            parent_id = self.summary.stages[position - 1].image_id
        else:
            base = self.engine.inspect(self.plan.base_image)
            parent_id = base.id if base else ""
        parent = self.locking.inventory(parent_id, "the parent image") if parent_id else None
        image = self.locking.inventory(image_id, stage.package) if image_id else None
        if parent is not None and image is not None and self.options.locked is not None:
            self.options.locked.check_stage(stage, image, parent, self.options.logs_dir)

    def _should_test(self, package: str, *, final: bool) -> bool:
        return should_test(package, self.options.skip_tests, self.options.test_only, final=final)

    def _final_tests(self) -> None:
        last = self.summary.stages[-1]
        image = str(self.plan.stages[-1].image)
        for stage in self.plan.stages:
            if self._should_test(stage.package, final=True):
                self.summary.final_tests += [
                    self.verifier.test(stage, test, last.image_id, image) for test in stage.tests
                ]

    def _engine_step(
        self,
        slug: str,
        log_path: Path,
        action: Callable[[OutputSink], Completed],
        header: str = "",
    ) -> tuple[float, bool, tuple[str, ...]]:
        tail: list[str] = []
        started = time.monotonic()
        with log_path.open("a", encoding="utf-8") as log:
            if header:
                log.write(header + "\n")

            def sink(line: str) -> None:
                _log_line(log, line)
                tail.append(line)
                del tail[:-TAIL_LINES]
                self.reporter.output(slug, line)
                event = parse_cache_event(line)
                if event is not None:
                    self._cache_events.append(event)
                    self.reporter.message(f"[{slug}] package cache: {event}")

            done = action(sink)
        seconds = round(time.monotonic() - started, 3)
        self.summary.engine_seconds += seconds
        return seconds, done.returncode == 0, tuple(tail)

    def _pull_stage(
        self, stage: Stage, parent: ImageInfo | None, log_path: Path
    ) -> ImageInfo | None:
        """Pull the stage's image from a registry when one holds a completed build of its
        key on ``parent``."""
        reference = self.options.remote(stage) if self.options.remote else None
        if reference is None:
            return None
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"pulling {reference} (registry image with {STAGE_KEY}={stage.key})\n")
            done = self.engine.pull(reference, lambda line: _log_line(log, line))
        info = self.engine.inspect(reference) if done.returncode == 0 else None
        if info is None or info.labels.get(STAGE_KEY) != stage.key:
            return None
        if on_parent([info], parent) is None:
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"not reused: {reference} was built on another parent image\n")
            return None
        self.reporter.message(f"pulled {reference}")
        return info

    def _finish(self) -> None:
        last = self.plan.stages[-1]
        final = str(self.plan.final_image)
        image_id = self.summary.stages[-1].image_id
        reused = next((i for i in (self._known or {}).get(last.key, []) if i.id == image_id), None)
        if reused is None or final not in reused.tags:  # a no-op rebuild has it tagged
            self.engine.tag(str(last.image), final)
        self.verifier.mark_tested(self.summary.stages[-1].image_id)
        self.reporter.message(f"tagged {final}")
        if self.options.push:
            # Stage images go along (they share the final image's layers, so this costs
            # manifests only): another machine with this registry configured reuses them.
            repository = self.options.push.rstrip("/")
            for stage in self.plan.stages:
                self._push(str(stage.image), f"{repository}/{stage.image.name}:{stage.image.tag}")
            target = f"{repository}/{self.plan.final_image.name}"
            target += f":{self.plan.final_image.tag}" if self.plan.final_image.tag else ""
            self._push(final, target)
            self.summary.pushed = target
            self.reporter.message(f"pushed {target}")

    def _push(self, source: str, target: str) -> None:
        self.engine.tag(source, target)
        tail: list[str] = []
        done = self.engine.push(target, tail.append)
        if done.returncode != 0:
            raise FailureError(f"push of {target} failed: {' '.join(tail[-3:]).strip()}")


def _log_line(log: TextIO, line: str) -> None:
    log.write(line + "\n")
    log.flush()


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
