"""The lock step of a build: list what every image of the chain holds, then write the
lockfile and the final image's SBOM (docs/builds.md, "Lockfile" and "SBOM").

The executor calls :meth:`LockStep.collect` after the final tests and before the final tag
(a source record that breaks the convention fails the build as a test would), and
:meth:`LockStep.write` after the tag. An image is listed by one collector container
(:mod:`jetforge.core.inventory`), removed when it ends or is interrupted; its output is kept
under the state directory by image id, so a build that reuses every stage runs none.

The state directory (``$XDG_STATE_HOME/jetforge``) holds jetforge's own records, the
inventories and the final images' SBOMs. It is never mounted into a container (the data
directory, at ``/data`` in every test and run container, is the user's: a container that
could write these records could forge the next lockfile and SBOM), and its files are read
only when they are this user's own and no one else may write them
(:func:`jetforge.host.stash.read_private`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.inventory import (
    Inventory,
    collector_argv,
    installed,
    is_inventory,
    parse_inventory,
)
from jetforge.core.labels import CREATED
from jetforge.core.lockdata import LOCK_FORMAT, LockedStage
from jetforge.core.lockfile import (
    LOCK_FILE,
    Lock,
    lock_differences,
    lock_for,
    lock_json,
    moved,
    stage_differences,
)
from jetforge.core.pins import free_names, pinned_names
from jetforge.core.plan import Plan, Stage
from jetforge.core.sbom import SPDX_VERSION, spdx_document, spdx_problem
from jetforge.engine.base import Engine, ImageInfo
from jetforge.engine.command import run_options_for_inventory
from jetforge.errors import FailureError, LockfileError, UsageError
from jetforge.host.files import (
    MIB,
    UnreadableFileError,
    UnwritableFileError,
    check_writable,
    read_regular_text,
    write_atomic,
    write_named,
)
from jetforge.host.stash import read_private, write_private
from jetforge.reporter import NullReporter, Reporter

if TYPE_CHECKING:
    from jetforge.core.lockdata import LockData

SBOM_FILE = "sbom.spdx.json"
SBOM_LIMIT = 256 * MIB  # an SPDX document of a large image is a few MiB
DIFFERENCES_FILE = "lock-differences.txt"
_CONTAINERS = itertools.count(1)  # collector container names, unique in this process


def inventory_path(state_dir: Path, image_id: str) -> Path:
    """Where the collector's output for one image is kept."""
    return state_dir / "inventory" / f"{image_id.replace(':', '_')}.txt"


def sbom_path(state_dir: Path, image_id: str) -> Path:
    """Where the SBOM of the final image ``image_id`` is kept (``jetforge sbom`` reads it)."""
    return state_dir / "sbom" / f"{image_id.replace(':', '_')}.spdx.json"


