"""Run one build's stages on several workers at once.

The plans of one invocation become one graph of stages by stage key: a prefix that several
chains share is one node, built once. A node runs when its parent is done, on a worker
with a free slot whose labels fit the plan's platform (a first stage only on a worker that
holds the base image the keys were computed from), the node with the longest chain above
it first. The executor does the stage's work there (reuse by key, pull from the registry,
build, tests); the farm brings the parent image to that worker first and pushes the
result to the shared registry after, in the background, so the next stage may run
anywhere. Each chain ends on its home, the first of its fitting workers: final tests
(where the last image is, while it travels home), final tag, push.

A stage that fails because its worker's engine went away (it no longer answers) is tried
once more on another worker; a build or test error is reported as on one engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TYPE_CHECKING

from jetforge.core.labels import STAGE_KEY
from jetforge.errors import FailureError, JetforgeError, StageFailedError, UsageError
from jetforge.host.process import stop_streaming
from jetforge.ops.executor import BuildOptions, Executor
from jetforge.ops.farm.graph import Ended, Node, Site, stage_graph
from jetforge.ops.farm.progress import OnSite, Serialized
from jetforge.ops.results import StageResult, Summary, TestResult
from jetforge.ops.reuse import stage_images

if TYPE_CHECKING:
    from jetforge.core.plan import Plan, Stage
    from jetforge.core.tags import ImageRef
    from jetforge.engine.base import Engine, ImageInfo
    from jetforge.reporter import Reporter

Store = Callable[["Stage"], str]  # where a stage's image goes in the shared registry


class _LostError(FailureError):
    """A parent image that only a worker gone held: the parent is built again."""

    def __init__(self, node: Node) -> None:
        super().__init__(f"{node.stage.package}: its image was only on workers that are gone")
        self.node = node


class Farm:
    """Builds ``plans`` over ``sites`` (see the module's text); ``store`` names where each
    stage image goes in the shared registry, ``options[i]`` is plan ``i``'s."""

    def __init__(
        self,
        plans: Sequence[Plan],
        sites: Sequence[Site],
        options: Sequence[BuildOptions],
        store: Store,
        reporter: Reporter,
        base_id: str = "",
    ) -> None:
        self.plans = list(plans)
        self.base_id = base_id  # the first stages' base image (each lockfile lists it)
        self.sites = {site.worker.name: site for site in sites}
        self.options = list(options)
        self.store = store
        self.reporter = Serialized(reporter)
        self.nodes = stage_graph(plans)
        self.free = {site.worker.name: site.worker.jobs for site in sites}
        self.dead: set[str] = set()
        self.transfer_seconds = [0.0] * len(self.plans)
        self.stopping = threading.Event()
        self._executors: dict[tuple[int, str], Executor] = {}
        # what each worker held when asked, by stage key (what the farm builds it knows)
        self.listings: dict[str, dict[str, list[ImageInfo]]] = {name: {} for name in self.sites}

    def _survey(self) -> None:
        """Check that every plan has a worker, write each plan's logs, and ask every worker
        (once) which stage images it holds."""
        for number, plan in enumerate(self.plans):
            if not any(self._fits(site, plan) for site in self.sites.values()):
                names = ", ".join(self.sites)
                raise UsageError(f"no worker fits {plan.platform.label} (workers: {names})")
            home = self._home(number)
            for name in self.sites:  # plan.json with the home's commands
                self._executor(number, name).prepare(write_plan=name == home)
        if any(options.rebuild for options in self.options):
            return  # --rebuild: nothing a worker holds is reused
        with ThreadPoolExecutor(max_workers=len(self.sites)) as asking:  # all at once
            listings = asking.map(lambda site: stage_images(site.engine), self.sites.values())
            for name, listing in zip(self.sites, listings, strict=True):
                self.listings[name] = listing
                for key in listing.keys() & self.nodes.keys():
                    self.nodes[key].holders.add(name)

    def run(self) -> Iterator[Ended]:
        """Yield each chain's end as it comes; Ctrl-C stops every worker's running step."""
        self._survey()
        ended: set[int] = set()
        running: dict[Future[object], tuple[str, str | int]] = {}
        threads = sum(self.free.values()) + len(self.plans)  # a conclusion takes no slot
        with (
            ThreadPoolExecutor(max_workers=threads) as pool,
            ThreadPoolExecutor(max_workers=len(self.sites)) as pushes,
        ):
            try:
                while len(ended) < len(self.plans):
                    for number, failure in self._failed_plans(ended):
                        ended.add(number)
                        yield Ended(self.plans[number], failure=failure)
                    self._start(pool, running, ended)
                    if not running:
                        if len(ended) < len(self.plans):
                            raise FailureError("the build farm has no worker left for its stages")
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        site, job = running.pop(future)
                        if isinstance(job, int):
                            lost = future.exception()
                            if isinstance(lost, _LostError):  # its last image: built again
                                self._rebuild(lost.node)
                                continue
                            ended.add(job)
                            yield self._ended(job, future)
                            continue
                        self.free[site] += 1
                        node = self.nodes[job]
                        self._finished(node, site, future)
                        if node.result is not None and node.result.state == "built":
                            pushes.submit(self._share, node)
            except BaseException:
                self.stopping.set()  # no step starts now; the running ones are stopped
                stop_streaming()
                wait(running)
                raise

    def _share(self, node: Node) -> None:
        """Push a stage image just built to the registry while its worker goes on (the
        next stage may need it elsewhere; a worker lost later loses nothing). A failure
        here is met again, and reported, where the image is needed."""
        try:
            self._unless_stopping()
            self._publish(node)
        except (JetforgeError, OSError):
            return

    def _unless_stopping(self) -> None:
        """Refuse to start a step once Ctrl-C (or an error) stops the farm."""
        if self.stopping.is_set():
            raise FailureError("the build farm is stopping")

    def _start(
        self,
        pool: ThreadPoolExecutor,
        running: dict[Future[object], tuple[str, str | int]],
        ended: set[int],
    ) -> None:
        busy = {job for _, job in running.values()}
        for number, plan in enumerate(self.plans):
            last = self.nodes[plan.stages[-1].key]
            if number in ended or number in busy or last.result is None:
                continue
            home = self._home(number)
            if home is not None:  # mostly a pull and short tests: it takes no build slot
                running[pool.submit(self._conclude, number, home)] = (home, number)
        ready = [
            node
            for node in self.nodes.values()
            if node.result is None
            and node.failure is None
            and node.key not in busy
            and (node.parent is None or self.nodes[node.parent].result is not None)
        ]
        waiting = sorted(ready, key=lambda n: (-n.height, n.plan, n.stage.index))
        for number, node in enumerate(waiting):
            others = {h for n in waiting[number + 1 :] if n.parent for h in self._holders(n.parent)}
            site = self._pick(node, others)
            if site is None:
                if not self._pick(node, set(), any_slot=True):
                    tried = ", ".join(sorted(node.tried)) or "none"
                    detail = f"no worker left that fits it (tried: {tried})"
                    node.failure = self._failure(node.plan, node.stage, "scheduling", detail)
                continue
            self.free[site] -= 1
            node.tried.add(site)
            running[pool.submit(self._build, node, site)] = (site, node.key)

    def _fits(self, site: Site, plan: Plan) -> bool:
        return site.worker.name not in self.dead and site.worker.fits(plan.platform)

    def _pick(self, node: Node, others: set[str], *, any_slot: bool = False) -> str | None:
        """The worker for ``node``: one that fits, has a free slot (or any, with
        ``any_slot``) and has not failed it: only those holding its image when some do
        (reuse there costs nothing), else one holding its parent's first (nothing to
        transfer), then one that holds none of ``others`` (parents of stages that wait
        after it), then the least busy."""
        plan = self.plans[node.plan]
        parent = self._holders(node.parent) if node.parent else set()
        fitting = [
            name
            for name, site in self.sites.items()
            if name not in node.tried
            and self._fits(site, plan)
            and (node.parent is not None or site.has_base)
        ]
        holding = [name for name in fitting if name in node.holders]
        # A stage a worker holds waits for that worker: reusing it there costs nothing.
        candidates = [n for n in holding or fitting if any_slot or self.free[n] > 0]
        if not candidates:
            return None
        return min(
            candidates,
            key=lambda n: (n not in node.holders, n not in parent, n in others, -self.free[n]),
        )

    def _holders(self, key: str) -> set[str]:
        return self.nodes[key].holders - self.dead

    def _home(self, number: int) -> str | None:
        plan = self.plans[number]
        return next((n for n, site in self.sites.items() if self._fits(site, plan)), None)

    def _executor(self, number: int, site: str) -> Executor:
        key = (number, site)
        if key not in self._executors:
            reporter = OnSite(self.reporter, site)
            engine = self.sites[site].engine
            self._executors[key] = Executor(
                self.plans[number], engine, self.options[number], reporter
            )
        return self._executors[key]

    def _build(self, node: Node, site: str) -> StageResult:
        """On ``site``: bring the parent image, then run the stage."""
        if node.parent is not None:
            self._bring(site, node.stage.base, self.nodes[node.parent], node.plan)
        self._unless_stopping()
        executor = self._executor(node.plan, site)
        parent = self.nodes[node.parent].result if node.parent is not None else None
        parent_id = parent.image_id if parent is not None else self.base_id
        result = executor.run_stage(node.stage, parent_id, self.listings[site])
        result = replace(result, worker=site)
        node.holders.add(site)
        if self.options[node.plan].lock:  # listed where it is; the home reads the lists
            locking = executor.locking
            if node.parent is None and self.base_id:
                locking.inventory(self.base_id, f"base image {node.stage.base}")
            locking.inventory(result.image_id, node.stage.package)
        return result

    def _bring(self, site: str, name: ImageRef, parent: Node, plan: int) -> None:
        """Make ``name`` on ``site`` the image of ``parent``: tagged when ``site`` holds it,
        else pulled from the registry (where a worker holding it pushes it, once)."""
        engine = self.sites[site].engine
        if site in parent.holders and self._tag_held(engine, str(name), parent):
            return
        self._unless_stopping()
        started = time.monotonic()
        reference = self._publish(parent)
        tail: list[str] = []
        if engine.pull(reference, tail.append).returncode != 0:
            raise FailureError(f"pull of {reference} failed: {' '.join(tail[-3:]).strip()}")
        engine.tag(reference, str(name))
        engine.untag(reference)
        parent.holders.add(site)
        self.transfer_seconds[plan] += time.monotonic() - started

    @staticmethod
    def _tag_held(engine: Engine, name: str, node: Node) -> bool:
        """Tag ``node``'s image on ``engine`` as ``name``, by the image id its result has
        (push and pull keep it), else by its key; False when ``engine`` does not hold it
        (an image with that key from an earlier build is not this one)."""
        if node.result is not None and node.result.image_id:
            try:
                engine.tag(node.result.image_id, str(name))
            except FailureError:
                return False  # another image with that key (an earlier build): not this one
            return True
        local = engine.list_images([f"label={STAGE_KEY}={node.key}"])
        if local:
            engine.tag(local[0].id, str(name))
        return bool(local)

    def _publish(self, node: Node) -> str:
        """The registry reference of ``node``'s image, pushed there from a worker that
        holds it when it is not yet."""
        reference = self.store(node.stage)
        with node.lock:
            if node.pushed:
                return reference
            for holder in sorted(node.holders - self.dead, key=lambda h: h != node.site):
                engine = self.sites[holder].engine
                if not self._tag_held(engine, reference, node):
                    continue
                tail: list[str] = []
                pushed = engine.push(reference, tail.append).returncode == 0
                engine.untag(reference)  # the stage's own names stay; the registry's go
                if pushed:
                    node.pushed = True
                    return reference
                if self._answers(holder):
                    raise FailureError(f"push of {reference} failed: {' '.join(tail[-3:])}")
                self.dead.add(holder)
            raise _LostError(node)

    def _finished(self, node: Node, site: str, future: Future[object]) -> None:
        error = future.exception()
        if error is None:
            result = future.result()
            assert isinstance(result, StageResult)
            node.result, node.site = result, site
            return
        if isinstance(error, _LostError):  # build the parent again, then this one
            self._rebuild(error.node)
            node.tried.discard(site)
            return
        engine_reason = isinstance(error, JetforgeError | OSError)  # StageFailedError is one
        if engine_reason and not self._answers(site):
            self.dead.add(site)
            self.reporter.message(f"worker {site} stopped answering; its stage goes elsewhere")
            if len(node.tried) < 2:
                return  # picked again, elsewhere
        if isinstance(error, StageFailedError):
            node.failure = error
            return
        if isinstance(error, JetforgeError | OSError):
            node.failure = self._failure(node.plan, node.stage, "transfer", str(error))
            return
        raise error

    def _rebuild(self, lost: Node) -> None:
        """Schedule ``lost`` again: its image was only on workers that are gone."""
        lost.result, lost.holders, lost.tried = None, lost.holders - self.dead, set()

    def _answers(self, site: str) -> bool:
        try:
            self.sites[site].engine.info()
        except JetforgeError:
            return False
        return True

    def _failed_plans(self, ended: set[int]) -> list[tuple[int, StageFailedError]]:
        """The chains not yet ended that a failed stage stops, with that failure."""
        failed = []
        for number, plan in enumerate(self.plans):
            if number in ended:
                continue
            failure = next((f for s in plan.stages if (f := self.nodes[s.key].failure)), None)
            if failure is not None:
                failed.append((number, failure))
        return failed

    def _conclude(self, number: int, home: str) -> Summary:
        """On the chain's home: the last stage's image, then final tests, tag, push. When
        the last stage ran elsewhere, the final tests run there while its image travels
        home (a test's pass is kept by image id, which the registry keeps)."""
        plan = self.plans[number]
        last = self.nodes[plan.stages[-1].key]
        results = []
        for stage in plan.stages:
            done = self.nodes[stage.key].result
            assert done is not None
            results.append(replace(done, image=str(stage.image), tests=list(done.tests)))
        tested: list[TestResult] | None = None
        away = last.site if last.site not in (home, *self.dead) else ""
        # a stage several chains share was built under the first chain's names
        if away and self._tag_held(self.sites[away].engine, str(plan.stages[-1].image), last):
            with ThreadPoolExecutor(max_workers=1) as side:
                testing = side.submit(self._executor(number, away).final_tests, results)
                self._bring(home, plan.stages[-1].image, last, number)
                tested = self._tested_away(away, testing)
        else:
            self._bring(home, plan.stages[-1].image, last, number)
        if self.options[number].push:  # --push sends every stage image from home
            for stage in plan.stages[:-1]:
                self._bring(home, stage.image, self.nodes[stage.key], number)
        self._unless_stopping()
        executor = self._executor(number, home)
        executor.summary.transfer_seconds = round(self.transfer_seconds[number], 3)
        executor.base_id = self.base_id
        return executor.conclude(results, tested)

    def _tested_away(self, away: str, testing: Future[list[TestResult]]) -> list[TestResult] | None:
        """The final tests run on ``away``; None (run them at home) when it went away."""
        try:
            return testing.result()
        except (JetforgeError, OSError):
            if self._answers(away):
                raise
            self.dead.add(away)
            return None

    def _ended(self, number: int, future: Future[object]) -> Ended:
        plan = self.plans[number]
        error = future.exception()
        if error is None:
            summary = future.result()
            assert isinstance(summary, Summary)
            return Ended(plan, summary)
        if isinstance(error, StageFailedError):
            return Ended(plan, failure=error)
        if isinstance(error, JetforgeError | OSError):
            failure = self._failure(number, plan.stages[-1], "conclusion", str(error))
            return Ended(plan, failure=failure)
        raise error

    def _failure(self, number: int, stage: Stage, step: str, detail: str) -> StageFailedError:
        """A failure of the farm's own work for ``stage`` of plan ``number`` (its
        scheduling, a transfer, the chain's conclusion), reported as a stage's failure:
        ``detail`` added to the stage's log, whose path it names with the command that
        resumes (what was built stays in the registry and on the workers)."""
        options = self.options[number]
        log_path = options.logs_dir / f"{stage.slug}.build.log"
        try:
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"{step} failed: {detail}\n")
        except OSError:  # a full disk: the failure is still reported, without its log
            return StageFailedError(stage.package, step, detail, None, (), options.resume)
        return StageFailedError(stage.package, step, detail, log_path, (), options.resume)
