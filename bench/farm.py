"""Benchmark: the build farm against one engine, on chains whose stages mostly wait.

Four independent chains of three stages, each stage ``RUN sleep 5``, built with
``--multiple`` twice in one run: on the local engine alone, then on three workers (the
local engine and two more Docker daemons on this machine, started and stopped here, with
docker-registry between them). Each run gets new stage keys (a salt in every stage), so both build
all twelve stages. The base image goes to the registry first and the two daemons pull it
from there, as farm workers get their base (a daemon given it by ``docker load`` would
download its layers again on its first pull of a stage: it cannot tell a compressed blob
it never pulled from a layer it has); that one-time set-up is printed apart. A warm-up
build of the stage all chains share (ca-trust) comes first, so that neither run builds it.
Prints both wall times, their ratio (target <= 0.45), the stages each worker built and
the seconds spent pushing and pulling.

    .venv/bin/python bench/farm.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.chains import write_chains
from support.daemons import Daemon, start_daemon, stop_daemon, write_farm_config
from support.engines import start_registry

CHAINS, LENGTH = 4, 3


def build(
    root: Path, lasts: list[str], workers: str, work: Path, run: str
) -> tuple[float, Counter[str]]:
    logs = work / f"logs-{run}"
    argv = [
        sys.executable, "-m", "jetforge", "build", "--multiple", "--workers", workers,
        "--package-dirs", str(root / "tree"), "--distro", "debian:12", "--base", "debian:12",
        "--name", "jfbench-farm/", "--logs", str(logs), "--skip-tests", "intermediate", *lasts,
    ]  # fmt: skip
    env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config")}
    env["JETFORGE_SHIPPED_PACKAGES"] = ""
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"build on {workers} failed:\n{done.stderr}")
    built: Counter[str] = Counter()
    for summary in logs.glob("*/summary.json"):
        document = json.loads(summary.read_text())
        built["transfer seconds"] += round(document["transfer_seconds"])
        for stage in document["stages"]:
            if stage["state"] == "built":
                built[stage["worker"] or "local"] += 1
    return wall, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="sleep of each stage")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jfbench-farm-"))
    tree = work / "tree"

    def salt() -> list[str]:  # new stage keys: nothing an earlier run built is reused
        return write_chains(tree, CHAINS, LENGTH, seconds=args.seconds, salt=uuid.uuid4().hex)

    lasts = salt()
    daemons: list[Daemon] = []
    registry_root = work / "registry"
    registry_root.mkdir()
    registry, registry_process = start_registry(registry_root, auth=False)
    try:
        daemons = [start_daemon(load_base=False), start_daemon(load_base=False)]
        write_farm_config(work / "config", registry.address, daemons)
        print(f"{CHAINS} chains x {LENGTH} stages, each RUN sleep {args.seconds}")
        seeded = f"{registry.address}/farm/base:seed"
        started = time.monotonic()
        subprocess.run(["docker", "tag", "debian:12", seeded], check=True)
        subprocess.run(["docker", "push", "-q", seeded], capture_output=True, check=True)
        for daemon in daemons:  # workers get their base from the registry
            daemon.docker("pull", "-q", seeded)
            daemon.docker("tag", seeded, "debian:12")
        seeding = time.monotonic() - started
        print(f"one-time: base image to the registry and to each daemon: {seeding:.1f} s")
        build(work, ["c0s1"], "local", work, "warm-up")  # ca-trust, shared by all chains
        salt()
        one, built_one = build(work, lasts, "local", work, "one")
        salt()
        three, built_three = build(work, lasts, "local,d2,d3", work, "three")
        print(f"1 worker : {one:6.1f} s  stages built: {dict(built_one)}")
        print(f"3 workers: {three:6.1f} s  stages built: {dict(built_three)}")
        print(f"ratio 3 workers / 1 worker: {three / one:.2f} (target <= 0.45)")
    finally:
        for daemon in daemons:
            stop_daemon(daemon)
        registry_process.terminate()
        registry_process.wait(timeout=10)
        subprocess.run(
            "docker images --format '{{.Repository}}:{{.Tag}}' | grep jfbench-farm "
            "| xargs -r docker rmi -f",
            shell=True,
            capture_output=True,
            check=False,
        )


if __name__ == "__main__":
    main()
