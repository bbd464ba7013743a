"""``jetforge run`` (docs/cli.md, "run"): the engine ``run`` command with the right options.

Plan, then execute. :func:`plan_run` is a pure function from a
:class:`~jetforge.host.devices.HostProbe` (what the host offers, GPU access included) and the
user's request to the exact argv; with no GPU access it adds one warning.
:func:`prepare_launch` connects the engine, probes the host, chooses the image and plans;
the CLI prints the :class:`Launch` (``--dry-run``) or starts it.

User options are passed through unchanged after jetforge's own and win: an option the user
gives (``--network``, a mount on the same container path, a device, ``--env DISPLAY``, any
GPU option) removes jetforge's equivalent. ``--privileged`` is never added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.core.tags import image_reference, parse_image_ref
from jetforge.host.devices import (
    HOST_ROOT_VARIABLE,
    JTOP_SOCKET,
    X11_SOCKETS,
    GpuAccess,
    HostProbe,
    choose_gpu,
    probe_host,
)

if TYPE_CHECKING:
    from jetforge.engine.base import Engine
    from jetforge.ops.workspace import Workspace

# Boolean options of `docker run` and `podman run`; every other long option takes a value
# (in the next word, or after `=`). Short options: the letters below take a value.
_FLAG_OPTIONS = frozenset(
    {
        "--detach",
        "--disable-content-trust",
        "--env-host",
        "--help",
        "--http-proxy",
        "--init",
        "--interactive",
        "--no-healthcheck",
        "--no-hosts",
        "--oom-kill-disable",
        "--passwd",
        "--privileged",
        "--publish-all",
        "--quiet",
        "--read-only",
        "--read-only-tmpfs",
        "--replace",
        "--rm",
        "--rmi",
        "--rootfs",
        "--sig-proxy",
        "--tls-verify",
        "--tty",
        "--unsetenv-all",
        "--use-api-socket",
    }
)
_SHORT_NAMES = {
    "a": "--attach",
    "c": "--cpu-shares",
    "d": "--detach",
    "e": "--env",
    "h": "--hostname",
    "i": "--interactive",
    "l": "--label",
    "m": "--memory",
    "p": "--publish",
    "P": "--publish-all",
    "q": "--quiet",
    "t": "--tty",
    "u": "--user",
    "v": "--volume",
    "w": "--workdir",
}
_SHORT_WITH_VALUE = frozenset("acehlmpuvw")
_ALIASES = {"--net": "--network"}

_XAUTHORITY_IN_CONTAINER = "/tmp/.Xauthority"

NO_GPU_WARNING = (
    "no GPU access: the engine has no 'nvidia' runtime, no CDI spec for nvidia.com/gpu "
    "and no --gpus support (install the NVIDIA Container Toolkit; 'jetforge doctor' says more)"
)


@dataclass(frozen=True, slots=True)
class RunWords:
    """The words after ``jetforge run``, split: jetforge's own options, the engine
    options before the image, the image (or package) and the command."""

    own: tuple[tuple[str, str | None], ...]
    options: tuple[str, ...]
    image: str
    command: tuple[str, ...]

    def own_value(self, name: str) -> str | None:
        """The last value given to one of jetforge's own options."""
        values = [value for key, value in self.own if key == name]
        return values[-1] if values else None

    def own_values(self, name: str) -> list[str]:
        """Every value given to a repeatable own option."""
        return [value for key, value in self.own if key == name and value is not None]

    def has_own(self, name: str) -> bool:
        """Whether one of jetforge's own options was given."""
        return any(key == name for key, _ in self.own)


def _option_length(words: Sequence[str], index: int) -> int:
    """How many words the engine option at ``index`` spans (1, or 2 with its value)."""
    word = words[index]
    if word.startswith("--"):
        name = _ALIASES.get(word, word)
        takes_value = "=" not in word and name not in _FLAG_OPTIONS
    else:
        letters = word[1:]
        position = next((i for i, c in enumerate(letters) if c in _SHORT_WITH_VALUE), None)
        takes_value = position is not None and position == len(letters) - 1
    return 2 if takes_value and index + 1 < len(words) else 1


