"""The ``Engine`` protocol: the small surface jetforge needs from a container engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from jetforge._process import Completed, OutputSink
from jetforge.engine.command import Command


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What ``inspect`` tells about one local image."""

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    architecture: str = ""
    created: str = ""


class Engine(Protocol):
    """A container engine: build, find, inspect, tag, run, push and pull images."""

    name: str
    build_mode: str

    def build(self, command: Command, on_output: OutputSink) -> Completed:
        """Run a build command, streaming its output."""

    def find_by_label(self, label: str, value: str) -> list[str]:
        """Ids of local images carrying ``label=value``, newest first."""

    def inspect(self, reference: str) -> ImageInfo | None:
        """Details of a local image, or None when it is absent."""

    def history(self, reference: str) -> list[str]:
        """The ``created by`` lines of an image's history."""

    def tag(self, source: str, target: str) -> None:
        """Give ``source`` the name ``target``."""

    def run(
        self, options: Sequence[str], image: str, argv: Sequence[str], on_output: OutputSink
    ) -> Completed:
        """Run ``argv`` in a new container of ``image`` with engine ``options``."""

    def remove_container(self, name: str) -> None:
        """Remove a container if it exists (used after interruptions)."""

    def list_containers(self, label: str) -> list[str]:
        """Ids of containers, running or not, carrying ``label``."""

    def push(self, reference: str, on_output: OutputSink) -> Completed:
        """Push an image to its registry."""

    def pull(self, reference: str, on_output: OutputSink) -> Completed:
        """Pull an image from its registry."""

    def import_tarball(self, tarball: str, reference: str) -> Completed:
        """Create an image from a root filesystem tarball."""
