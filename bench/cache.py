"""Benchmark: a stage that compiles a wheel from its sdist, cold versus served from the cache.

Runs on the real Docker engine in BuildKit mode (Debian's docker 20.10 client, which drives
the daemon's own BuildKit) with the shipped packages on the bootstrapped debian:12 base:
ca-trust -> build-essential -> python -> cache-tools -> jfwheel. jfwheel runs
``jetforge-pip install jfdemo==1.0``; jfdemo is the test fixture's C extension, padded with
generated C sources so that compiling it takes a while, served as an sdist by a local
mirror (it exists on no public index, so pip must compile it).

(a) cold: a fresh package cache (``jetforge cache serve``) holds nothing; the stage
    downloads the sdist, compiles it, and uploads the wheel;
(b) cached: the same stage again (a new salt file in the package forces it to run), now
    installing the wheel from the local cache.

The number reported for each is the stage's build seconds from summary.json (the engine
build of that one stage, test excluded).

    .venv/bin/python bench/cache.py [--work-files N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from support.mirror import Mirror, make_sdist  # noqa: E402

PACKAGES = ROOT / "tests" / "fixtures" / "engine" / "cache" / "packages"


def jetforge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jetforge", *args], env=env, capture_output=True, text=True
    )


def build(env: dict[str, str], tree: Path, logs: Path) -> tuple[float, dict]:  # type: ignore[type-arg]
    (tree / "jfwheel" / "salt.txt").write_text(uuid.uuid4().hex + "\n")
    started = time.perf_counter()
    done = jetforge(
        env, "build", "--package-dirs", str(tree), "--distro", "debian:12", "--base",
        "debian:12", "--name", "jetforge-bench-cache", "--logs", str(logs), "jfwheel",
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"build failed:\n{done.stderr}")
    summary = json.loads((logs / "summary.json").read_text())
    stage = next(s for s in summary["stages"] if s["package"] == "jfwheel")
    return wall, stage


def warmup(env: dict[str, str], tree: Path, logs: Path) -> None:
    """Build the stages before jfwheel (same keys as in jfwheel's chain; not measured)."""
    done = jetforge(
        env, "build", "--package-dirs", str(tree), "--distro", "debian:12", "--base",
        "debian:12", "--name", "jetforge-bench-cache", "--logs", str(logs), "python",
        "cache-tools",
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"warm-up build failed:\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work-files", type=int, default=48, help="generated C files (60 functions each)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        tree = root / "packages"
        shutil.copytree(PACKAGES, tree)
        mirror = Mirror(root / "mirror", [make_sdist(root / "sdist", work_files=args.work_files)])
        env = {
            **os.environ,
            "XDG_CACHE_HOME": str(root / "cache"),
            "JETFORGE_DOCKER": "/usr/bin/docker",
            "JETFORGE_CACHE_URLS": mirror.url,
        }
        started = jetforge(env, "cache", "serve", "--background", "--port", "0")
        if started.returncode != 0:
            raise SystemExit(f"cache serve failed:\n{started.stderr}")
        try:
            warmup(env, tree, root / "warmup")
            cold_wall, cold = build(env, tree, root / "cold")
            cached_wall, cached = build(env, tree, root / "cached")
        finally:
            jetforge(env, "cache", "stop")
            mirror.close()
    print(f"stage jfwheel: jetforge-pip install jfdemo==1.0 ({args.work_files} generated C files)")
    for label, wall, stage in (
        ("(a) cold, compiled from the sdist:", cold_wall, cold),
        ("(b) served from the cache:        ", cached_wall, cached),
    ):
        print(f"{label} stage {stage['seconds']:.2f} s (whole build {wall:.2f} s)")
        print(f"    cache events: {', '.join(stage['cache'])}")
    print(f"speed-up of the stage: {cold['seconds'] / cached['seconds']:.1f}x")
    compiled = any(e.startswith("compiled ") for e in cold["cache"])
    from_cache = any(e.startswith("cached ") for e in cached["cache"])
    if not compiled or not from_cache:
        raise SystemExit("expected a compile in (a) and a cached install in (b)")


if __name__ == "__main__":
    main()