def split_run_words(words: Sequence[str], own: Mapping[str, bool]) -> RunWords:
    """Split ``[options] IMAGE [CMD…]``; ``own`` maps jetforge's option names to whether
    they take a value. Every other word starting with ``-`` before the image is an engine
    option (with its value, for options that take one); ``--`` ends the options.
    """
    found: list[tuple[str, str | None]] = []
    options: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            index += 1
            break
        if not word.startswith("-") or word == "-":
            break
        name, equals, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in own:
            if not own[name]:
                found.append((name, None))
                index += 1
            elif equals:
                found.append((name, value))
                index += 1
            elif index + 1 < len(words):
                found.append((name, words[index + 1]))
                index += 2
            else:
                found.append((name, None))
                index += 1
            continue
        length = _option_length(words, index)
        options += words[index : index + length]
        index += length
    image = words[index] if index < len(words) else ""
    return RunWords(tuple(found), tuple(options), image, tuple(words[index + 1 :]))


def iter_options(options: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """Engine options as ``(long name, value or None)`` pairs: ``-it`` gives
    ``--interactive`` and ``--tty``, ``-eA=1`` gives ``(--env, A=1)``, ``--net`` is
    ``--network``."""
    index = 0
    while index < len(options):
        word = options[index]
        length = _option_length(options, index)
        following = options[index + 1] if length == 2 else None
        index += length
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            yield _ALIASES.get(name, name), value if equals else following
            continue
        letters = word[1:]
        for position, letter in enumerate(letters):
            name = _SHORT_NAMES.get(letter, f"-{letter}")
            if letter in _SHORT_WITH_VALUE:
                rest = letters[position + 1 :]
                yield name, rest.removeprefix("=") if rest else following
                break
            yield name, None


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the user asked for: the image, the command, their engine options."""

    image: str
    command: tuple[str, ...] = ()
    user_options: tuple[str, ...] = ()
    data_dir: str = ""
    terminal: bool = False


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The engine ``run`` options, image and command, the GPU access chosen and warnings to
    show (the engine makes the command line: ``Engine.run_command``)."""

    options: tuple[str, ...]
    image: str
    command: tuple[str, ...]
    gpu: str
    warnings: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """What follows ``run`` on the command line."""
        return (*self.options, self.image, *self.command)


@dataclass(frozen=True, slots=True)
class _UserChoices:
    """What the user's options decide, so jetforge's defaults step aside."""

    names: frozenset[str]
    targets: frozenset[str]
    env_names: frozenset[str]
    gpu: bool


def _container_path(option: str, value: str) -> str:
    """The container path an ``--volume``/``--mount``/``--tmpfs``/``--device`` value uses."""
    if option == "--mount":
        for part in value.split(","):
            key, _, given = part.partition("=")
            if key.strip() in ("target", "destination", "dst"):
                return given.strip()
        return ""
    parts = value.split(":")
    if option == "--tmpfs":
        return parts[0]
    if option == "--device":
        return parts[1] if len(parts) > 1 and parts[1].startswith("/") else parts[0]
    return parts[1] if len(parts) > 1 else parts[0]


def _user_choices(options: Sequence[str]) -> _UserChoices:
    names: set[str] = set()
    targets: set[str] = set()
    env_names: set[str] = set()
    gpu = False
    for name, value in iter_options(options):
        names.add(name)
        if value is None:
            continue
        if name in ("--volume", "--mount", "--tmpfs", "--device"):
            targets.add(_container_path(name, value).rstrip("/") or "/")
        if name == "--env":
            env_names.add(value.partition("=")[0])
        if name in ("--runtime", "--gpus") or (
            name == "--device" and value.startswith("nvidia.com/")
        ):
            gpu = True
    return _UserChoices(frozenset(names), frozenset(targets), frozenset(env_names), gpu)


def plan_run(probe: HostProbe, request: RunRequest) -> RunPlan:
    """The engine ``run`` command for ``request`` on the probed host (pure)."""
    options = _Options(_user_choices(request.user_options))
    user = options.user
    if "--rm" not in user.names:
        options.add("--rm")
    if request.terminal and not user.names & {"--interactive", "--tty", "--detach"}:
        options.add("-it")
    if "--network" not in user.names:
        options.add("--network", "host")
    gpu = choose_gpu(probe)
    warnings: list[str] = []
    if user.gpu:
        gpu = GpuAccess("user", (), "chosen by the user's options")
    elif gpu.kind == "none":
        warnings.append(NO_GPU_WARNING)
    options.add(*gpu.options)
    if request.data_dir:
        options.mount(request.data_dir, "/data")
    if probe.localtime:
        options.mount("/etc/localtime", "/etc/localtime", "ro")
    if probe.display:
        options.display(probe)
    for device in probe.devices:
        if device not in user.targets:
            options.add("--device", device)
    if probe.jtop_socket:
        options.mount(JTOP_SOCKET, JTOP_SOCKET)
    options.add(*request.user_options)
    return RunPlan(tuple(options.words), request.image, request.command, gpu.kind, tuple(warnings))


class _Options:
    """The options of a ``run`` command being planned; a mount or variable the user's own
    options set is left to them."""

    def __init__(self, user: _UserChoices) -> None:
        self.user = user
        self.words: list[str] = []

    def add(self, *words: str) -> None:
        self.words.extend(words)

    def mount(self, source: str, target: str, mode: str = "") -> None:
        if target not in self.user.targets:
            self.add("--volume", f"{source}:{target}{':' + mode if mode else ''}")

    def environment(self, name: str, value: str | None = None) -> None:
        if name not in self.user.env_names:
            self.add("--env", name if value is None else f"{name}={value}")

    def display(self, probe: HostProbe) -> None:
        """The host's X display: its variable, its sockets and its cookie."""
        self.environment("DISPLAY")
        if probe.x11_sockets:
            self.mount(X11_SOCKETS, X11_SOCKETS)
        if probe.xauthority and "XAUTHORITY" not in self.user.env_names:
            self.mount(probe.xauthority, _XAUTHORITY_IN_CONTAINER, "ro")
            self.environment("XAUTHORITY", _XAUTHORITY_IN_CONTAINER)


@dataclass(frozen=True, slots=True)
class Launch:
    """A container ready to start: its engine and plan."""

    engine: Engine
    plan: RunPlan

    def shell(self) -> str:
        """The engine command, as one shell line (``--dry-run``)."""
        plan = self.plan
        return self.engine.run_command(plan.options, plan.image, plan.command).shell()

    def attach(self) -> int:
        """Run it on this process's terminal; its exit code."""
        plan = self.plan
        return self.engine.attach(plan.options, plan.image, plan.command)


def prepare_launch(
    workspace: Workspace,
    words: RunWords,
    *,
    engine_flag: str | None,
    host_root: str | None,
    terminal: bool,
    find: Callable[[str], str],
) -> Launch:
    """The engine (``--engine``), the host under ``host_root`` (else ``JETFORGE_HOST_ROOT``,
    else ``/``) probed, the image chosen (:func:`choose_image`, ``find`` giving a package's)
    and the run planned; the plan's warnings go to the workspace."""
    engine = workspace.engine(engine_flag)
    root = Path(host_root or workspace.env.get(HOST_ROOT_VARIABLE) or "/")
    info = engine.info()
    probe = probe_host(
        root,
        workspace.env,
        runtimes=info.runtimes,
        cdi_spec_dirs=info.cdi_spec_dirs,
        gpus_flag=engine.gpus_flag,
    )
    image = str(image_reference(choose_image(workspace, engine, words.image, find), "run"))
    request = RunRequest(
        image=image,
        command=words.command,
        user_options=words.options,
        data_dir=str(workspace.data_dir),
        terminal=terminal,
    )
    plan = plan_run(probe, request)
    for warning in plan.warnings:
        workspace.warn(warning)
    return Launch(engine, plan)


def choose_image(
    workspace: Workspace, engine: Engine, name: str, find: Callable[[str], str]
) -> str:
    """``name`` as given, unless it names no local image but a package: then ``find``'s
    answer (autotag's choice). References with a registry, a path or a digest are always
    images."""
    reference = parse_image_ref(name)
    if reference.registry or reference.digest or "/" in reference.repository:
        return name
    if engine.inspect(name) is not None or not workspace.catalog.lookup(name):
        return name
    return find(name)
