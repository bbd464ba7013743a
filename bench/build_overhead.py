"""Benchmark: jetforge's own cost around real engine work, on a 5-stage chain.

Runs on the real Docker engine with the shipped packages on the bootstrapped debian:12
base: ca-trust -> build-essential -> python -> numpy -> cmake.

(a) a full build (``--rebuild --build-flags=--no-cache``): whole-process wall time, the
    time spent inside engine build and test commands (from summary.json), and jetforge's
    own overhead = wall - engine time, as a share of the full build (target <= 5%);
(b) a no-op rebuild of the same chain, as one process each, interleaved in one loop with
    ``python -c pass`` and with the same no-op asking the docker program instead of the
    Engine API (``JETFORGE_ENGINE_API=0``), seven times each: median and min-max wall
    time of each (target for the no-op: <= 0.15 s, issue 26), the number of engine
    builds it started (target 0, read from summary.json) and the number of docker
    processes it started (through a docker on PATH that counts its calls; target 0).

With ``--noop`` only (b) runs (after one build that makes sure every image exists).
Timings on a shared machine are noisy: compare only figures of one run.

    .venv/bin/python bench/build_overhead.py [--noop] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
TARGET = 0.15  # seconds, the no-op rebuild's median (issue 26)

CHAIN = ["numpy", "cmake"]
COUNTING_DOCKER = """#!/bin/sh
echo "$*" >> "{calls}"
exec "{docker}" "$@"
"""


def jetforge_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def build(logs: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:  # type: ignore[type-arg]
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
    done = subprocess.run(argv, capture_output=True, text=True, env=env or jetforge_env())
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"build failed:\n{done.stderr}")
    return wall, json.loads((logs / "summary.json").read_text())


def counting_docker(root: Path) -> tuple[dict[str, str], Path]:
    """The environment whose PATH finds a docker that appends each call to a file (and
    runs the real one), and that file."""
    real = shutil.which("docker")
    if real is None:
        raise SystemExit("no docker program on PATH")
    folder = root / "bin"
    folder.mkdir()
    calls = root / "docker-calls"
    program = folder / "docker"
    program.write_text(COUNTING_DOCKER.format(calls=calls, docker=real))
    program.chmod(0o755)
    time.sleep(1.1)  # a program changed less than a second ago is not remembered
    return jetforge_env({"PATH": f"{folder}:{os.environ['PATH']}"}), calls


def figures(label: str, walls: list[float]) -> str:
    return (
        f"{label}: median {statistics.median(walls):.3f} s "
        f"(min {min(walls):.3f}, max {max(walls):.3f})"
    )


def noop_rebuilds(root: Path, env: dict[str, str], calls: Path, runs: int) -> bool:
    """(b); True when a target was missed."""
    walls: dict[str, list[float]] = {"api": [], "cli": [], "pass": []}
    built_again, tests_again, processes = set(), set(), []
    program_only = {**env, "JETFORGE_ENGINE_API": "0"}
    for run in range(runs):
        calls.write_text("")
        wall, noop = build(root / f"noop{run}", env=env)
        processes.append(len(calls.read_text().splitlines()))
        walls["api"].append(wall)
        built_again |= {s["package"] for s in noop["stages"] if s["state"] != "reused"}
        tests_again |= {t["package"] for t in noop["final_tests"] if t["state"] != "cached"}
        walls["cli"].append(build(root / f"cli{run}", env=program_only)[0])
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        walls["pass"].append(time.perf_counter() - started)
    median, base = statistics.median(walls["api"]), statistics.median(walls["pass"])
    print(
        f"(b) {figures('no-op rebuild', walls['api'])}, "
        f"{median / base:.0f} x python -c pass; target <= {TARGET} s: "
        f"{'ok' if median <= TARGET else 'MISSED'}; {runs} runs of each, interleaved"
    )
    print(f"    {figures('python -c pass', walls['pass'])}")
    asking = "no-op rebuild asking the docker program (JETFORGE_ENGINE_API=0)"
    print(f"    {figures(asking, walls['cli'])}")
    print(
        f"    engine builds started: {len(built_again)}, tests rerun: {len(tests_again)}, "
        f"docker processes per no-op rebuild: {max(processes)} (target 0 each)"
    )
    return median > TARGET or bool(built_again) or bool(tests_again) or max(processes) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noop", action="store_true", help="only the no-op rebuilds (b)")
    parser.add_argument("--runs", type=int, default=RUNS, help="no-op runs of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        env, calls = counting_docker(root)
        build(root / "warm", env=env)  # every image exists once (not measured)
        if args.noop:
            raise SystemExit(1 if noop_rebuilds(root, env, calls, args.runs) else 0)
        full_wall, full = build(root / "full", "--rebuild", env=env)
        missed = noop_rebuilds(root, env, calls, args.runs)
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
