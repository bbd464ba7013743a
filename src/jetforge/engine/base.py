"""The ``Engine`` protocol: the small surface jetforge needs from a container engine.

Everything that differs between engines (program, build modes, argv, info format, GPU
set-up, build secrets) is behind it; the engines themselves are in the table of
:mod:`jetforge.engine.table`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from jetforge.engine.command import Command
from jetforge.host.commands import Completed, OutputSink

if TYPE_CHECKING:
    from jetforge.core.plan import Stage


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What ``inspect`` tells about one local image."""

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    architecture: str = ""
    created: str = ""
    digests: tuple[str, ...] = ()  # registry digests: the image was pulled or pushed
    layers: tuple[str, ...] = ()  # its file system layers (diff ids), bottom first


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the engine says about itself: ``docker info`` / ``podman info``.

    ``runtimes`` are the registered OCI runtimes (``nvidia`` among them when the NVIDIA
    Container Toolkit is configured); ``cdi_spec_dirs`` are where the engine reads CDI
    device specs, empty when it does not support CDI; ``data_root`` is where it keeps
    images and build caches.
    """

    version: str = ""
    runtimes: tuple[str, ...] = ()
    default_runtime: str = ""
    cdi_spec_dirs: tuple[str, ...] = ()
    data_root: str = ""


@dataclass(frozen=True, slots=True)
class Builder:
    """What doctor says of an engine's builder: whether it is a good one, what it is, and
    how to get a better one."""

    good: bool
    detail: str
    remedy: str = ""


class Engine(Protocol):
    """A container engine: build, find, inspect, tag, run, push and pull images.

    ``gpus_flag``: ``--gpus`` works where ``nvidia-container-runtime-hook`` is installed;
    ``gpu_setup``: how to give its containers the GPU; ``jetson_builds_need_default_runtime``:
    on Jetson, builds see the GPU only when the daemon's default runtime is ``nvidia``.
    """

    name: ClassVar[str]
    gpus_flag: ClassVar[bool]
    gpu_setup: ClassVar[str]
    jetson_builds_need_default_runtime: ClassVar[bool]
    program: str
    build_mode: str

    @property
    def supports_secrets(self) -> bool:
        """Whether builds can take build secrets (``--secret``; the package cache's)."""

    def builder(self) -> Builder:
        """The builder this engine's builds use, for doctor."""

    def build_command(self, stage: Stage, extra: Sequence[str] = ()) -> Command:
        """The command that builds ``stage``; ``extra`` flags come before the stage's."""

    def run_command(self, options: Sequence[str], image: str, argv: Sequence[str]) -> Command:
        """The command that runs ``argv`` in a new container of ``image``."""

    def build(self, command: Command, on_output: OutputSink) -> Completed:
        """Run a build command, streaming its output."""

    def inspect(self, reference: str) -> ImageInfo | None:
        """Details of a local image, or None when it is absent."""

    def list_images(self, filters: Sequence[str] = ()) -> list[ImageInfo]:
        """Details of every local image matching all engine ``filters`` (``label=K``,
        ``reference=PATTERN``); images removed meanwhile are left out."""

    def tag(self, source: str, target: str) -> None:
        """Give ``source`` the name ``target``."""

    def untag(self, reference: str) -> None:
        """Take the name ``reference`` away from its image when the image has another
        (the image stays)."""

    def run(
        self, options: Sequence[str], image: str, argv: Sequence[str], on_output: OutputSink
    ) -> Completed:
        """Run ``argv`` in a new container of ``image`` with engine ``options``."""

    def remove_container(self, name: str) -> None:
        """Remove a container if it exists (used after interruptions)."""

    def push(self, reference: str, on_output: OutputSink) -> Completed:
        """Push an image to its registry."""

    def pull(self, reference: str, on_output: OutputSink) -> Completed:
        """Pull an image from its registry."""

    def import_tarball(self, tarball: str, reference: str) -> Completed:
        """Create an image from a root filesystem tarball."""

    def info(self) -> EngineInfo:
        """Version, runtimes, CDI support and data root of the engine."""

    def attach(self, options: Sequence[str], image: str, argv: Sequence[str]) -> int:
        """Run ``argv`` in a new container on this process's own terminal; its exit code."""
