"""Benchmark: the speed of read-only commands (issue 26), with and without the discovery
index, next to ``python -c pass`` and, given a checkout, jetson-containers in the same run.

Trees:
- synthetic: 1,000 packages (60% Dockerfile headers only, 25% package.yaml with 2-4
  variants, 15% config.py with 2-6 variants; dependency chains up to 30 deep); the leaf
  ``build --simulate`` plans has a chain of exactly 30 packages (a spine: the last
  package of each level depends only on the last of the level below);
- header-only: 1,000 packages whose Dockerfile headers both tools read (name, depends),
  for the ratio against jc's ``build --list-packages`` on the same tree (``--jc``);
- jc's real tree (``--jc PATH``): every config script; jetforge's ``list`` and
  ``build --simulate pytorch`` against jc's own commands (through bench/jc_offline.py:
  both offline, CUDA_VERSION=12.8). jetforge reads a copy of the checkout, so that jc's
  own runs (a script rewrites a file of its directory on every run) do not touch the
  tree jetforge's index describes.

Every figure is of whole processes, each on its own (no resident process). Warm runs use
the discovery index filled by an earlier run; cold runs pass ``--no-index``. Each figure
is the median (and min-max) of whole processes after one unmeasured run (and the second
the index waits for files to settle); where jetforge and jc are compared their runs
alternate (jc, jetforge, jc, ...), so that a machine whose speed drifts moves both.
Bytecode caches are allowed on both sides (PYTHONDONTWRITEBYTECODE is dropped), no engine
is reachable (JETFORGE_DOCKER points nowhere), the cache folders are fresh.

Targets (issue 26): synthetic warm ``list`` <= 0.06 s, cold (``--no-index``) <= 0.15 s;
``--help`` <= 0.03 s; warm ``build --simulate`` of the 30-stage leaf <= 0.10 s; peak
memory <= 40 MB; header-only warm ``list`` >= 12x faster than jc; on jc's tree warm
``list`` and ``build --simulate pytorch`` >= 10x faster than jc, cold within 1.5x of jc.
The absolute targets were set on a machine where ``python -c pass`` took 0.011 s; the
``x base`` column puts each figure next to this machine's own.

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
DEPTH = 30  # levels of the synthetic tree: the leaf's chain is this many packages
HEADER_DEPTH = 15  # levels of the header-only tree
SETTLE = 1.1  # the index trusts files a second after they were written


def write_tree(root: Path) -> str:
    """Write the synthetic tree; return the name of the leaf whose chain is DEPTH packages
    (the spine: the last package of each level depends only on the last of the level
    below, so its chain holds one package per level)."""
    rng = random.Random(20261124)
    levels: list[list[str]] = [[] for _ in range(DEPTH)]
    last_of_level = {index % DEPTH: index for index in range(COUNT)}
    spine = set(last_of_level.values())
    for index in range(COUNT):
        level = index % DEPTH
        name = f"pkg{index:04d}"
        if index in spine:
            depends = [f"pkg{last_of_level[level - 1]:04d}"] if level else []
        else:
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
    return f"pkg{last_of_level[DEPTH - 1]:04d}"


def write_header_tree(root: Path) -> None:
    """1,000 packages of Dockerfile headers only, in chains up to 15 deep."""
    rng = random.Random(20261202)
    levels: list[list[str]] = [[] for _ in range(HEADER_DEPTH)]
    for index in range(COUNT):
        level = index % HEADER_DEPTH
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
        return self.measure_together([argv], env)[0]

    def measure_together(
        self, commands: list[list[str]], env: dict[str, str] | None = None
    ) -> list[dict[str, float]]:
        """The figures of each command (see :meth:`measure`), their runs in turn (A B A B
        ...), so that a machine whose speed drifts moves each alike."""
        environment = {**self.env, **(env or {})}
        times: list[list[float]] = [[] for _ in commands]
        peaks: list[list[float]] = [[] for _ in commands]
        for number in range(self.runs + 1):
            for argv, taken, peak in zip(commands, times, peaks, strict=True):
                elapsed, rss = _run(argv, environment)
                if number:
                    taken.append(elapsed)
                    peak.append(rss)
            if not number:  # what the first runs wrote (a config script's file, say) settles
                time.sleep(SETTLE)
        return [
            {
                "median": statistics.median(taken),
                "min": min(taken),
                "max": max(taken),
                "peak": max(peak),
            }
            for taken, peak in zip(times, peaks, strict=True)
        ]


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One whole process: its wall seconds and peak RSS (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return elapsed, usage.ru_maxrss / 1024


def spread(figures: dict[str, float]) -> str:
    return f"{figures['min']:.3f}-{figures['max']:.3f}"


def row(label: str, figures: dict[str, float], baseline: float, target: str = "") -> None:
    print(
        f"{label[:40]:<41}{figures['median']:>8.3f}{spread(figures):>14}"
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
    print(f"synthetic tree: {COUNT} packages, {listed} variants; chain of {leaf}: {chain} packages")
    print(f"median of {timer.runs} runs each (after one unmeasured run)\n")
    print(f"{'command':<41}{'wall s':>8}{'min-max':>14}{'x base':>7}{'peak MB':>8}  target")
    base = timer.measure([sys.executable, "-c", "pass"])
    timer.baseline = base["median"]
    row("python -c pass (baseline)", base, timer.baseline)
    simulate = [*jetforge, "build", "--simulate", *dirs, leaf]
    cases = [
        ("jetforge --help", [*jetforge, "--help"], 0.03),
        ("list, cold (--no-index)", [*jetforge, "list", "--no-index", *dirs], 0.15),
        ("list, warm", [*jetforge, "list", *dirs], 0.06),
        (f"build --simulate {leaf} ({chain} deep), warm", simulate, 0.10),
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


def jc_copy(checkout: Path, work: Path) -> Path:
    """A copy of jc's checkout (without its git history) for jetforge's runs: jc's own
    runs rewrite files of its tree (ollama's script writes into its directory), which
    must not change the tree jetforge's index describes while they alternate."""
    copy = work / "jc-copy"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(checkout, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    return copy


def compare_with_jc(timer: Timer, checkout: Path, headers: Path, work: Path) -> bool:
    """jetforge and jc on the same trees; True when a target was missed."""
    env = {"CUDA_VERSION": "12.8"}
    offline = [sys.executable, str(Path(__file__).parent / "jc_offline.py")]
    jetforge = [sys.executable, "-m", "jetforge"]
    fake = jc_synthetic_checkout(checkout, headers, work)
    copy = jc_copy(checkout, work)
    time.sleep(SETTLE)
    jc_tree = ["--package-dirs", str(copy / "packages")]
    pairs = [
        (
            "header-only: list",
            [*offline, str(fake), "build", "--list-packages"],
            [*jetforge, "list", "--package-dirs", str(fake / "packages")],
            None,
            12,
        ),
        (
            "jc tree: list",
            [*offline, str(checkout), "build", "--list-packages"],
            [*jetforge, "list", *jc_tree],
            [*jetforge, "list", "--no-index", *jc_tree],
            10,
        ),
        (
            "jc tree: build --simulate pytorch",
            [*offline, str(checkout), "build", "--simulate", "pytorch"],
            [*jetforge, "build", "--simulate", *jc_tree, "pytorch"],
            [*jetforge, "build", "--simulate", "--no-index", *jc_tree, "pytorch"],
            10,
        ),
    ]
    print(f"\njetson-containers ({checkout}), same trees, median (min-max) of {timer.runs} runs")
    print("warm: with the discovery index; cold: without (--no-index); runs alternate with jc's")
    print(
        f"{'command':<34}{'jc s':>7}{'min-max':>13}{'warm s':>8}{'min-max':>13}{'jc/warm':>8}"
        f"{'cold s':>8}{'cold/jc':>8}{'peak MB':>8}  target"
    )
    missed = False
    for label, jc_argv, warm_argv, cold_argv, factor in pairs:
        jc, warm = timer.measure_together([jc_argv, warm_argv], env)
        ratio = jc["median"] / warm["median"]
        ok = ratio >= factor
        cold_text, cold_ratio_text = "", ""
        if cold_argv is not None:  # after the warm runs: a cold run's scripts write files
            cold = timer.measure(cold_argv, env)["median"]
            cold_text, cold_ratio_text = f"{cold:.3f}", f"{cold / jc['median']:.2f}"
            ok &= cold <= 1.5 * jc["median"]
        missed |= not ok
        target = f"warm >= {factor}x jc" + (", cold <= 1.5x jc" if cold_argv else "")
        print(
            f"{label:<34}{jc['median']:>7.3f}{spread(jc):>13}{warm['median']:>8.3f}"
            f"{spread(warm):>13}{ratio:>8.1f}{cold_text:>8}{cold_ratio_text:>8}"
            f"{warm['peak']:>8.1f}  {verdict(ok, target)}"
        )
    return missed


if __name__ == "__main__":
    main()
