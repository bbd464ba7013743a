"""Context digests remembered between runs: used while a file's stamp holds, never for a
changed file, never kept for a file changed just before it was hashed; plans are the same
with and without them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jetforge.host.digests
import jetforge.host.stash
from jetforge.host.context import file_digest
from jetforge.host.digests import Digests

HEADER = "#---\n# name: {name}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"


@pytest.fixture
def settled(monkeypatch):  # type: ignore[no-untyped-def]
    """Trust files the moment they are written (the real rule waits a second)."""
    monkeypatch.setattr(jetforge.host.stash, "SETTLED_NS", 0)


@pytest.fixture
def hashed(monkeypatch):  # type: ignore[no-untyped-def]
    """The files hashed (not answered from the kept digests)."""
    seen: list[str] = []

    def count(file: Path, info=None):  # type: ignore[no-untyped-def]
        seen.append(file.name)
        return file_digest(file, info)

    monkeypatch.setattr(jetforge.host.digests, "file_digest", count)
    return seen


def test_a_kept_digest_answers_until_the_file_changes(tmp_path, settled, hashed):
    file, memo = tmp_path / "a.txt", tmp_path / "cache" / "digests.json"
    file.write_text("one\n")
    first = Digests(memo)
    digest = first.digest(file)
    first.save()
    assert Digests(memo).digest(file) == digest
    assert hashed == ["a.txt"]
    file.write_text("two\n")  # the same size
    changed = Digests(memo).digest(file)
    assert changed == file_digest(file)
    assert changed != digest
    assert hashed == ["a.txt", "a.txt"]


def test_a_file_changed_just_before_it_was_hashed_is_not_kept(tmp_path, hashed):
    file, memo = tmp_path / "a.txt", tmp_path / "cache" / "digests.json"
    file.write_text("one\n")
    first = Digests(memo)
    first.digest(file)
    first.save()
    Digests(memo).digest(file)
    assert hashed == ["a.txt", "a.txt"]
    assert not memo.exists()


def test_a_damaged_file_counts_as_empty(tmp_path, settled, hashed):
    file, memo = tmp_path / "a.txt", tmp_path / "digests.json"
    file.write_text("one\n")
    memo.write_bytes(b"\x00not JSON")
    assert Digests(memo).digest(file) == file_digest(file)


@pytest.mark.process
def test_plans_are_the_same_with_kept_digests_and_see_every_edit(
    jetforge, tmp_path, cli_env, settled
):
    root = tmp_path / "packages"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(HEADER.format(name="app"))
    (root / "app" / "data.txt").write_text("one\n")
    argv = ("build", "--simulate", "--json", "--package-dirs", str(root), "app")
    env = {"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"}

    def keys() -> list[str]:
        result = jetforge(*argv, env=env)
        assert result.code == 0, result.stderr
        return [stage["key"] for stage in json.loads(result.stdout)["stages"]]

    first = keys()
    assert (Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "digests.json").is_file()
    assert keys() == first  # from the kept digests
    (root / "app" / "data.txt").write_text("two\n")
    assert keys() != first
    (root / "app" / "data.txt").write_text("one\n")
    assert keys() == first