class LockStep:
    """The lock step of one plan on one engine; its records go to ``state_dir``."""

    def __init__(
        self, plan: Plan, engine: Engine, state_dir: Path, reporter: Reporter | None = None
    ) -> None:
        self.plan = plan
        self.engine = engine
        self.state_dir = state_dir
        self.reporter = reporter or NullReporter()
        self.containers = 0  # collector containers run (none when every image was known)
        self.seconds = 0.0
        self._created = ""

    def collect(self, image_ids: Sequence[str], base_id: str = "") -> Lock:
        """The lock of the plan whose stages produced ``image_ids``; fails naming the
        stage and the file when a source record breaks the convention. ``base_id``: the
        base image's id when this engine may not hold it (a farm's home: the worker that
        built the first stage listed it)."""
        started = time.monotonic()
        base = self.engine.inspect(self.plan.base_image)
        if base is None and base_id:
            base = ImageInfo(base_id)
        base_inventory = (
            self.inventory(base.id, f"base image {self.plan.base_image}") if base else None
        )
        stages = []
        for stage, image_id in zip(self.plan.stages, image_ids, strict=True):
            inventory = self.inventory(image_id, stage.package) if image_id else None
            stages.append((image_id, inventory))
        lock = lock_for(
            self.plan,
            (base.id if base else "", base.digests if base else (), base_inventory),
            stages,
        )
        for locked in lock.stages:
            if locked.added.problems:
                raise FailureError(
                    f"{locked.variant}: image {locked.image}: {locked.added.problems[0]} "
                    "(docs/builds.md, 'Sources')"
                )
        final = self.engine.inspect(lock.final_id) if lock.final_id else None
        planned = dict(self.plan.stages[-1].labels).get(CREATED, "") if self.plan.stages else ""
        # The image's own creation time: a reused final image keeps the one it was built with.
        self._created = (final.labels.get(CREATED, "") if final else "") or planned
        self.seconds += time.monotonic() - started
        return lock

    def write(
        self, lock: Lock, logs_dir: Path, lock_file: Path | None = None, option: str = "--lock"
    ) -> Path:
        """Write the lockfile (in ``logs_dir`` and at ``lock_file``) and the SBOM (in
        ``logs_dir`` and the data directory); the lockfile's path in the logs. ``option``
        names ``lock_file`` in an error."""
        started = time.monotonic()
        text = json.dumps(lock_json(lock), indent=2) + "\n"
        sbom = json.dumps(spdx_document(lock, self._created), indent=2) + "\n"
        written = logs_dir / LOCK_FILE
        _write(written, text)
        _write(logs_dir / SBOM_FILE, sbom)
        if lock.final_id:
            kept = sbom_path(self.state_dir, lock.final_id)
            try:
                write_private(kept, sbom.encode("utf-8"))
            except OSError as error:
                self.reporter.message(
                    f"warning: cannot keep the SBOM as {kept} ({error}); 'jetforge sbom' will "
                    f"not find it (it is in {logs_dir / SBOM_FILE})"
                )
        if lock_file is not None:
            try:
                write_named(lock_file, text.encode("utf-8"), "the lockfile")
            except UnwritableFileError as error:
                raise UsageError(f"{option}: {error}") from None
            except OSError as error:  # a full device: the lockfile is in the logs too
                raise FailureError(
                    f"{option}: cannot write {lock_file}: {error.strerror or error} (it is in "
                    f"{written})"
                ) from None
        self.reporter.message(f"lockfile {lock_file or written}")
        self.seconds += time.monotonic() - started
        return written

    def inventory(self, image_id: str, what: str) -> Inventory | None:
        """What the image holds: remembered, or listed by a collector container; None
        (with a warning) when the image cannot run ``sh``."""
        kept = inventory_path(self.state_dir, image_id)
        known = read_private(kept)
        if known is not None:
            try:
                return parse_inventory(known.decode("utf-8"))
            except UnicodeDecodeError:
                pass  # damaged: the image is listed again
        name = f"jetforge-inventory-{os.getpid()}-{next(_CONTAINERS)}"
        lines: list[str] = []
        self.containers += 1
        try:
            done = self.engine.run(
                run_options_for_inventory(name=name), image_id, collector_argv(), lines.append
            )
        except BaseException:
            self.engine.remove_container(name)
            raise
        text = "\n".join(lines) + "\n"
        if done.returncode != 0 or not is_inventory(text):
            last = next((line for line in reversed(lines) if line.strip()), "no output")
            self.reporter.message(
                f"warning: cannot list what {what} ({image_id[:19]}) holds: {last.strip()}; "
                "the lockfile leaves it out"
            )
            return None
        with contextlib.suppress(OSError):  # not kept: listed again next time
            write_private(kept, text.encode("utf-8"))
        return parse_inventory(text)


