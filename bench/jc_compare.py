"""Compare jetforge's planner with jetson-containers' own resolver on a jc checkout.

For every platform preset, jc's resolver runs in-process in a child process of its own
(jc computes its platform at import time from the environment), on the unchanged tree,
and resolves the chain of every package it finds; jetforge then resolves the same names
on the same tree and platform. Printed per preset: how many chains jc resolves, how many
of those jetforge plans identically (variant for variant, in order; a variant jc lists
twice counts once), how many differ and how many jetforge refuses, with the differences
grouped by cause.

jc runs through bench/jc_offline.py: offline (its scripts take their fallbacks, as
jetforge's do), without its process pool (whose results jc discards) and with
``find_package`` memoised (a pure lookup once the scan is done).

    .venv/bin/python bench/jc_compare.py --jc PATH [--targets x86_64-cu128,jp6] [--jobs 2]
        [--show N] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGETS = ("x86_64-cu128", "jp6", "jp5", "jp7", "sbsa-cu130", "x86_64-cu126")


def jc_environment(target: str) -> dict[str, str]:
    """The environment that makes jc compute the platform jetforge's preset stands for."""
    from jetforge.core.platform_table import SBSA, TEGRA
    from jetforge.host.platform import detect_platform

    platform = detect_platform({}, target=target)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "CUDA_VERSION": f"{platform.cuda_version.major}.{platform.cuda_version.minor}",
        "SYSTEM_ARCH": platform.arch,
        "CUDA_ARCH": {TEGRA: "tegra-aarch64", SBSA: "aarch64"}.get(platform.cuda_arch, "x86_64"),
        "LSB_RELEASE": platform.distro.release,
    }
    if platform.l4t_version is not None:
        env["L4T_VERSION"] = str(platform.l4t_version)
        env["JETPACK_VERSION"] = str(platform.jetpack_version)
    return env


# --- the jc side (runs in a child process) ----------------------------------------------


