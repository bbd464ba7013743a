"""Benchmark: jetforge's own cost around real engine work, on a 5-stage chain.

Runs on the real Docker engine with the shipped packages on the bootstrapped debian:12
base: ca-trust -> build-essential -> python -> numpy -> cmake.

(a) a full build (``--rebuild --build-flags=--no-cache``): whole-process wall time, the
    time spent inside engine build and test commands (from summary.json), and jetforge's
    own overhead = wall - engine time, as a share of the full build (target <= 5%);
(b) a no-op rebuild of the same chain, seven times: median and min-max wall time next to
    ``python -c pass`` (target <= 0.5 s, issue 11) and the number of engine builds it
    started (target 0, read from summary.json).

With ``--noop`` only (b) runs (after one build that makes sure every image exists).

    .venv/bin/python bench/build_overhead.py [--noop]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7

CHAIN = ["numpy", "cmake"]


def build(logs: Path, *extra: str) -> tuple[float, dict]:  # type: ignore[type-arg]
    argv = [
        sys.executable,
        "-m",
        "jetforge",
        "build",
        "--distro",
        "debian:12",
        "--name",
        "jetforge-bench",
        "--build-flags=--no-cache",
        "--logs",
        str(logs),
        *extra,
        *CHAIN,
    ]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"build failed:\n{done.stderr}")
    return wall, json.loads((logs / "summary.json").read_text())


def python_start() -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def noop_rebuilds(root: Path) -> bool:
    """(b); True when a target was missed."""
    walls, built_again, tests_again = [], set(), set()
    for run in range(RUNS):
        wall, noop = build(root / f"noop{run}")
        walls.append(wall)
        built_again |= {s["package"] for s in noop["stages"] if s["state"] != "reused"}
        tests_again |= {t["package"] for t in noop["final_tests"] if t["state"] != "cached"}
    median = statistics.median(walls)
    base = python_start()
    print(
        f"(b) no-op rebuild: median {median:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}; "
        f"{median / base:.0f} x python -c pass = {base:.3f} s; target <= 0.5 s: "
        f"{'ok' if median <= 0.5 else 'MISSED'}); engine builds started: {len(built_again)}, "
        f"tests rerun: {len(tests_again)} (target 0)"
    )
    return median > 0.5 or bool(built_again) or bool(tests_again)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noop", action="store_true", help="only the no-op rebuilds (b)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        build(root / "warm")  # make sure every image exists once (not measured)
        if args.noop:
            raise SystemExit(1 if noop_rebuilds(root) else 0)
        full_wall, full = build(root / "full", "--rebuild")
        missed = noop_rebuilds(root)
    stages = [s["package"] for s in full["stages"]]
    engine = full["engine_seconds"]
    overhead = full_wall - engine
    print(f"chain: {' -> '.join(stages)} ({len(stages)} stages)")
    print(
        f"(a) full build: wall {full_wall:.2f} s, engine build+test {engine:.2f} s, "
        f"jetforge overhead {overhead:.2f} s = {100 * overhead / full_wall:.1f}% "
        f"(target <= 5%: {'ok' if overhead / full_wall <= 0.05 else 'MISSED'})"
    )
    if overhead / full_wall > 0.05 or missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
