"""The optional config file ``jetforge.toml`` (docs/cli.md).

Looked up in the working directory, else in the user config directory
(``$XDG_CONFIG_HOME/jetforge/jetforge.toml``, default ``~/.config``). Environment and flags
override it. Relative paths in it are relative to the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetforge.core.formats import ROOT_FORMATS, RootFormat, root_format
from jetforge.core.urls import redact, url_problem
from jetforge.errors import UsageError
from jetforge.host.files import MIB, read_regular

if TYPE_CHECKING:
    from jetforge.host.workers import Worker

FILE_NAME = "jetforge.toml"
CONFIG_LIMIT = MIB  # a config file is a few lines


@dataclass(frozen=True, slots=True)
class Settings:
    """Defaults from the config file; every field has a built-in default."""

    path: Path | None = None
    package_dirs: tuple[Path, ...] = ()
    package_formats: tuple[RootFormat, ...] = ()  # one per package_dirs entry
    engine: str = ""
    base_images: tuple[tuple[str, str], ...] = ()
    registries: tuple[str, ...] = ()
    cache_urls: tuple[str, ...] = ()
    pypi_url: str | None = None
    logs_dir: Path | None = None
    data_dir: Path | None = None
    workers: tuple[Worker, ...] = ()

    def base_image_for(self, distro: str) -> str | None:
        """The configured base image for a distro such as ``debian:12``."""
        return dict(self.base_images).get(distro)


_KEYS = (
    "package_dirs",
    "engine",
    "base_images",
    "registries",
    "cache_urls",
    "pypi_url",
    "logs_dir",
    "data_dir",
    "workers",
)


def find_settings_file(cwd: Path, env: Mapping[str, str]) -> Path | None:
    """The config file in effect, if any: one that is there but not a regular file (a
    FIFO, a device) is in effect too, and reading it says what it is."""
    local = cwd / FILE_NAME
    if local.exists():
        return local
    config_home = env.get("XDG_CONFIG_HOME") or (
        str(Path(env["HOME"]) / ".config") if env.get("HOME") else ""
    )
    if config_home:
        user = Path(config_home) / "jetforge" / FILE_NAME
        if user.exists():
            return user
    return None


def load_settings(
    cwd: Path, env: Mapping[str, str], engines: Callable[[], Sequence[str]]
) -> Settings:
    """Read the config file in effect; an error names the file and the problem.
    ``engines`` gives the engine names a worker may name (asked only when there are
    workers)."""
    path = find_settings_file(cwd, env)
    if path is None:
        return Settings()
    data = _read_toml(path)

    def paths(key: str) -> tuple[Path, ...]:
        return tuple(path.parent / item for item in _strings(data, key, path))

    def optional_path(key: str) -> Path | None:
        found = paths(key)
        return found[0] if found else None

    base_images = data.get("base_images", {})
    if not isinstance(base_images, dict) or not all(
        isinstance(v, str) for v in base_images.values()
    ):
        raise UsageError(f"{path}: 'base_images' must map distros to images, e.g. 'debian:12'")
    if base_images:
        from jetforge.core.tags import image_reference  # here, not at the top: start-up time

        for distro, image in base_images.items():
            image_reference(image, f"{path}: base_images.{distro}")
    pypi_url = data.get("pypi_url")
    if pypi_url is not None and not isinstance(pypi_url, str):
        raise UsageError(f"{path}: 'pypi_url' must be a URL, or '' to leave PyPI out")
    if pypi_url is not None and pypi_url.strip().lower() not in ("", "off"):
        check_index_url(pypi_url, f"{path}: 'pypi_url'", "or '' to leave PyPI out")
    cache_urls = _strings(data, "cache_urls", path)
    for url in cache_urls:
        check_index_url(url, f"{path}: 'cache_urls' entry")
    package_dirs, package_formats = _package_dirs(data.get("package_dirs", []), path)
    engine = data.get("engine", "")
    if not isinstance(engine, str):
        raise UsageError(f"{path}: 'engine' must be 'docker' or 'podman'")
    workers: tuple[Worker, ...] = ()
    if "workers" in data:
        from jetforge.host.workers import parse_workers

        workers = parse_workers(data["workers"], path, engines())
    return Settings(
        path=path,
        package_dirs=package_dirs,
        package_formats=package_formats,
        engine=engine,
        base_images=tuple(sorted(base_images.items())),
        registries=tuple(_strings(data, "registries", path)),
        cache_urls=tuple(cache_urls),
        pypi_url=pypi_url,
        logs_dir=optional_path("logs_dir"),
        data_dir=_data_dir(data, path),
        workers=workers,
    )


def check_index_url(text: str, source: str, otherwise: str = "") -> None:
    """A package index URL a user gave (``cache_urls``, ``pypi_url`` and their variables),
    refused with one line naming ``source`` when :func:`url_problem` finds one."""
    problem = url_problem(text)
    if problem:
        more = f"; {otherwise}" if otherwise else ""
        raise UsageError(
            f"{source} {redact(text)!r} {problem} (valid: an http:// or https:// index URL with a "
            f"host, such as 'http://mirror.lan:7780/x86_64-cu128-24.04/simple/'{more})"
        )


# Directories of the system a data directory must not be: every test and run container
# may write into the data directory (it is mounted read-write at /data).
SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc", "/root"}
    | {"/run", "/sbin", "/sys", "/usr", "/var"}
)


def system_dir(directory: Path) -> str | None:
    """The system directory ``directory`` is (as written, or where its links lead), else
    None."""
    for form in (os.path.normpath(directory), os.path.realpath(directory)):
        if form in SYSTEM_DIRS:
            return form
    return None


def data_dir_problem(text: str) -> str:
    """Why ``text`` cannot be the data directory an engine mounts at ``/data`` (its
    ``--volume SOURCE:/data`` and ``--mount`` syntax split on ':' and ','; a control
    character makes another line of every message), or "" when it can."""
    if not text.strip():
        return "is empty"
    if any(char in ":," for char in text):
        return "holds ':' or ',', where an engine's volume syntax splits it"
    if not text.isprintable():
        return "holds a control character"
    return ""


def _data_dir(data: Mapping[str, Any], path: Path) -> Path | None:
    """``data_dir``, refused when it is empty (it would be the config file's directory),
    cannot be mounted as written, or is a system directory."""
    given = _strings(data, "data_dir", path) if "data_dir" in data else []
    if not given:
        return None
    problem = data_dir_problem(given[0])
    if problem:
        raise UsageError(
            f"{path}: 'data_dir' {given[0]!r} {problem} (valid: a directory of its own, such as "
            "'/srv/jetforge-data', without ':', ',' or control characters; leave the key "
            "out for the default)"
        )
    directory = path.parent / given[0]
    found = system_dir(directory)
    if found is not None:
        raise UsageError(
            f"{path}: 'data_dir' is the system directory {found}, which every test and run "
            "container could write (valid: a directory of its own, such as "
            "'/srv/jetforge-data' or one under your home)"
        )
    return directory


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's table, its keys checked."""
    if sys.version_info >= (3, 11):  # here, not at the top: most runs have no config file
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    raw = read_regular(path, "config file (TOML)", CONFIG_LIMIT)
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: {error}") from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise UsageError(
            f"{path}: arrays or tables nested too deeply to read (valid: the keys of "
            "docs/cli.md, a few levels deep)"
        ) from None
    for key in data:
        if key not in _KEYS:
            import difflib  # here, not at the top: only a typo needs it

            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(_KEYS)}"
            raise UsageError(f"{path}: unknown key '{key}' ({hint})")
    return data


