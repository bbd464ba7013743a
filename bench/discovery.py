"""Benchmark: the speed of read-only commands (issue 11), with and without the discovery
index, next to ``python -c pass`` and, given a checkout, jetson-containers in the same run.

Trees:
- synthetic: 1,000 packages (60% Dockerfile headers only, 25% package.yaml with 2-4
  variants, 15% config.py with 2-6 variants; dependency chains up to 15 deep);
- header-only: 1,000 packages whose Dockerfile headers both tools read (name, depends),
  for the ratio against jc's ``build --list-packages`` on the same tree (``--jc``);
- jc's real tree (``--jc PATH``): every config script; jetforge's ``list`` and
  ``build --simulate pytorch`` against jc's own commands (through bench/jc_offline.py:
  both offline, CUDA_VERSION=12.8).

Every figure is of whole processes, each on its own (no resident process). Warm runs use
the discovery index filled by an earlier run; cold runs pass ``--no-index``. Each figure
is the median (and min-max) of whole processes after one unmeasured run (and the second
the index waits for files to settle);
bytecode caches are allowed on both sides (PYTHONDONTWRITEBYTECODE is dropped), no engine
is reachable (JETFORGE_DOCKER points nowhere), the cache folders are fresh.

Targets (issue 11): synthetic warm ``list`` <= 0.12 s, cold <= 0.3 s; warm ``build
--simulate`` of the 15-deep leaf <= 0.15 s; ``--help`` <= 0.08 s; peak memory <= 40 MB;
header-only warm ``list`` >= 10x faster than jc; on jc's tree warm ``list`` and ``build
--simulate pytorch`` >= 10x faster than jc, cold within 1.5x of jc. The absolute targets
were set on a machine where ``python -c pass`` took 0.011 s; the ratio column puts each
figure next to this machine's own.

``--short`` (a smoke test, run by the test suite): one measured run each, no jc, and no
exit status from the targets.

    .venv/bin/python bench/discovery.py [--runs 7] [--short] [--keep DIR] [--jc PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COUNT = 1000
DEPTH = 15
SETTLE = 1.1  # the index trusts files a second after they were written


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


def write_header_tree(root: Path) -> None:
    """1,000 packages of Dockerfile headers only, in chains up to 15 deep."""
    rng = random.Random(20261202)
    levels: list[list[str]] = [[] for _ in range(DEPTH)]
    for index in range(COUNT):
        level = index % DEPTH
        name = f"hdr{index:04d}"
        depends = [rng.choice(levels[level - 1])] if level else []
        directory = root / f"group{index % 20:02d}" / name
        directory.mkdir(parents=True)
        (directory / "Dockerfile").write_text(
            f"#---\n# name: {name}\n# depends: [{', '.join(depends)}]\n#---\n"
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        )
        levels[level].append(name)


class Timer:
    """Runs whole processes in one environment and keeps their figures."""

    def __init__(self, runs: int, env: dict[str, str]) -> None:
        self.runs = runs
        self.env = env
        self.baseline = 0.0

    def measure(self, argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
        """Median, min and max wall seconds and the largest peak RSS (MB), after one
        unmeasured run (which fills the index for warm runs) and a second for what it
        wrote to settle."""
        environment = {**self.env, **(env or {})}
        times, peaks = [], []
        for number in range(self.runs + 1):
            started = time.perf_counter()
            process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment
            )
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"failed: {' '.join(argv)}")
            if number:
                times.append(elapsed)
                peaks.append(usage.ru_maxrss / 1024)
            else:  # what the first run wrote (a config script's file, say) settles
                time.sleep(SETTLE)
        return {
            "median": statistics.median(times),
            "min": min(times),
            "max": max(times),
            "peak": max(peaks),
        }


def row(label: str, figures: dict[str, float], baseline: float, target: str = "") -> None:
    spread = f"{figures['min']:.3f}-{figures['max']:.3f}"
    print(
        f"{label[:40]:<41}{figures['median']:>8.3f}{spread:>14}"
        f"{figures['median'] / baseline:>7.1f}{figures['peak']:>8.1f}  {target}"
    )


def verdict(ok: bool, text: str) -> str:
    return f"{text}: {'ok' if ok else 'MISSED'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--short", action="store_true", help="smoke test: one run, no targets")
    parser.add_argument("--keep", type=Path, help="write the trees here and keep them")
    parser.add_argument("--jc", type=Path, help="a jetson-containers checkout to compare with")
    args = parser.parse_args()
    runs = 1 if args.short else args.runs
    with tempfile.TemporaryDirectory() as temporary:
        work = args.keep or Path(temporary)
        synthetic, headers = work / "synthetic", work / "headers"
        leaf = write_tree(synthetic)
        write_header_tree(headers)
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            XDG_CACHE_HOME=str(work / "cache"),
            XDG_STATE_HOME=str(work / "state"),
            JETFORGE_SHIPPED_PACKAGES="",
            JETFORGE_DOCKER="/nonexistent/docker",
        )
        timer = Timer(runs, env)
        time.sleep(SETTLE)
        missed = measure_synthetic(timer, synthetic, headers, leaf)
        if args.jc and not args.short:
            missed |= compare_with_jc(timer, args.jc.resolve(), headers, work)
        if missed and not args.short:
            raise SystemExit(1)


def measure_synthetic(timer: Timer, synthetic: Path, headers: Path, leaf: str) -> bool:
    """The synthetic trees; True when a target was missed."""
    jetforge = [sys.executable, "-m", "jetforge"]
    dirs = ["--package-dirs", str(synthetic)]
    listed = subprocess.run(
        [*jetforge, "list", *dirs], capture_output=True, text=True, env=timer.env, check=True
    ).stdout.count("\n")
    chain = subprocess.run(
        [*jetforge, "graph", *dirs, leaf], capture_output=True, text=True, env=timer.env, check=True
    ).stdout.count("\n")
    print(f"synthetic tree: {COUNT} packages, {listed} variants; chain of {leaf}: {chain} stages")
    print(f"median of {timer.runs} runs each (after one unmeasured run)\n")
    print(f"{'command':<41}{'wall s':>8}{'min-max':>14}{'x base':>7}{'peak MB':>8}  target")
    base = timer.measure([sys.executable, "-c", "pass"])
    timer.baseline = base["median"]
    row("python -c pass (baseline)", base, timer.baseline)
    simulate = [*jetforge, "build", "--simulate", *dirs, leaf]
    cases = [
        ("jetforge --help", [*jetforge, "--help"], 0.08),
        ("list, cold (--no-index)", [*jetforge, "list", "--no-index", *dirs], 0.3),
        ("list, warm", [*jetforge, "list", *dirs], 0.12),
        (f"build --simulate {leaf}, warm", simulate, 0.15),
        (f"build --simulate {leaf}, cold", [*simulate, "--no-index"], None),
    ]
    missed = False
    for label, argv, target in cases:
        figures = timer.measure(argv)
        note = ""
        if target is not None:
            ok = figures["median"] <= target and figures["peak"] <= 40
            missed |= not ok
            note = verdict(ok, f"<= {target} s, <= 40 MB")
        row(label, figures, timer.baseline, note)
    row(
        "header-only tree: list, warm",
        timer.measure([*jetforge, "list", "--package-dirs", str(headers)]),
        timer.baseline,
    )
    return missed


def jc_synthetic_checkout(checkout: Path, headers: Path, work: Path) -> Path:
    """A jc checkout whose packages/ is the header-only tree (jc's code, linked)."""
    fake = work / "jc-headers"
    fake.mkdir(exist_ok=True)
    (fake / "jetson_containers").unlink(missing_ok=True)
    (fake / "jetson_containers").symlink_to(checkout / "jetson_containers")
    if (fake / "packages").exists():
        shutil.rmtree(fake / "packages")
    shutil.copytree(headers, fake / "packages")
    return fake


def compare_with_jc(timer: Timer, checkout: Path, headers: Path, work: Path) -> bool:
    """jetforge and jc on the same trees; True when a target was missed."""
    env = {"CUDA_VERSION": "12.8"}
    offline = [sys.executable, str(Path(__file__).parent / "jc_offline.py")]
    jetforge = [sys.executable, "-m", "jetforge"]
    fake = jc_synthetic_checkout(checkout, headers, work)
    time.sleep(SETTLE)
    jc_tree = ["--package-dirs", str(checkout / "packages")]
    pairs = [
        (
            "header-only: list",
            [*offline, str(fake), "build", "--list-packages"],
            [*jetforge, "list", "--package-dirs", str(fake / "packages")],
            None,
        ),
        (
            "jc tree: list",
            [*offline, str(checkout), "build", "--list-packages"],
            [*jetforge, "list", *jc_tree],
            [*jetforge, "list", "--no-index", *jc_tree],
        ),
        (
            "jc tree: build --simulate pytorch",
            [*offline, str(checkout), "build", "--simulate", "pytorch"],
            [*jetforge, "build", "--simulate", *jc_tree, "pytorch"],
            [*jetforge, "build", "--simulate", "--no-index", *jc_tree, "pytorch"],
        ),
    ]
    print(f"\njetson-containers ({checkout}), same trees, median of {timer.runs} runs")
    print("warm: with the discovery index; cold: without (--no-index)")
    print(
        f"{'command':<36}{'jc s':>8}{'warm s':>9}{'jc/warm':>9}"
        f"{'cold s':>9}{'cold/jc':>9}{'peak MB':>9}  target"
    )
    missed = False
    for label, jc_argv, warm_argv, cold_argv in pairs:
        jc = timer.measure(jc_argv, env)["median"]
        warm = timer.measure(warm_argv, env)
        ratio = jc / warm["median"]
        ok = ratio >= 10
        cold_text, cold_ratio_text = "", ""
        if cold_argv is not None:
            cold = timer.measure(cold_argv, env)["median"]
            cold_text, cold_ratio_text = f"{cold:.3f}", f"{cold / jc:.2f}"
            ok &= cold <= 1.5 * jc
        missed |= not ok
        target = "warm >= 10x jc" + (", cold <= 1.5x jc" if cold_argv else "")
        print(
            f"{label:<36}{jc:>8.3f}{warm['median']:>9.3f}{ratio:>9.1f}"
            f"{cold_text:>9}{cold_ratio_text:>9}{warm['peak']:>9.1f}"
            f"  {verdict(ok, target)}"
        )
    return missed


if __name__ == "__main__":
    main()
