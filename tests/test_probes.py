"""Remembered host probes: a probe runs again exactly when its program or the driver
changed, and a program that is not on PATH is never started."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from jetforge.host import stash
from jetforge.host.probes import RememberingRunner
from jetforge.host.process import Completed, run_process

OLD = time.time() - 3600


class Counting:
    """The real runner, counting what it starts."""

    def __init__(self) -> None:
        self.started: list[tuple[str, ...]] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **options: object
    ) -> Completed:
        self.started.append(tuple(argv))
        return run_process(argv, env=env, timeout=10)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """A bin folder with a fake ``nvcc`` (modified an hour ago, and taken as settled
    however recent its change time), and a PATH of only it."""
    monkeypatch.setattr(stash, "SETTLED_NS", 0)
    folder = tmp_path / "bin"
    folder.mkdir()
    write_nvcc(folder, "12.4")
    return folder, {"PATH": str(folder)}


def write_nvcc(folder: Path, release: str, *, when: float = OLD) -> None:
    program = folder / "nvcc"
    program.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {release}'\n")
    program.chmod(0o755)
    os.utime(program, (when, when))


def probe(memo: Path | None, env: dict[str, str], driver: Path) -> tuple[str, Counting]:
    counting = Counting()
    runner = RememberingRunner(memo, counting, driver_file=driver)
    done = runner(["nvcc", "--version"], env=env, timeout=10)
    return done.stdout, counting


def test_a_missing_program_is_never_started(tmp_path: Path) -> None:
    counting = Counting()
    runner = RememberingRunner(tmp_path / "memo.json", counting)
    done = runner(["nvidia-smi"], env={"PATH": str(tmp_path)}, timeout=10)
    assert done.returncode == 127
    assert "not found on PATH" in done.stderr
    assert counting.started == []


def test_an_answer_is_kept_until_the_program_changes(
    tools: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = tools
    memo, driver = tmp_path / "memo.json", tmp_path / "driver"
    first, counting = probe(memo, env, driver)
    assert "release 12.4" in first
    assert counting.started == [("nvcc", "--version")]
    again, counting = probe(memo, env, driver)
    assert again == first
    assert counting.started == []
    write_nvcc(folder, "12.8")
    changed, counting = probe(memo, env, driver)
    assert "release 12.8" in changed
    assert len(counting.started) == 1


def test_a_driver_change_asks_again(tools: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = tools
    memo, driver = tmp_path / "memo.json", tmp_path / "driver"
    driver.write_text("NVRM version: 550.54\n")
    probe(memo, env, driver)
    assert probe(memo, env, driver)[1].started == []
    driver.write_text("NVRM version: 570.10\n")
    assert len(probe(memo, env, driver)[1].started) == 1


def test_another_program_on_path_asks_again(
    tools: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = tools
    memo, driver = tmp_path / "memo.json", tmp_path / "driver"
    probe(memo, env, driver)
    other = tmp_path / "other"
    other.mkdir()
    write_nvcc(other, "11.8")
    found, counting = probe(memo, {"PATH": f"{other}:{env['PATH']}"}, driver)
    assert "release 11.8" in found
    assert len(counting.started) == 1


def test_a_program_changed_just_now_is_not_remembered(
    tools: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stash, "SETTLED_NS", 1_000_000_000)
    folder, env = tools
    memo, driver = tmp_path / "memo.json", tmp_path / "driver"
    write_nvcc(folder, "12.6", when=time.time())
    probe(memo, env, driver)
    assert len(probe(memo, env, driver)[1].started) == 1


def test_no_memo_or_a_damaged_one_probes(
    tools: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = tools
    driver = tmp_path / "driver"
    assert len(probe(None, env, driver)[1].started) == 1
    assert len(probe(None, env, driver)[1].started) == 1
    damaged = tmp_path / "memo.json"
    damaged.write_text("{not json")
    found, counting = probe(damaged, env, driver)
    assert "release 12.4" in found
    assert len(counting.started) == 1
    assert probe(damaged, env, driver)[1].started == []  # rewritten whole