def _package_dirs(value: object, path: Path) -> tuple[tuple[Path, ...], tuple[RootFormat, ...]]:
    """``package_dirs``: strings, or tables ``{path = "...", format = "jc"}``."""
    items = [value] if isinstance(value, str | dict) else value
    problem = (
        f"{path}: 'package_dirs' must list directories, each a string or a table "
        '{path = "...", format = "auto|jetforge|jc"}'
    )
    if not isinstance(items, list):
        raise UsageError(problem)
    found: list[tuple[Path, RootFormat]] = []
    for item in items:
        if isinstance(item, str):
            found.append((path.parent / item, "auto"))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise UsageError(problem)
        unknown = sorted(set(item) - {"path", "format"})
        kind = item.get("format", "auto")
        if unknown or kind not in ROOT_FORMATS:
            raise UsageError(
                f"{path}: package_dirs entry {item!r}: "
                + (f"unknown key '{unknown[0]}'" if unknown else f"format '{kind}'")
                + f" (valid: path, format = {' | '.join(ROOT_FORMATS)})"
            )
        found.append((path.parent / item["path"], root_format(kind)))
    return tuple(p for p, _ in found), tuple(k for _, k in found)


def _strings(data: Mapping[str, Any], key: str, path: Path) -> list[str]:
    value = data.get(key, [])
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise UsageError(f"{path}: '{key}' must be a string or a list of strings")
    return items
