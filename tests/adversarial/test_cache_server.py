"""The cache server: anonymous reads of platforms that do not exist allocate nothing."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from jetforge.cache.control import read_state
from tests.test_cache import pypiserver_installed, server  # noqa: F401 - fixtures


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_anonymous_reads_of_unknown_platforms_cost_nothing(server):  # noqa: F811
    _url, paths = server
    state = read_state(paths)
    assert state is not None
    wheels = state.store / "wheels"
    before = set(wheels.iterdir()) if wheels.is_dir() else set()
    base = f"http://{state.host}:{state.port}"
    assert _get(f"{base}/no-such-platform-0/simple/") == 200  # an empty index, for probes
    _get(f"{base}/no-such-platform-0/simple/numpy/")
    rss = _rss_kib(state.pid)
    codes = {_get(f"{base}/probe-{number}/simple/numpy/") for number in range(500)}
    assert codes == {404}
    after = set(wheels.iterdir()) if wheels.is_dir() else set()
    assert after == before  # no folder per path
    assert _rss_kib(state.pid) - rss < 8 * 1024  # and no index object per path
