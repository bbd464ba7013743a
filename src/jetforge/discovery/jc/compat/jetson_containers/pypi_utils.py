"""PyPI lookups of jc config scripts: offline, as jc answers when PyPI cannot be reached."""

from __future__ import annotations

from typing import Any

from . import _offline


def get_package_info(package_name: str, retries: int = 5) -> dict[str, Any] | None:
    """None (offline)."""
    del retries
    _offline(f"PyPI's record of {package_name}")
    return None


def get_latest_version(package_name: str) -> str | None:
    """None (offline)."""
    _offline(f"the latest PyPI version of {package_name}")
    return None
