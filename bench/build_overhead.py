"""Benchmark: jetforge's own cost around real engine work, on a 5-stage chain.

Runs on the real Docker engine with the shipped packages on the bootstrapped debian:12
base: ca-trust -> build-essential -> python -> numpy -> cmake.

(a) a full build (``--rebuild --build-flags=--no-cache``): whole-process wall time, the
    time spent inside engine build and test commands (from summary.json), and jetforge's
    own overhead = wall - engine time, as a share of the full build (target <= 5%);
(b) a no-op rebuild of the same chain: wall time (target <= 3 s) and the number of
    engine builds it started (target 0, read from summary.json and plan.json).

    .venv/bin/python bench/build_overhead.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"build failed:\n{done.stderr}")
    return wall, json.loads((logs / "summary.json").read_text())


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        build(root / "warm")  # make sure every image exists once (not measured)
        full_wall, full = build(root / "full", "--rebuild")
        noop_wall, noop = build(root / "noop")
    stages = [s["package"] for s in full["stages"]]
    engine = full["engine_seconds"]
    overhead = full_wall - engine
    built_again = [s["package"] for s in noop["stages"] if s["state"] != "reused"]
    tests_again = [t for t in noop["final_tests"] if t["state"] != "cached"]
    print(f"chain: {' -> '.join(stages)} ({len(stages)} stages)")
    print(
        f"(a) full build: wall {full_wall:.2f} s, engine build+test {engine:.2f} s, "
        f"jetforge overhead {overhead:.2f} s = {100 * overhead / full_wall:.1f}% "
        f"(target <= 5%: {'ok' if overhead / full_wall <= 0.05 else 'MISSED'})"
    )
    print(
        f"(b) no-op rebuild: wall {noop_wall:.2f} s = {noop_wall / full_wall:.3f} x full build "
        f"(target <= 3 s: {'ok' if noop_wall <= 3 else 'MISSED'}); engine builds started: "
        f"{len(built_again)}, tests rerun: {len(tests_again)} (target 0)"
    )
    if overhead / full_wall > 0.05 or noop_wall > 3 or built_again or tests_again:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
