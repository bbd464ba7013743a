"""The speed benchmark runs (a smoke test: its figures are printed, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench" / "discovery.py"


def test_the_discovery_benchmark_runs_in_short_mode(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("JETFORGE_")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--short", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for label in ("python -c pass", "jetforge --help", "list, cold", "list, warm", "simulate"):
        assert label in done.stdout, done.stdout
    assert "synthetic tree: 1000 packages" in done.stdout
