"""Reading jc package directories from the jetforge process.

:class:`JcReader` turns one directory into :class:`~jetforge.spec.PackageSpec` values of
format ``jc``. Directories without a config script are read here; the others go to a
worker process (:mod:`jetforge.jc.worker`) that gets the platform's constants first and
runs in a scratch working directory. Requests are sent ahead, so the worker runs scripts
while this process reads the other directories; a worker that a script killed, or that
ran past the time limit, is replaced and gets the requests it had not answered.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jetforge._process import LineWorker, WorkerGoneError
from jetforge.errors import DefinitionError
from jetforge.jc.reader import (
    JC_KEYS,
    JC_ONLY_KEYS,
    OFFLINE_NOTE,
    header_text,
    is_config_script,
    read_records,
)
from jetforge.platform_table import SBSA, TEGRA, load_tables
from jetforge.spec import PackageSpec, check_contents

if TYPE_CHECKING:
    from jetforge.platform import Platform

SCRIPT_TIMEOUT = 20.0
IN_FLIGHT = 16  # requests sent ahead to each worker
# Worker processes that run config scripts at once: one per two cores (on two cores a
# second worker only competes with this process and the first).
LANES = max(1, min(4, (os.cpu_count() or 2) // 2))
TIMEOUT_VARIABLE = "JETFORGE_CONFIG_TIMEOUT"
JC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9_][A-Za-z0-9_.:+\-]*)?$")
_DEFINES_CONFIGURE = re.compile(r"^def configure\(", re.MULTILINE)
_JC_HEADER_KEY = re.compile(rf"^\s*({'|'.join(JC_ONLY_KEYS)})\s*:", re.MULTILINE)


def is_jc_checkout(root: Path) -> bool:
    """Whether ``root`` is the ``packages`` tree of a jetson-containers checkout."""
    return (root.parent / "jetson_containers" / "__init__.py").is_file()


def is_jc_directory(directory: Path, files: frozenset[str]) -> bool:
    """Whether a package directory is in jc format: a ``config.py`` with no
    ``configure()``, or a Dockerfile header with a key only jc has."""
    try:
        if "config.py" in files:
            script = (directory / "config.py").read_text(encoding="utf-8-sig")
            if not _DEFINES_CONFIGURE.search(script):
                return is_config_script(directory / "config.py")
        for name in files:
            if name.lower() == "dockerfile":
                text = header_text((directory / name).read_text(encoding="utf-8-sig"))
                if text is not None and _JC_HEADER_KEY.search(text):
                    return True
    except (OSError, UnicodeDecodeError):
        return False
    return False


def needs_worker(directory: Path, files: frozenset[str]) -> bool:
    """Whether reading a jc directory runs a config script (in the worker)."""
    return "config.py" in files and is_config_script(directory / "config.py")


def import_roots(roots: Sequence[Path]) -> tuple[Path, ...]:
    """Where ``packages.*`` imports look: for each search directory the nearest directory
    named ``packages`` at or above it, else the search directory itself."""
    found: dict[Path, None] = {}
    for root in roots:
        absolute = root.resolve()
        named = next((p for p in (absolute, *absolute.parents) if p.name == "packages"), absolute)
        found[named] = None
    return tuple(found)


def platform_constants(platform: Platform, env: Mapping[str, str]) -> dict[str, object]:
    """The values of the compatibility module's constants on ``platform``.

    Off Jetson, jc takes L4T 39.1.0 / JetPack 7.2 (so that L4T checks pass there); the
    data file records those values.
    """
    tables = load_tables()
    cuda_arch = {TEGRA: "tegra-aarch64", SBSA: "aarch64"}.get(platform.cuda_arch, "x86_64")
    free_threading = env.get("PYTHON_FREE_THREADING", "0") == "1"
    return {
        "L4T_VERSION": str(platform.l4t_version or tables.jc_l4t),
        "JETPACK_VERSION": str(platform.jetpack_version or tables.jc_jetpack),
        "CUDA_VERSION": f"{platform.cuda_version.major}.{platform.cuda_version.minor}",
        "PYTHON_VERSION": str(platform.python_version),
        "CUDA_ARCH": cuda_arch,
        "SYSTEM_ARCH": platform.arch,
        "LSB_RELEASE": platform.distro.release,
        "CUDA_ARCHITECTURES": list(platform.gpu_archs),
        "PYTHON_FREE_THREADING": free_threading,
    }


_Item = tuple[Path, frozenset[str]]


class _Lane:
    """One worker process and the directories sent to it; answers come in order."""

    def __init__(self, start: Callable[[], LineWorker], timeout: float) -> None:
        self.start = start
        self.timeout = timeout
        self.worker: LineWorker | None = None
        self.queued: deque[_Item] = deque()
        self.sent: deque[_Item] = deque()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def send_ahead(self) -> None:
        """Keep up to :data:`IN_FLIGHT` requests with the worker (starting it if needed)."""
        while self.queued and len(self.sent) < IN_FLIGHT:
            directory, files = self.queued[0]
            if self.worker is None:
                self.worker = self.start()
            request = {"directory": str(directory), "files": sorted(files)}
            try:
                self.worker.send(json.dumps(request))
            except WorkerGoneError:
                self._lost(answering=False)
                return
            self.sent.append(self.queued.popleft())

    def answer(self, item: _Item) -> dict[str, Any]:
        """The worker's answer for ``item`` (sent first if it was not announced); a
        ``lost`` answer when the worker died or overran while on it."""
        if item not in self.sent and item not in self.queued:
            self.queued.appendleft(item)
        while self.sent and self.sent[0] != item and self.worker is not None:
            with contextlib.suppress(WorkerGoneError):  # announced, never asked for
                self.worker.receive(self.timeout)
                self.sent.popleft()
        self.send_ahead()
        if not self.sent or self.sent[0] != item or self.worker is None:
            return {"lost": "the worker process exited"}
        try:
            answer: dict[str, Any] = json.loads(self.worker.receive(self.timeout))
        except WorkerGoneError as gone:
            self._lost(answering=True)
            return {"lost": str(gone)}
        self.sent.popleft()
        self.send_ahead()
        return answer

    def _lost(self, *, answering: bool) -> None:
        """The worker is gone. The directory it was answering (with ``answering``) takes
        the blame; the others it held go to the next worker."""
        if self.worker is not None:
            self.worker.close()
        self.worker = None
        if answering:
            self.sent.popleft()
        self.queued.extendleft(reversed(self.sent))
        self.sent.clear()


class JcReader:
    """Reads jc package directories for one platform; a context manager that stops the
    workers (and removes their scratch directory) on exit.

    Config scripts run in ``lanes`` worker processes at once; each directory goes to one
    of them by its place in the scan order, so results do not depend on timing.
    """

    def __init__(
        self,
        platform: Platform,
        env: Mapping[str, str],
        roots: Sequence[Path],
        *,
        lanes: int = LANES,
    ) -> None:
        self.platform = platform
        self.env = dict(env)
        self.roots = import_roots(roots)
        self.timeout = _timeout(env)
        self._scratch: Path | None = None
        self._lanes = [_Lane(self._start, self.timeout) for _ in range(max(1, lanes))]
        self._lane_of: dict[Path, _Lane] = {}
        self._files: dict[Path, bool] = {}

    def _is_file(self, path: Path) -> bool:
        if path not in self._files:
            self._files[path] = path.is_file()
        return self._files[path]

    def start(self) -> None:
        """Start the workers now (when a jc tree is known to be coming): they load
        while this process walks the tree."""
        for lane in self._lanes:
            if lane.worker is None:
                lane.worker = self._start()

    def __enter__(self) -> JcReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and remove their scratch directory."""
        for lane in self._lanes:
            lane.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def expect(self, directories: Sequence[_Item]) -> None:
        """Announce, in scan order, the jc directories :meth:`read` will be asked for, so
        that the workers run their scripts while this process reads the others."""
        scripted = [item for item in directories if needs_worker(*item)]
        for number, item in enumerate(scripted):
            lane = self._lanes[number % len(self._lanes)]
            lane.queued.append(item)
            self._lane_of[item[0]] = lane
        for lane in self._lanes:
            lane.send_ahead()  # the workers start now, while this process reads the rest

    def read(self, directory: Path, files: frozenset[str]) -> tuple[list[PackageSpec], list[str]]:
        """The variants of one jc directory and the warnings reading it left."""
        directory = directory.absolute()  # scripts run elsewhere and read package['path']
        if needs_worker(directory, files):
            records, warnings = self._ask_worker(directory, files)
        else:
            records, warnings = read_records(directory, files, None), []
        specs = []
        unknown: dict[str, list[str]] = {}
        source = directory / ("config.py" if "config.py" in files else "Dockerfile")
        for record in records:
            spec, keys = to_spec(record, directory, source, self._is_file)
            specs.append(spec)
            for key in keys:
                unknown.setdefault(key, []).append(spec.name)
        for key, names in unknown.items():
            close = difflib.get_close_matches(key, JC_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            warnings.append(f"{', '.join(names)}: unknown key '{key}' ignored{hint}")
        return specs, _condensed(directory, warnings)

    def _ask_worker(
        self, directory: Path, files: frozenset[str]
    ) -> tuple[list[dict[str, object]], list[str]]:
        answer = self._lane_of.get(directory, self._lanes[0]).answer((directory, files))
        if "lost" in answer:
            problem = (
                f"config script did not finish within {self.timeout:g} s (set {TIMEOUT_VARIABLE})"
                if "no answer" in str(answer["lost"])
                else "config script ended the process that ran it"
            )
            raise DefinitionError(directory / "config.py", problem)
        if "error" in answer:
            path, line, problem = answer["error"]
            raise DefinitionError(path, problem, line)
        return answer["records"], list(answer["warnings"])

    def _start(self) -> LineWorker:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="jetforge-jc-"))
        env = dict(self.env)
        here = str(Path(__file__).parents[2])
        env["PYTHONPATH"] = here + (f":{env['PYTHONPATH']}" if env.get("PYTHONPATH") else "")
        worker = LineWorker(
            [sys.executable, "-m", "jetforge.jc.worker"], env=env, cwd=self._scratch
        )
        setup = {
            "platform": platform_constants(self.platform, self.env),
            "roots": [str(root) for root in self.roots],
        }
        worker.send(json.dumps(setup))  # answered by nothing: the worker just takes it
        return worker