def _write(path: Path, text: str) -> None:
    """Write ``text`` whole: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"))


def read_sbom(engine: Engine, state_dir: Path, image: str) -> str:
    """The SBOM kept for the local image ``image`` (found by its id): a private record
    of at most ``SBOM_LIMIT`` bytes holding an SPDX 2.3 JSON object, else a usage error
    naming the file."""
    info = engine.inspect(image)
    if info is None:
        raise UsageError(f"sbom: no image '{image}' on this engine (name a local image)")
    path = sbom_path(state_dir, info.id)
    data = read_private(path, SBOM_LIMIT)
    if data is None and _is_larger(path, SBOM_LIMIT):
        raise UsageError(
            f"sbom: {path} is larger than {SBOM_LIMIT // MIB} MiB, not an SBOM jetforge "
            "wrote; remove it and build the image again with 'jetforge build'"
        )
    if data is None and os.path.lexists(path):
        raise UsageError(
            f"sbom: {path} is not a record of this user's own (another user's, writable by "
            "others, or not a regular file); remove it and build the image again with "
            "'jetforge build'"
        )
    if data is None:
        raise UsageError(
            f"sbom: no SBOM for {image} (image {info.id[:19]}): jetforge keeps one for each "
            f"final image it builds; build it with 'jetforge build'"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"sbom: {path} is not UTF-8 text (byte {error.start})") from None
    problem = spdx_problem(text)
    if problem:
        raise UsageError(
            f"sbom: {path} {problem} (an SBOM is an {SPDX_VERSION} JSON document); remove "
            "it and build the image again with 'jetforge build'"
        )
    return text


def _is_larger(path: Path, limit: int) -> bool:
    try:
        return os.lstat(path).st_size > limit
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Pinned:
    """A lockfile whose pins a build takes (``build --locked``, ``jetforge lock``).

    ``strict`` (``--locked``): the build must install exactly what it lists. Otherwise
    (``jetforge lock``): what ``upgrade`` names may move, anything else the lockfile pins
    must not, and new stages may add packages."""

    path: Path
    lock: LockData
    upgrade: tuple[str, ...] = ()
    strict: bool = True

    @property
    def option(self) -> str:
        """How the user named this lockfile, for messages."""
        return "--locked" if self.strict else "jetforge lock"

    def check_upgrade(self) -> None:
        """Every ``upgrade`` name must be one the lockfile pins (or ``base``)."""
        known = pinned_names(self.lock.stages) | {"base"}
        for name in self.upgrade:
            if not free_names([name]) & known:
                raise UsageError(
                    f"--upgrade {name}: {self.path} pins no package, Debian package or Python "
                    "distribution of that name ('base' lets the base image move)"
                )

    def check(self, lock: Lock, logs_dir: Path) -> None:
        """Fail, naming the first package, when ``lock`` installed otherwise; every
        difference goes to ``lock-differences.txt`` in the logs."""
        found = (
            lock_differences(self.lock.stages, lock.stages)
            if self.strict
            else moved(self.lock.stages, lock.stages, self.upgrade)
        )
        self._fail(found, logs_dir)

    def check_stage(
        self, stage: Stage, image: Inventory, parent: Inventory, logs_dir: Path
    ) -> None:
        """Fail, naming the first package, when the just built ``stage`` (whose image
        holds ``image``, its parent ``parent``) installed otherwise than the lock pins."""
        pinned = next((s for s in self.lock.stages if s.index == stage.index), None)
        if pinned is None or not self.strict:
            return
        added, removed = installed(image, parent)
        made = LockedStage(
            stage.index, stage.package, stage.key, str(stage.image), "", added, removed
        )
        self._fail(stage_differences(pinned, made), logs_dir)

    def _fail(self, found: list[str], logs_dir: Path) -> None:
        if not found:
            return
        _write(logs_dir / DIFFERENCES_FILE, "\n".join(found) + "\n")
        more = f" (and {len(found) - 1} more: {logs_dir / DIFFERENCES_FILE})" if found[1:] else ""
        raise FailureError(f"{self.option} {self.path}: {found[0]}{more}")


def read_lock(path: Path, option: str = "--locked") -> LockData:
    """The lockfile at ``path``, checked (:func:`jetforge.core.lockdata.parse_lock_data`);
    a one-line error naming ``option``, the file and the entry when it is not one."""
    from jetforge.core.lockdata import parse_lock_data  # for --locked and jetforge lock only
    from jetforge.engine.table import build_modes

    try:
        text = read_regular_text(path, "jetforge lockfile")
    except UnreadableFileError as error:
        raise UsageError(f"{option}: cannot read {path}: {error.problem}") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise UsageError(
            f"{option}: {path} is not a jetforge lockfile (it nests deeper than Python's "
            "JSON reader goes)"
        ) from None
    except ValueError as error:  # JSONDecodeError, or an integer too long to convert
        raise UsageError(f"{option}: {path} is not a jetforge lockfile ({error})") from None
    if not isinstance(data, dict) or data.get("format") != LOCK_FORMAT:
        raise UsageError(
            f"{option}: {path} is not a jetforge lockfile of format {LOCK_FORMAT} "
            "(one is written beside the logs of every build: jetforge.lock.json)"
        )
    try:
        return parse_lock_data(data, build_modes())
    except LockfileError as error:
        raise LockfileError(error.entry, error.problem, path, option) from None


def read_pinned(path: Path, upgrade: Sequence[str] = (), *, refresh: bool = False) -> Pinned:
    """The lockfile at ``path`` as ``build --locked`` (or, ``refresh``, ``jetforge lock``)
    takes it, ``upgrade`` checked against what it pins."""
    option = "jetforge lock" if refresh else "--locked"
    pinned = Pinned(path, read_lock(path, option), tuple(upgrade), strict=not refresh)
    pinned.check_upgrade()
    return pinned


def pinned_base(engine: Engine, base: str, locked: Pinned) -> str:
    """The base image a locked build starts from: ``base`` when the engine has it with
    the lockfile's id (or the lockfile names none), else the lockfile's registry digest
    (pulled by digest), else ``base`` (and the plan check names the difference)."""
    wanted = locked.lock.base
    if not wanted.id or "base" in locked.upgrade:
        return base
    info = engine.inspect(base)
    if info is not None and info.id == wanted.id:
        return base
    return wanted.digests[0] if wanted.digests else base


def check_lock_options(
    lock_file: Path | None, locked: Path | None, multiple: bool, cwd: Path, option: str = "--lock"
) -> None:
    """``--lock FILE`` and ``--locked FILE`` are one chain's; ``--lock`` (``option``: how
    the user named it, ``--file`` for ``jetforge lock``) names what the lockfile can be
    written to (:func:`jetforge.host.files.write_named`)."""
    if locked is not None and multiple:
        raise UsageError("build: --locked FILE takes one chain (a lockfile is one chain's)")
    if lock_file is None:
        return
    if multiple:
        raise UsageError(
            "build: --lock FILE takes one chain; with --multiple each chain's lockfile is "
            "in its logs directory"
        )
    try:
        check_writable(cwd / lock_file, "the lockfile")
    except UnwritableFileError as error:
        raise UsageError(f"{option}: {error}") from None
