"""What docker and podman share: an engine driven through its command line, whose argv
is built by small pure functions and run through the injected runner, and asked about
images through its API on a local socket when one answers (:mod:`jetforge.engine.api`).
The engines themselves are :mod:`jetforge.engine.docker` and :mod:`jetforge.engine.podman`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from jetforge.core.tags import parse_image_ref
from jetforge.engine.api import ApiError, EngineApi, open_api
from jetforge.engine.base import Builder, EngineInfo, ImageInfo
from jetforge.engine.command import Command, build_command
from jetforge.errors import EngineUnavailableError, FailureError
from jetforge.host.commands import Completed, OutputSink, Runner
from jetforge.host.runner import run_process

if TYPE_CHECKING:
    from jetforge.core.plan import Stage

E = TypeVar("E", bound="CliEngine")
T = TypeVar("T")
API_VARIABLE = "JETFORGE_ENGINE_API"  # 0: ask the program only, never the API


@dataclass
class CliEngine:
    """An engine driven through its program (``program``, found by ``connect``)."""

    name: ClassVar[str]
    default_build_mode: ClassVar[str]  # for plans made without asking the engine
    builders: ClassVar[Mapping[str, Builder]]  # by build mode
    secret_modes: ClassVar[frozenset[str]]  # build modes that take --secret
    gpus_flag: ClassVar[bool] = False
    gpu_setup: ClassVar[str] = ""
    jetson_builds_need_default_runtime: ClassVar[bool] = False
    info_format: ClassVar[str]  # the --format of ``info`` that gives JSON
    endpoint_variables: ClassVar[tuple[str, ...]] = ()  # the environment naming its endpoint
    api_flavour: ClassVar[str]  # which API its socket serves (jetforge.engine.api)

    program: str
    build_mode: str
    runner: Runner = run_process
    env: Mapping[str, str] | None = None
    api: EngineApi | None = None  # image queries go there while it answers

    @classmethod
    def connect(
        cls: type[E],
        env: Mapping[str, str],
        runner: Runner = run_process,
        *,
        memo: Path | None = None,
    ) -> E:
        """Find the program (``JETFORGE_<NAME>`` names another one), check that the
        engine answers, and detect its build mode; what the detection learns about the
        program may be kept in the file ``memo``."""
        raise NotImplementedError

    @classmethod
    def endpoint_env(cls, endpoint: str) -> dict[str, str]:
        """The environment that points the program at ``endpoint`` (``unix://…``,
        ``ssh://…``, ``tcp://…``); empty for the engine's default one."""
        return {cls.endpoint_variables[0]: endpoint} if endpoint else {}

    @classmethod
    def at(
        cls: type[E],
        endpoint: str,
        env: Mapping[str, str],
        runner: Runner = run_process,
        *,
        memo: Path | None = None,
    ) -> E:
        """Connect to the engine at ``endpoint`` (empty: the default one)."""
        return cls.connect({**env, **cls.endpoint_env(endpoint)}, runner, memo=memo)

    @classmethod
    def program_in(cls, env: Mapping[str, str]) -> str:
        """The program to run: ``JETFORGE_DOCKER=/path/docker`` or the engine's name."""
        return env.get(f"JETFORGE_{cls.name.upper()}") or cls.name

    @classmethod
    def api_socket(cls, env: Mapping[str, str]) -> str | None:
        """The local unix socket the program talks to with ``env`` (None: another kind of
        endpoint, or none known)."""
        raise NotImplementedError

    @classmethod
    def open_api(cls, env: Mapping[str, str]) -> EngineApi | None:
        """The engine's API on its local socket, when it answers there, and the program
        is the engine's own (``JETFORGE_<NAME>`` may name a wrapper that reaches another
        engine: then it is asked) and ``JETFORGE_ENGINE_API=0`` is not set."""
        if env.get(f"JETFORGE_{cls.name.upper()}") or env.get(API_VARIABLE) == "0":
            return None
        return open_api(cls.api_socket(env), cls.api_flavour)

    @classmethod
    def passes_secrets(cls, build_mode: str) -> bool:
        """Whether builds in ``build_mode`` can take build secrets."""
        return build_mode in cls.secret_modes

    @property
    def supports_secrets(self) -> bool:
        """Whether this engine's builds can take build secrets."""
        return self.passes_secrets(self.build_mode)

    def builder(self) -> Builder:
        """The builder this engine's builds use, for doctor."""
        return self.builders.get(self.build_mode, Builder(False, f"unknown mode {self.build_mode}"))

    def build_command(self, stage: Stage, extra: Sequence[str] = ()) -> Command:
        """The command that builds ``stage``; ``extra`` flags come before the stage's."""
        command = build_command(stage, self.build_mode, self.program, extra)
        return Command(command.argv, (*self._endpoint(), *command.env))

    def run_command(self, options: Sequence[str], image: str, argv: Sequence[str]) -> Command:
        """The command that runs ``argv`` in a new container of ``image`` (after ``--``:
        whatever ``image`` is, the engine never reads it as an option)."""
        return Command((self.program, "run", *options, "--", image, *argv), self._endpoint())

    def _endpoint(self) -> tuple[tuple[str, str], ...]:
        """The endpoint variables in effect, for command lines shown to be run by hand."""
        env = self.env if self.env is not None else os.environ
        return tuple((name, env[name]) for name in self.endpoint_variables if env.get(name))

    def parse_info(self, text: str) -> EngineInfo:
        """The engine's ``info`` JSON as a value."""
        raise NotImplementedError

    def _call(self, *args: str) -> Completed:
        """Run the program with ``args``. Every caller puts ``--`` before the names it
        passes (images, containers, files), so that a name never reads as an option."""
        return self.runner([self.program, *args], env=self.env)

    def build(self, command: Command, on_output: OutputSink) -> Completed:
        """Run a build command, streaming its output."""
        env = {**(self.env if self.env is not None else os.environ), **dict(command.env)}
        return self.runner(command.argv, env=env, on_output=on_output)

    def _asked(self, question: Callable[[EngineApi], T]) -> tuple[bool, T | None]:
        """(True, the API's answer to ``question``), or (False, None) when the program
        must be asked instead: no API, or it failed (and, when it did not answer at
        all, it is not asked again)."""
        api = self.api
        if api is None:
            return False, None
        try:
            return True, question(api)
        except ApiError as error:
            if error.status == 0:
                self.api = None
            return False, None

    def inspect(self, reference: str) -> ImageInfo | None:
        """Details of a local image, or None when it is absent."""
        asked, found = self._asked(lambda api: api.inspect_image(reference))
        if asked:
            return _image_info(found) if found is not None else None
        done = self._call("image", "inspect", "--", reference)
        if done.returncode != 0:
            return None
        try:
            found = json.loads(done.stdout or "[]")
        except json.JSONDecodeError:
            return None
        if not isinstance(found, list) or not found or not isinstance(found[0], dict):
            return None
        return _image_info(found[0])

    def list_images(self, filters: Sequence[str] = ()) -> list[ImageInfo]:
        """Details of every local image matching all engine ``filters`` (``label=K``,
        ``reference=PATTERN``); images removed meanwhile are left out."""
        asked, listed = self._asked(lambda api: _inspect_all(api, api.image_ids(filters)))
        if asked and listed is not None:
            return [_image_info(data) for data in listed]
        argv = ["images", "--no-trunc", "--format", "{{.ID}}"]
        for item in filters:
            argv += ["--filter", item]
        done = self._call(*argv)
        ids = list(dict.fromkeys(done.stdout.split())) if done.returncode == 0 else []
        if not ids:
            return []
        # One call for all; an image removed since the listing makes the engine exit
        # non-zero but still print the others.
        done = self._call("image", "inspect", "--", *ids)
        try:
            found = json.loads(done.stdout or "[]")
        except json.JSONDecodeError:
            return []
        return [_image_info(data) for data in found if isinstance(data, dict)]

    def tag(self, source: str, target: str) -> None:
        """Give ``source`` the name ``target``."""
        name = parse_image_ref(target)
        if not name.digest:
            asked, _ = self._asked(
                lambda api: api.tag_image(source, name.repository, name.tag or "latest")
            )
            if asked:
                return
        done = self._call("tag", "--", source, target)
        if done.returncode != 0:
            raise FailureError(f"{self.name} tag {source} {target} failed: {done.stderr.strip()}")

    def untag(self, reference: str) -> None:
        """Take the name ``reference`` away from its image when the image has another
        (``rmi`` of an image's last name would delete it)."""
        found = self.inspect(reference)
        if found is not None and len(found.tags) > 1:
            asked, _ = self._asked(lambda api: api.remove_name(reference))
            if not asked:
                self._call("rmi", "--", reference)

    def run(
        self, options: Sequence[str], image: str, argv: Sequence[str], on_output: OutputSink
    ) -> Completed:
        """Run ``argv`` in a new container of ``image`` with engine ``options``."""
        command = self.run_command(options, image, argv)
        return self.runner(command.argv, env=self.env, on_output=on_output)

    def remove_container(self, name: str) -> None:
        """Remove a container if it exists."""
        self._call("rm", "--force", "--", name)

    def push(self, reference: str, on_output: OutputSink) -> Completed:
        """Push an image to its registry."""
        argv = [self.program, "push", "--", reference]
        return self.runner(argv, env=self.env, on_output=on_output)

    def pull(self, reference: str, on_output: OutputSink) -> Completed:
        """Pull an image from its registry."""
        argv = [self.program, "pull", "--", reference]
        return self.runner(argv, env=self.env, on_output=on_output)

    def import_tarball(self, tarball: str, reference: str) -> Completed:
        """Create an image from a root filesystem tarball."""
        return self._call("import", "--", tarball, reference)

    def info(self) -> EngineInfo:
        """Version, runtimes, CDI support and data root (``docker info``/``podman info``)."""
        done = self._call("info", "--format", self.info_format)
        if done.returncode != 0:
            raise EngineUnavailableError(
                self.name, f"'{self.program} info' failed: {first_line(done)}", "run it by hand"
            )
        return self.parse_info(done.stdout)

    def attach(self, options: Sequence[str], image: str, argv: Sequence[str]) -> int:
        """Run ``argv`` in a new container on this process's own terminal; its exit code."""
        from jetforge.host.process import run_attached  # here, not at the top: start-up time

        return run_attached(self.run_command(options, image, argv).argv, env=self.env)


def json_object(text: str) -> dict[str, Any]:
    """``text`` as a JSON object; anything else is an empty one."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _inspect_all(api: EngineApi, ids: Sequence[str]) -> list[dict[str, Any]]:
    """What ``image inspect`` prints for each of ``ids``, leaving out those removed since
    they were listed."""
    found = (api.inspect_image(image_id) for image_id in ids)
    return [data for data in found if data is not None]


def _image_info(data: Mapping[str, Any]) -> ImageInfo:
    config = data.get("Config") or {}
    return ImageInfo(
        id=data["Id"],
        labels=config.get("Labels") or {},
        env=tuple(config.get("Env") or ()),
        tags=tuple(data.get("RepoTags") or ()),
        architecture=data.get("Architecture", ""),
        created=data.get("Created", ""),
        digests=tuple(data.get("RepoDigests") or ()),
        layers=tuple((data.get("RootFS") or {}).get("Layers") or ()),
    )


def first_line(done: Completed) -> str:
    """The line of a failed command's output that says why."""
    text = (done.stderr or done.stdout).strip()
    return text.splitlines()[-1] if text else f"exit code {done.returncode}"
