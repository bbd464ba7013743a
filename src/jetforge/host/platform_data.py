"""The shipped platform table, ``data/platforms.yaml``, loaded once per process: parsed by
:func:`jetforge.core.platform_table.parse_tables`, what YAML gave kept as a stash file so
that later runs spare importing YAML."""

from __future__ import annotations

import json
import os
import zlib
from functools import cache
from pathlib import Path
from typing import Any

from jetforge.core.platform_table import Tables, parse_tables
from jetforge.errors import PlatformError
from jetforge.host.stash import read_stash, write_stash

DATA_FILE = Path(__file__).parents[1] / "data" / "platforms.yaml"


@cache
def load_tables() -> Tables:
    """The table, parsed from the data file. What YAML gave is kept as a stash file
    (:mod:`jetforge.host.stash`) in the user's cache, keyed by the file's content, so that later
    runs spare importing YAML; the values are made from it each run."""
    data = DATA_FILE.read_bytes()
    kept = _kept_copy(data)
    raw = read_stash(kept)
    if isinstance(raw, dict):
        try:
            return parse_tables(raw)
        except (KeyError, TypeError, ValueError, AttributeError, PlatformError):
            pass  # a damaged copy: parse the file again
    raw = _load_yaml(data.decode("utf-8"))
    # Kept only when JSON holds exactly what YAML gave (it does for this file's types).
    if json.loads(json.dumps(raw)) == raw:
        write_stash(kept, raw)
    return parse_tables(raw)


def _kept_copy(data: bytes) -> Path | None:
    if os.environ.get("JETFORGE_NO_INDEX", "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jetforge" / f"platforms-{zlib.crc32(data):08x}-{len(data)}.json"


def _load_yaml(text: str) -> dict[str, Any]:
    import yaml  # here, not at the top: start-up time

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw: dict[str, Any] = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    return raw


def target_names() -> tuple[str, ...]:
    """The ``--target`` preset names, in data-file order."""
    return tuple(load_tables().targets)
