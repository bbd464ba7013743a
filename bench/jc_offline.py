"""Run jetson-containers' own code from a checkout, offline, for measurements.

    python bench/jc_offline.py CHECKOUT build --list-packages
    python bench/jc_offline.py CHECKOUT build --simulate pytorch

jc is loaded without its package ``__init__`` (which pip-installs missing requirements);
its submodules are imported and their names gathered in the ``jetson_containers``
namespace, as that ``__init__`` does. Optional modules that only format logs or talk to
Docker Hub (tabulate, termcolor, wget, dockerhub_api) are stubbed when missing. The
network is refused (jc's helpers and ``requests`` fail at once, and retry sleeps return),
so jc takes its scripts' offline fallbacks, as jetforge does. Nothing of jc is copied.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import runpy
import sys
import time
import types
from pathlib import Path

OPTIONAL = ("tabulate", "termcolor", "wget", "dockerhub_api")
SUBMODULES = ("logging", "utils", "l4t_version", "packages", "network", "pypi_utils", "container")


def _stub_optional_modules() -> None:
    for name in OPTIONAL:
        try:
            importlib.import_module(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.tabulate = lambda *_a, **_k: ""  # type: ignore[attr-defined]
            stub.colored = lambda text, *_a, **_k: text  # type: ignore[attr-defined]
            sys.modules[name] = stub


def load(checkout: Path, *, deterministic: bool = False) -> types.ModuleType:
    """jc's ``packages`` module, with the namespace set up and the network refused.

    ``deterministic`` also drops jc's process pool (whose results jc discards: it only
    prints) and memoises ``find_package`` (a pure lookup once the scan is done), for
    comparisons; measurements of jc's speed leave both as they are.
    """
    _stub_optional_modules()
    holder = types.ModuleType("jetson_containers")
    holder.__path__ = [str(checkout / "jetson_containers")]  # type: ignore[attr-defined]
    sys.modules["jetson_containers"] = holder
    sys.path.insert(0, str(checkout))
    import requests

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise requests.exceptions.ConnectionError("offline")

    requests.Session.request = refuse  # type: ignore[method-assign]
    time.sleep = lambda _seconds: None
    modules = {}
    for name in SUBMODULES:
        modules[name] = importlib.import_module(f"jetson_containers.{name}")
        for attribute in dir(modules[name]):
            if not attribute.startswith("__"):
                setattr(holder, attribute, getattr(modules[name], attribute))
        setattr(holder, name, modules[name])
    network, pypi_utils = modules["network"], modules["pypi_utils"]
    network.github_api = lambda *_a, **_k: None
    network.handle_text_request = lambda *_a, **_k: None

    def refuse_json(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("offline")

    network.handle_json_request = refuse_json
    pypi_utils.get_package_info = lambda *_a, **_k: None
    for name in ("github_latest_tag", "github_latest_commit", "handle_text_request"):
        setattr(holder, name, getattr(network, name))
    holder.handle_json_request = refuse_json  # type: ignore[attr-defined]
    packages = modules["packages"]
    if deterministic:
        _make_deterministic(packages)
    return packages


def _make_deterministic(packages: types.ModuleType) -> None:
    """No process pool (jc discards its results), and ``find_package`` memoised."""

    class NoPool:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            pass

        def __enter__(self) -> NoPool:
            return self

        def __exit__(self, *_args: object) -> None:
            return None

        def map(self, *_args: object, **_kwargs: object) -> list[object]:
            return []

    packages.concurrent.futures.ProcessPoolExecutor = NoPool
    find = packages.find_package

    @functools.cache
    def find_by_name(name: str) -> object:
        return find(name)

    def find_cached(package: object, required: bool = True, scan: bool = True) -> object:
        if isinstance(package, str) and required:
            return find_by_name(package)
        return find(package, required, scan)

    packages.find_package = find_cached


def main() -> int:
    checkout, module, *arguments = sys.argv[1:]
    load(Path(checkout).resolve())
    sys.argv = [f"jetson_containers.{module}", *arguments]
    with contextlib.suppress(SystemExit):
        runpy.run_module(f"jetson_containers.{module}", run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