def run_jc(checkout: Path) -> dict[str, object]:
    """Scan jc's tree with jc itself and resolve every package's chain."""
    sys.path.insert(0, str(Path(__file__).parent))
    from jc_offline import load  # type: ignore[import-not-found]

    packages = load(checkout, deterministic=True)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        found = packages.scan_packages()
    scanned = time.perf_counter() - started
    chains: dict[str, object] = {}
    for key in sorted(found):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                entries = packages.resolve_dependencies([key])
                names = [packages.find_package(entry)["name"] for entry in entries]
            chains[key] = {"chain": names, "entries": entries}
        except Exception as error:
            chains[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
    return {"scan_seconds": scanned, "chains": chains}


# --- the jetforge side ------------------------------------------------------------------


def run_jetforge(checkout: Path, target: str, env: dict[str, str]) -> dict[str, object]:
    """Discover jc's tree with jetforge and resolve the chain of every given name."""
    from jetforge.core.resolve import resolve
    from jetforge.discovery.discover import discover
    from jetforge.discovery.walk import PackageRoot
    from jetforge.errors import JetforgeError
    from jetforge.host.platform import detect_platform

    platform = detect_platform({}, target=target)
    started = time.perf_counter()
    catalog = discover([PackageRoot(checkout / "packages", "jc")], platform, env=env)
    scanned = time.perf_counter() - started
    chains: dict[str, object] = {}
    tracebacks = 0
    for variant in catalog.variants:
        if not variant.is_available:
            continue
        try:
            resolution = resolve(catalog, [variant.name], {})
            chains[variant.name] = {"chain": [v.name for v in resolution.chain]}
        except JetforgeError as error:
            chains[variant.name] = {"error": str(error)}
        except Exception as error:
            chains[variant.name] = {"error": f"internal error: {type(error).__name__}: {error}"}
            tracebacks += 1
    problems = [str(problem) for problem in catalog.problems]
    identity = {variant.name: variant.identity for variant in catalog.variants}
    return {
        "scan_seconds": scanned,
        "chains": chains,
        "problems": problems,
        "identity": identity,
        "tracebacks": tracebacks,
    }


# --- comparison -------------------------------------------------------------------------


def _error_kind(message: str) -> str:
    for kind in ("dependency cycle", "is ambiguous", "too entangled", "cannot resolve"):
        if kind in message:
            return {"cannot resolve": "conflict explained"}.get(kind, kind)
    return message.split(";")[0][:70]


def explain(
    name: str, jc_chain: list[str], mine: dict[str, object] | None, identity: dict[str, str]
) -> str:
    """The cause of one difference, in words that group."""
    unique = list(dict.fromkeys(jc_chain))
    counts = collections.Counter(identity.get(v, v.partition(":")[0]) for v in unique)
    doubled = sorted(key for key, count in counts.items() if count > 1)
    jc_bug = ""
    if name not in unique:
        jc_bug = "jc bug: the requested variant is missing from jc's own chain"
    elif doubled:
        jc_bug = f"jc bug: two variants of {', '.join(doubled[:2])} in one chain"
    if mine is None:
        return jc_bug or "jetforge: not an available variant here"
    if "error" in mine:
        kind = _error_kind(str(mine["error"]))
        return f"{jc_bug} (jetforge: {kind})" if jc_bug else f"jetforge refuses: {kind}"
    if jc_bug:
        return jc_bug
    chain: list[str] = mine["chain"]  # type: ignore[assignment]
    if sorted(unique) == sorted(chain):
        return "same variants, different order"
    only_jc = [v for v in unique if v not in chain]
    only_jf = [v for v in chain if v not in unique]
    return (
        f"jc only: {', '.join(only_jc[:3]) or '-'}; jetforge only: {', '.join(only_jf[:3]) or '-'}"
    )


def compare(jc: dict[str, object], jf: dict[str, object]) -> dict[str, object]:
    jc_chains: dict[str, dict[str, object]] = jc["chains"]  # type: ignore[assignment]
    jf_chains: dict[str, dict[str, object]] = jf["chains"]  # type: ignore[assignment]
    identity: dict[str, str] = jf["identity"]  # type: ignore[assignment]
    resolved = {name: item for name, item in jc_chains.items() if "chain" in item}
    identical = 0
    doubled = 0
    causes: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    for name, item in sorted(resolved.items()):
        jc_chain: list[str] = item["chain"]  # type: ignore[assignment]
        mine = jf_chains.get(name)
        if mine is not None and mine.get("chain") == list(dict.fromkeys(jc_chain)):
            identical += 1
            doubled += len(jc_chain) != len(set(jc_chain))
            continue
        cause = explain(name, jc_chain, mine, identity)
        causes[cause] += 1
        examples[cause].append(name)
    jc_failures = {name: item for name, item in jc_chains.items() if "error" in item}
    planned = sum("chain" in jf_chains.get(name, {}) for name in jc_failures)
    reasons = collections.Counter(str(item["error"])[:60] for item in jc_failures.values())
    return {
        "jc_failures_planned": planned,
        "jc_failure_reasons": reasons.most_common(3),
        "jc_variants": len(jc_chains),
        "jc_resolved": len(resolved),
        "jc_fails": len(jc_chains) - len(resolved),
        "jetforge_variants": len(jf_chains),
        "identical": identical,
        "identical_after_dedup": doubled,
        "different": sum(causes.values()),
        "causes": causes,
        "examples": examples,
    }


def run_target(checkout: Path, target: str) -> dict[str, object]:
    env = jc_environment(target)
    child = subprocess.run(
        [sys.executable, __file__, "--jc", str(checkout), "--jc-side"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=checkout,
    )
    if child.returncode != 0:
        raise SystemExit(f"{target}: jc failed:\n{child.stderr[-3000:]}")
    jc = json.loads(child.stdout)
    jf = run_jetforge(checkout, target, env)
    return {"target": target, "jc": jc, "jetforge": jf, "comparison": compare(jc, jf)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jc", type=Path, required=True, help="a jetson-containers checkout")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--jobs", type=int, default=2, help="presets compared at once")
    parser.add_argument("--show", type=int, default=3, help="examples printed per cause")
    parser.add_argument("--json", type=Path, help="write every chain of both sides here")
    parser.add_argument("--jc-side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    checkout = args.jc.resolve()
    if args.jc_side:
        json.dump(run_jc(checkout), sys.stdout)
        return 0
    if not (checkout / "jetson_containers" / "packages.py").is_file():
        parser.error(f"--jc: {checkout} is not a jetson-containers checkout")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda t: run_target(checkout, t), targets))
    for result in results:
        c = result["comparison"]
        share = 100.0 * c["identical"] / c["jc_resolved"] if c["jc_resolved"] else 0.0
        print(
            f"{result['target']:<14} jc resolves {c['jc_resolved']:>3} of {c['jc_variants']} "
            f"(fails {c['jc_fails']}); identical {c['identical']:>3} ({share:5.1f} %, "
            f"{c['identical_after_dedup']} after dropping jc's repeats); "
            f"different {c['different']}; jetforge problems "
            f"{len(result['jetforge']['problems'])}, internal errors "
            f"{result['jetforge']['tracebacks']}; scan jc {result['jc']['scan_seconds']:.2f} s, "
            f"jetforge {result['jetforge']['scan_seconds']:.2f} s"
        )
        reasons = "; ".join(f"{n}x {text}" for text, n in c["jc_failure_reasons"])
        print(
            f"    jc's {c['jc_fails']} failures: jetforge plans {c['jc_failures_planned']}"
            + (f" (jc: {reasons})" if reasons else "")
        )
        for cause, count in c["causes"].most_common():
            shown = ", ".join(c["examples"][cause][: args.show])
            print(f"    {count:>3}  {cause}   e.g. {shown}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
