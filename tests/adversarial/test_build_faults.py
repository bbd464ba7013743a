"""Faults around real builds: what autotag offers after a failed test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_autotag_engine import chain, config  # noqa: F401 - fixtures

pytestmark = pytest.mark.engine


def test_autotag_and_run_never_offer_a_stage_image_whose_tests_failed(
    jetforge,
    chain,  # noqa: F811
    config,  # noqa: F811
):
    def build():  # type: ignore[no-untyped-def]
        return jetforge(
            "build",
            "--package-dirs",
            str(chain.tree),
            "--base",
            "debian:12",
            "--distro",
            "debian:12",
            chain.name("fb"),
        )

    good = build()
    assert good.code == 0, good.stderr
    final = good.stdout.strip()
    # A newer build of fb whose test fails: its stage image stays (for a rerun), untested.
    (chain.tree / "fb" / "check.sh").write_text("#!/bin/sh\necho broken; exit 1\n")
    failed = build()
    assert failed.code == 1
    dirs = ("--package-dirs", str(chain.tree))
    found = jetforge("-v", "autotag", chain.name("fb"), "--no-build", *dirs)
    assert found.code == 0, found.stderr
    assert found.stdout.strip() == final
    assert "its tests did not pass here" in found.stderr
    ran = jetforge("run", "--dry-run", *dirs, chain.name("fb"))
    assert final in ran.stdout, ran.stdout + ran.stderr


def _normalized(stages: list[dict], logs: Path | None = None) -> list[tuple[str, str, list[str]]]:
    """The stages' packages, keys and commands with the creation time left out and a
    build's logs directory written as a plan shows it (``<logs>``)."""
    created = "org.opencontainers.image.created="

    def word_of(word: str) -> str:
        if word.startswith(created):
            return f"{created}-"
        return word.replace(str(logs), "<logs>") if logs else word

    return [
        (stage["package"], stage["key"], [word_of(word) for word in stage["command"]])
        for stage in stages
    ]


def test_simulate_prints_exactly_what_build_runs(jetforge, chain_tree, image_name, tmp_path):
    argv = ["--package-dirs", str(chain_tree), "--base", "debian:12", "--distro", "debian:12"]
    argv += ["--name", image_name, "fd"]
    simulated = jetforge("build", "--simulate", "--json", *argv)
    assert simulated.code == 0, simulated.stderr
    logs = tmp_path / "logs"
    built = jetforge("build", "--logs", str(logs), *argv)
    assert built.code == 0, built.stderr
    planned = json.loads((logs / "plan.json").read_text())
    simulated_stages = _normalized(json.loads(simulated.stdout)["stages"])
    assert simulated_stages == _normalized(planned["stages"], logs)