def _condensed(directory: Path, warnings: list[str]) -> list[str]:
    """One line for a directory's warnings: the last (a script's conclusion), and a count."""
    unique = list(dict.fromkeys(line.strip() for line in warnings if line.strip()))
    if not unique:
        return []
    source = directory / ("config.py" if (directory / "config.py").is_file() else "Dockerfile")
    offline = OFFLINE_NOTE in unique and unique[-1] != OFFLINE_NOTE
    more = len(unique) - 1 - offline
    text = unique[-1] + (f" (it {OFFLINE_NOTE})" if offline else "")
    return [f"{source}: {text}" + (f" (and {more} earlier message(s))" if more else "")]


def _timeout(env: Mapping[str, str]) -> float:
    text = env.get(TIMEOUT_VARIABLE, "")
    try:
        value = float(text) if text else SCRIPT_TIMEOUT
    except ValueError:
        value = SCRIPT_TIMEOUT
    return value if value > 0 else SCRIPT_TIMEOUT


def to_spec(
    record: Mapping[str, object],
    directory: Path,
    source: Path,
    is_file: Callable[[Path], bool] = Path.is_file,
) -> tuple[PackageSpec, list[str]]:
    """A normalised jc record of ``directory`` (defined in ``source``) as a spec of format
    ``jc``, and its unknown keys.

    jc's default for a bare base name is the variant that carries that name as an alias,
    so such a variant is marked ``default``. The ``dockerfile`` must exist (``is_file``
    tells, e.g. from a cache: a directory's variants mostly share one Dockerfile).
    """
    name = str(record["name"])
    path = Path(str(record["path"])) if record["path"] else directory
    if not JC_NAME_PATTERN.match(name):
        raise DefinitionError(source, f"invalid variant name '{name}'")
    alias = tuple(_strings(record["alias"]))
    dockerfile = record["dockerfile"]
    if isinstance(dockerfile, str) and not is_file(path / dockerfile):
        raise DefinitionError(source, f"{name}: dockerfile '{dockerfile}' not found in {path}")
    base = name.partition(":")[0]
    build_args = record["build_args"]
    assert isinstance(build_args, list)
    spec = PackageSpec(
        name=name,
        path=path,
        source=source,
        alias=alias,
        group=str(record["group"]),
        depends=tuple(_strings(record["depends"])),
        requires=tuple(_strings(record["requires"])),
        default=base in alias,
        build_args=tuple((str(key), str(value)) for key, value in build_args),
        build_flags=str(record["build_flags"]),
        dockerfile=dockerfile if isinstance(dockerfile, str) else None,
        test=tuple(_strings(record["test"])),
        docs=str(record["docs"]),
        notes=str(record["notes"]),
        disabled=bool(record["disabled"]),
        prefix=str(record["prefix"]),
        postfix=str(record["postfix"]),
        config=tuple(_strings(record["config"])),
        format="jc",
        buildkit_device=str(record["buildkit_device"]),
    )
    check_contents(spec)
    return spec, [key for key in _strings(record["unknown"]) if key not in JC_KEYS]


def _strings(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(item) for item in value]
