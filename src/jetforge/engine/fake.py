"""An engine that keeps images, tags, containers and a registry in memory.

It is not in the table: it is for tests of whatever drives an engine (the executor, the
build farm), which then run in milliseconds without a daemon. Builds and tests follow the
plan's values: a built image carries its stage's labels and tag, and keeps its id through
a push and a pull (share ``registry`` and ``registry_ids`` between engines for a farm).

Failures come on demand: a build or push whose image matches one of ``fail_builds`` or
``fail_pushes`` (shell patterns) exits 1, and so does a test whose ``IMAGE ARGV...`` line
matches one of ``fail_tests``; a build or test run matching ``interrupt_builds`` or
``interrupt_tests`` raises ``KeyboardInterrupt`` as Ctrl-C would (a test's container is
left behind); with ``down`` the daemon is gone. With ``keep_failed`` a failed build leaves
an image of the steps before the failing one, as the legacy builder does: its parent's
labels, less the stage key where the Dockerfile resets it. ``run_output`` gives what a run prints
in an image whose id or a tag matches a pattern (the lockfile's collector reads it).
Every call is recorded in ``calls``, and every build's start and end in ``spans``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from jetforge.core.dockerfile import RESET_STAGE_KEY
from jetforge.core.labels import PARENT, STAGE_KEY
from jetforge.engine.base import Builder, EngineInfo, ImageInfo
from jetforge.engine.command import Command, build_command
from jetforge.errors import EngineUnavailableError, FailureError
from jetforge.host.process import Completed, OutputSink

if TYPE_CHECKING:
    from jetforge.core.plan import Stage


@dataclass
class FakeImage:
    """One image in memory."""

    id: str
    labels: dict[str, str]
    tags: list[str] = field(default_factory=list)
    layers: tuple[str, ...] = ()
    created: str = ""

    def info(self) -> ImageInfo:
        """What ``inspect`` would say of it."""
        return ImageInfo(
            self.id,
            dict(self.labels),
            tags=tuple(self.tags),
            layers=self.layers,
            created=self.created,
        )


@dataclass
class FakeEngine:
    """An in-memory engine (see the module's text)."""

    name: ClassVar[str] = "fake"
    gpus_flag: ClassVar[bool] = False
    gpu_setup: ClassVar[str] = ""
    jetson_builds_need_default_runtime: ClassVar[bool] = False
    program: str = "fake"
    build_mode: str = "buildkit"

    images: dict[str, FakeImage] = field(default_factory=dict)  # by id
    # A registry (share one between engines): labels and image id by reference.
    registry: dict[str, dict[str, str]] = field(default_factory=dict)
    registry_ids: dict[str, str] = field(default_factory=dict)
    containers: set[str] = field(default_factory=set)  # containers that exist now
    calls: list[tuple[str, ...]] = field(default_factory=list)
    fail_builds: set[str] = field(default_factory=set)
    fail_tests: set[str] = field(default_factory=set)
    fail_pushes: set[str] = field(default_factory=set)
    interrupt_builds: set[str] = field(default_factory=set)
    interrupt_tests: set[str] = field(default_factory=set)
    down: bool = False  # a daemon gone: every call fails, info raises
    down_after: str = ""  # a pattern: the daemon goes once a test in a matching image passed
    keep_failed: bool = False  # a failed build leaves its last step's image (legacy builder)
    build_seconds: float = 0.0  # how long a build takes
    run_output: dict[str, str] = field(default_factory=dict)  # image pattern: printed text
    spans: list[tuple[str, float, float]] = field(default_factory=list)  # builds: start, end
    _stages: dict[tuple[str, ...], Stage] = field(default_factory=dict, init=False, repr=False)

    @property
    def supports_secrets(self) -> bool:
        """Builds take no secrets here."""
        return False

    def builder(self) -> Builder:
        """The builder, for doctor."""
        return Builder(True, "in memory")

    def build_command(self, stage: Stage, extra: Sequence[str] = ()) -> Command:
        """The argv docker would get; the stage behind it is remembered for ``build``."""
        command = build_command(stage, self.build_mode, self.program, extra)
        self._stages[command.argv] = stage
        return command

    def run_command(self, options: Sequence[str], image: str, argv: Sequence[str]) -> Command:
        """The argv of a container run."""
        return Command((self.program, "run", *options, "--", image, *argv))

    def calls_of(self, verb: str) -> list[tuple[str, ...]]:
        """The recorded calls of one kind (``build``, ``run``, ``tag``, ...)."""
        return [call for call in self.calls if call[0] == verb]

    def build(self, command: Command, on_output: OutputSink) -> Completed:
        """Make the stage's image: its labels, its tag; a new id for every new key."""
        stage = self._stages[command.argv]
        reference = str(stage.image)
        self.calls.append(("build", reference))
        on_output(f"building {reference}")
        if _matches(reference, self.interrupt_builds):
            raise KeyboardInterrupt
        started = time.monotonic()
        time.sleep(self.build_seconds)
        self.spans.append((reference, started, time.monotonic()))
        parent = self._find(dict(stage.build_args).get("BASE_IMAGE", ""))
        inherited = dict(parent.labels) if parent else {}
        layers = parent.layers if parent else ()
        digest = hashlib.sha256(f"{stage.key}/{len(self.images)}".encode()).hexdigest()
        if self.down or _matches(reference, self.fail_builds):
            if self.keep_failed and not self.down:
                if RESET_STAGE_KEY in _dockerfile_text(command.argv):
                    inherited[STAGE_KEY] = ""
                self._add(FakeImage(f"sha256:{digest}", inherited, layers=(*layers, digest)))
            on_output(f"error: the build of {reference} failed")
            return Completed(command.argv, 1, "", "")
        dockerfile = _dockerfile_text(command.argv)
        labels = {**inherited, **_flag_values(command.argv, "--label"), **_last_labels(dockerfile)}
        self._add(FakeImage(f"sha256:{digest}", labels, layers=(*layers, digest)))
        self._set_tag(f"sha256:{digest}", reference)
        return Completed(command.argv, 0, "", "")

    def _add(self, image: FakeImage) -> None:
        """Keep a new image, created after every other."""
        image.created = f"2026-01-01T00:00:{len(self.images):09d}Z"
        self.images[image.id] = image

    def inspect(self, reference: str) -> ImageInfo | None:
        """The image with this id or tag."""
        self.calls.append(("inspect", reference))
        image = None if self.down else self._find(reference)
        return image.info() if image else None

    def list_images(self, filters: Sequence[str] = ()) -> list[ImageInfo]:
        """The images matching every ``label=K``, ``label=K=V`` and ``reference=P``, newest
        first; as docker does, an image with no name that another image was built on is
        left out."""
        self.calls.append(("images", *filters))
        if self.down:
            return []
        parents = {image.labels.get(PARENT) for image in self.images.values()}
        return [
            image.info()
            for image in reversed(self.images.values())
            if _selects(image, filters) and (image.tags or image.id not in parents)
        ]

    def tag(self, source: str, target: str) -> None:
        """Give the image ``source`` names the tag ``target`` too."""
        self.calls.append(("tag", source, target))
        image = None if self.down else self._find(source)
        if image is None:
            raise FailureError(f"fake tag {source} {target} failed: no such image")
        self._set_tag(image.id, target)

    def untag(self, reference: str) -> None:
        """Take the name away when the image has another."""
        self.calls.append(("untag", reference))
        image = None if self.down else self._find(reference)
        if image is not None and len(image.tags) > 1 and reference in image.tags:
            image.tags.remove(reference)

    def run(
        self, options: Sequence[str], image: str, argv: Sequence[str], on_output: OutputSink
    ) -> Completed:
        """Run a test: it passes unless ``IMAGE ARGV...`` matches ``fail_tests``."""
        name = _option(options, "--name")
        self.calls.append(("run", image, *argv))
        command = self.run_command(options, image, argv)
        if self.down or self._find(image) is None:
            on_output(f"Unable to find image '{image}' locally")
            return Completed(command.argv, 125, "", "")
        self.containers.add(name)
        if _matches(image, self.interrupt_tests):
            raise KeyboardInterrupt
        self.containers.discard(name)  # --rm
        if _matches(" ".join((image, *argv)), self.fail_tests):
            on_output("test failed")
            return Completed(command.argv, 1, "", "")
        found = self._find(image)
        names = (found.id, *found.tags) if found else ()
        text = next(
            (
                out
                for pattern, out in self.run_output.items()
                if any(_matches(n, {pattern}) for n in names)
            ),
            "test passed",
        )
        for line in text.splitlines():
            on_output(line)
        if self.down_after and _matches(image, {self.down_after}):
            self.down = True
        return Completed(command.argv, 0, "", "")

    def remove_container(self, name: str) -> None:
        """Remove a container if it exists."""
        self.calls.append(("rm", name))
        self.containers.discard(name)

    def push(self, reference: str, on_output: OutputSink) -> Completed:
        """Copy the image's labels to the in-memory registry."""
        self.calls.append(("push", reference))
        image = self._find(reference)
        if self.down or image is None or _matches(reference, self.fail_pushes):
            on_output(f"push of {reference} denied")
            return Completed(("push", reference), 1, "", "")
        self.registry[reference] = dict(image.labels)
        self.registry_ids[reference] = image.id
        return Completed(("push", reference), 0, "", "")

    def pull(self, reference: str, on_output: OutputSink) -> Completed:
        """Make a local image from the in-memory registry's."""
        self.calls.append(("pull", reference))
        labels = self.registry.get(reference)
        if self.down or labels is None:
            on_output(f"manifest for {reference} not found")
            return Completed(("pull", reference), 1, "", "")
        default = "sha256:" + hashlib.sha256(f"pulled/{reference}".encode()).hexdigest()
        image_id = self.registry_ids.get(reference, default)  # an image keeps its id
        if image_id not in self.images:
            self._add(FakeImage(image_id, dict(labels), layers=(image_id,)))
        self._set_tag(image_id, reference)
        return Completed(("pull", reference), 0, "", "")

    def import_tarball(self, tarball: str, reference: str) -> Completed:
        """An empty image called ``reference``."""
        self.calls.append(("import", tarball, reference))
        digest = hashlib.sha256(f"import/{reference}".encode()).hexdigest()
        self._add(FakeImage(f"sha256:{digest}", {}, layers=(digest,)))
        self._set_tag(f"sha256:{digest}", reference)
        return Completed(("import", tarball, reference), 0, "", "")

    def info(self) -> EngineInfo:
        """No runtimes, no CDI; a daemon that is down raises as a real one would."""
        if self.down:
            raise EngineUnavailableError("fake", "the daemon is not running", "start it")
        return EngineInfo(version="fake")

    def attach(self, options: Sequence[str], image: str, argv: Sequence[str]) -> int:
        """An interactive run: 0 when the image exists, else the engine's 125."""
        self.calls.append(("attach", *options, image, *argv))
        return 0 if self._find(image) else 125

    def _find(self, reference: str) -> FakeImage | None:
        if reference in self.images:
            return self.images[reference]
        return next((i for i in self.images.values() if reference in i.tags), None)

    def _set_tag(self, image_id: str, reference: str) -> None:
        for image in self.images.values():
            if reference in image.tags:
                image.tags.remove(reference)
        self.images[image_id].tags.append(reference)


def _matches(reference: str, patterns: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(reference, pattern) for pattern in patterns)


def _flag_values(argv: Sequence[str], flag: str) -> dict[str, str]:
    """Every ``flag K=V`` of an argv, as a mapping."""
    pairs = (argv[i + 1].partition("=") for i in range(len(argv) - 1) if argv[i] == flag)
    return {name: value for name, _, value in pairs}


def _last_labels(dockerfile: str) -> dict[str, str]:
    """The labels the Dockerfile's last instruction sets, when it is a ``LABEL``."""
    lines = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    if not lines or not lines[-1].startswith("LABEL "):
        return {}
    return {name: value.strip('"') for name, value in _LABEL.findall(lines[-1])}


_LABEL = re.compile(r'([\w.-]+)=("[^"]*"|\S+)')


def _dockerfile_text(argv: Sequence[str]) -> str:
    """The Dockerfile a build command names (``--file``), or "" when it cannot be read."""
    try:
        return Path(_option(argv, "--file")).read_text(encoding="utf-8")
    except OSError:
        return ""


def _option(options: Sequence[str], flag: str) -> str:
    for index, option in enumerate(options[:-1]):
        if option == flag:
            return options[index + 1]
    return ""


def _selects(image: FakeImage, filters: Sequence[str]) -> bool:
    for item in filters:
        kind, _, value = item.partition("=")
        if kind == "label":
            key, has_value, wanted = value.partition("=")
            if key not in image.labels or (has_value and image.labels[key] != wanted):
                return False
        elif kind == "reference" and not any(fnmatch.fnmatchcase(t, value) for t in image.tags):
            return False
    return True
