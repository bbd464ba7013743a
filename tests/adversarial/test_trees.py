"""Hostile trees: links, loops, FIFOs and devices never hang or crash discovery or
planning, and jetforge's own outputs never change a stage key."""

from __future__ import annotations

import json
import os
from pathlib import Path

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"


def keys(run, root: Path, package: str, *argv: str, cwd_env: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    result = run(root, "build", "--simulate", "--json", "--target", "x86_64-cu128", *argv, package)
    assert result.code == 0, result.stderr
    return {stage["package"]: stage["key"] for stage in json.loads(result.stdout)["stages"]}


def test_links_out_of_the_tree_loops_and_dangling_links_are_warnings(tree, run, tmp_path):
    outside = tmp_path / "outside" / "evil"
    outside.mkdir(parents=True)
    (outside / "config.py").write_text("raise SystemExit('executed a file outside the tree')\n")
    (outside / "Dockerfile").write_text(HEADER.format("evil"))
    root = tree({"a/Dockerfile": HEADER.format("a")})
    (root / "out").symlink_to(outside.parent)
    (root / "a" / "up").symlink_to("..")
    (root / "gone").symlink_to(tmp_path / "nowhere")
    (root / "a" / "Dockerfile.link").symlink_to(outside / "Dockerfile")
    result = run(root, "list")
    assert result.code == 0
    assert result.stdout.split() == ["a"]  # nothing from outside, nothing twice
    assert (
        f"{root / 'out'}: link to {outside.parent}, outside the search directory" in result.stderr
    )
    assert f"{root / 'a' / 'up'}: link loop (left out)" in result.stderr
    assert f"{root / 'gone'}: dangling link (left out)" in result.stderr
    assert "Traceback" not in result.stderr


def test_links_inside_the_tree_find_nothing_twice(tree, run):
    root = tree({"real/b/Dockerfile": HEADER.format("b")})
    (root / "alias").symlink_to(root / "real" / "b")
    result = run(root, "list")
    assert result.stdout.split() == ["b"]  # found once, under its own name
    assert result.stderr == ""


def test_fifo_and_device_links_in_a_context_do_not_block(tree, run):
    root = tree({"a/Dockerfile": HEADER.format("a"), "a/data.txt": "1\n"})
    os.mkfifo(root / "a" / "pipe")
    (root / "a" / "zero").symlink_to("/dev/zero")
    before = keys(run, root, "a")
    (root / "a" / "zero").unlink()
    (root / "a" / "zero").symlink_to("/dev/null")
    assert keys(run, root, "a") != before  # a link counts by its target, never its content


def test_dockerignore_and_jetforge_outputs_stay_out_of_the_key(tree, run, jetforge):
    root = tree(
        {
            "a/Dockerfile": HEADER.format("a"),
            "a/.dockerignore": "*.log\nbuild/\n!build/keep.txt\n",
            "a/src.txt": "source\n",
        }
    )
    base = keys(run, root, "a")
    (root / "a" / "run.log").write_text("noise\n")
    (root / "a" / "build").mkdir()
    (root / "a" / "build" / "out.o").write_text("object\n")
    assert keys(run, root, "a") == base  # ignored by .dockerignore
    (root / "a" / "build" / "keep.txt").write_text("kept\n")
    assert keys(run, root, "a") != base  # re-included with '!'
    kept = keys(run, root, "a")
    # jetforge's logs directory inside the context (building from inside the package)
    logs = root / "a" / "logs"
    (logs / "20260101_000000").mkdir(parents=True)
    (logs / "20260101_000000" / "plan.json").write_text("{}")
    assert keys(run, root, "a", "--logs", str(logs)) == kept


def test_an_unreadable_context_file_is_one_line(tree, run, monkeypatch):
    # As root (the CI machine) no mode makes a file unreadable; refuse the read instead.
    root = tree({"a/Dockerfile": HEADER.format("a"), "a/secret.bin": "x"})
    secret = root / "a" / "secret.bin"
    original = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == secret:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = run(root, "build", "--simulate", "a")
    assert result.code == 2, result.stderr
    assert f"{secret}: cannot read a file of the build context" in result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
