"""Benchmark: package discovery and planning on a synthetic 1,000-package tree.

Generates the tree (60% Dockerfile headers only, 25% package.yaml with 2-4 variants, 15%
config.py with 2-6 variants; dependency chains up to 15 deep), then times whole
``jetforge`` processes, five runs each, and prints the median wall time and peak memory
next to a bare ``python -c pass`` baseline measured in the same run.

Targets (issue 2): list <= 0.5 s, build --simulate of a 15-deep leaf <= 0.6 s,
peak memory <= 80 MB.

With ``--jc PATH`` (a jetson-containers checkout) it also times, on jc's real tree and in
the same run, ``jetforge list`` and ``jetforge build --simulate pytorch`` against jc's own
``build --list-packages`` and ``build --simulate pytorch`` (run through
bench/jc_offline.py: both sides offline, CUDA_VERSION=12.8), and prints the ratios.
Target (jc-compatibility issue): ``jetforge list`` on jc's tree <= 0.5 s.

    .venv/bin/python bench/discovery.py [--runs 5] [--keep DIR] [--jc PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COUNT = 1000
DEPTH = 15


def write_tree(root: Path) -> str:
    """Write the synthetic tree; return the name of a leaf 15 levels deep."""
    rng = random.Random(20261124)
    levels: list[list[str]] = [[] for _ in range(DEPTH)]
    leaf = ""
    for index in range(COUNT):
        level = index % DEPTH
        name = f"pkg{index:04d}"
        depends = [rng.choice(levels[level - 1])] if level else []
        if level > 2 and rng.random() < 0.3:
            depends.append(rng.choice(levels[rng.randrange(level - 1)]))
        directory = root / f"group{index % 20:02d}" / name
        directory.mkdir(parents=True)
        header = [f"# name: {name}", f"# depends: [{', '.join(depends)}]", "# test: test.sh"]
        kind = rng.random()
        if kind < 0.60:
            dockerfile_header = header
        elif kind < 0.85:
            dockerfile_header = [f"# depends: [{', '.join(depends)}]"]
            variants = rng.randint(2, 4)
            lines = []
            for minor in range(variants):
                lines += [f"'{name}:1.{minor}':", f"  build_args: {{VERSION: '1.{minor}'}}"]
                if minor == variants - 1:
                    lines.append("  default: true")
            (directory / "package.yaml").write_text("\n".join(lines) + "\n")
        else:
            dockerfile_header = header
            variants = rng.randint(2, 6)
            (directory / "config.py").write_text(
                "def configure(package, platform):\n"
                f"    versions = [f'2.{{minor}}' for minor in range({variants})]\n"
                "    return [package.replace(name=f'{package.name}:{v}',\n"
                "                            build_args={'VERSION': v}) for v in versions]\n"
            )
        (directory / "Dockerfile").write_text(
            "\n".join(
                [
                    "#---",
                    *dockerfile_header,
                    "#---",
                    "ARG BASE_IMAGE",
                    "FROM ${BASE_IMAGE}",
                    "RUN echo building",
                    "",
                ]
            )
        )
        (directory / "test.sh").write_text("true\n")
        levels[level].append(name)
        if level == DEPTH - 1:
            leaf = name
    return leaf


def measure(argv: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MB) of ``runs`` runs of ``argv``."""
    times, peaks = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        times.append(time.perf_counter() - started)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"failed ({process.returncode}): {' '.join(argv)}")
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the tree here and keep it")
    parser.add_argument("--jc", type=Path, help="a jetson-containers checkout to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary) / "tree"
        leaf = write_tree(root)
        jetforge = [sys.executable, "-m", "jetforge"]
        dirs = ["--package-dirs", str(root)]
        cases = [
            ("python -c pass (baseline)", [sys.executable, "-c", "pass"], None, None),
            ("jetforge --help", [*jetforge, "--help"], None, None),
            ("jetforge list", [*jetforge, "list", *dirs], 0.5, 80.0),
            (
                f"jetforge build --simulate {leaf}",
                [*jetforge, "build", "--simulate", *dirs, leaf],
                0.6,
                80.0,
            ),
            (
                f"jetforge build --simulate --json {leaf}",
                [*jetforge, "build", "--simulate", "--json", *dirs, leaf],
                0.6,
                80.0,
            ),
        ]
        variants = subprocess.run(
            [*jetforge, "list", *dirs], capture_output=True, text=True, check=True
        ).stdout.count("\n")
        print(f"tree: {COUNT} packages, {variants} variants listed, leaf {leaf} ({DEPTH} deep)")
        chain = subprocess.run(
            [*jetforge, "graph", *dirs, leaf], capture_output=True, text=True, check=True
        ).stdout.count("\n")
        print(f"chain of {leaf}: {chain} stages; median of {args.runs} runs each\n")
        baseline = None
        print(f"{'command':<44}{'wall s':>8}{'x base':>8}{'peak MB':>9}  target")
        failed = False
        for label, argv, wall_target, memory_target in cases:
            wall, peak = measure(argv, args.runs)
            baseline = baseline or wall
            target = ""
            if wall_target is not None and memory_target is not None:
                ok = wall <= wall_target and peak <= memory_target
                failed |= not ok
                target = (
                    f"<= {wall_target} s, <= {memory_target:.0f} MB: {'ok' if ok else 'MISSED'}"
                )
            print(f"{label[:43]:<44}{wall:>8.3f}{wall / baseline:>8.1f}{peak:>9.1f}  {target}")
        if args.jc:
            failed |= compare_with_jc(args.jc.resolve(), args.runs)
        if failed:
            raise SystemExit(1)


def compare_with_jc(checkout: Path, runs: int) -> bool:
    """Time jetforge and jc on jc's own tree; True when a target was missed."""
    env = {**os.environ, "CUDA_VERSION": "12.8"}
    env.pop("JETFORGE_SHIPPED_PACKAGES", None)
    jc = [sys.executable, str(Path(__file__).parent / "jc_offline.py"), str(checkout), "build"]
    jetforge = [sys.executable, "-m", "jetforge"]
    dirs = ["--package-dirs", str(checkout / "packages")]
    pairs = [
        ("list", [*jc, "--list-packages"], [*jetforge, "list", *dirs], 0.5),
        (
            "build --simulate pytorch",
            [*jc, "--simulate", "pytorch"],
            [*jetforge, "build", "--simulate", *dirs, "pytorch"],
            None,
        ),
    ]
    print(f"\njc's tree ({checkout}), median of {runs} runs each")
    print(
        f"{'command':<30}{'jc s':>8}{'jetforge s':>12}{'jc / jetforge':>15}{'peak MB':>9}  target"
    )
    missed = False
    for label, jc_argv, jetforge_argv, target in pairs:
        jc_wall, _ = measure(jc_argv, runs, env)
        wall, peak = measure(jetforge_argv, runs, env)
        verdict = ""
        if target is not None:
            ok = wall <= target
            missed |= not ok
            verdict = f"<= {target} s: {'ok' if ok else 'MISSED'}"
        print(
            f"{label:<30}{jc_wall:>8.3f}{wall:>12.3f}{jc_wall / wall:>15.1f}{peak:>9.1f}  {verdict}"
        )
    return missed


if __name__ == "__main__":
    main()
