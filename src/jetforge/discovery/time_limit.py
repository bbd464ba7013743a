"""The time limit of one config script (``JETFORGE_CONFIG_TIMEOUT``), parsed on every
discovery: a module of its own, so that a discovery answered by the index checks it
without importing the script host."""

from __future__ import annotations

import math
from collections.abc import Mapping

from jetforge.errors import UsageError

SCRIPT_TIMEOUT = 20.0
LONGEST_TIMEOUT = 3600.0  # an hour for one script: anything longer is a typo
TIMEOUT_VARIABLE = "JETFORGE_CONFIG_TIMEOUT"


def script_timeout(env: Mapping[str, str]) -> float:
    """The time limit of one config script: ``JETFORGE_CONFIG_TIMEOUT`` seconds (unset or
    empty: :data:`SCRIPT_TIMEOUT`); anything but a number greater than 0 and at most
    :data:`LONGEST_TIMEOUT` is a usage error naming the variable."""
    text = env.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return SCRIPT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= LONGEST_TIMEOUT:  # false for nan too
        raise UsageError(
            f"{TIMEOUT_VARIABLE}={text!r} is not a time limit (valid: a number of seconds "
            f"greater than 0 and at most {LONGEST_TIMEOUT:g}, such as the default "
            f"{SCRIPT_TIMEOUT:g})"
        )
    return value
