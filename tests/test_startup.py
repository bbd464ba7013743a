"""Start-up: read-only commands import neither the engine, the registry client, the
package cache nor the progress display."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

HEAVY = (
    "jetforge.engine",
    "jetforge.host.registry",
    "jetforge.cache",
    "jetforge.cli.progress",
    "rich",
)
RUN_IN_PROCESS = """
import io, sys
from jetforge.cli.main import main
code = main(sys.argv[1:], stdout=io.StringIO(), stderr=io.StringIO())
print(code, " ".join(sorted(sys.modules)))
"""


def modules_after(argv: list[str], env: dict[str, str]) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_IN_PROCESS, *argv],
        capture_output=True,
        text=True,
        env={**env, "JETFORGE_SHIPPED_PACKAGES": ""},
        timeout=120,
        check=True,
    )
    code, _, names = done.stdout.partition(" ")
    return int(code), set(names.split())


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["list"], ["show"], ["list", "--no-index"], ["graph", "bundle"]],
    ids=["help", "list", "show", "list-cold", "graph"],
)
def test_a_read_only_command_imports_nothing_heavy(argv, cli_env):
    tree = FIXTURES / "trees" / "golden"
    given = argv if argv == ["--help"] else [*argv, "--package-dirs", str(tree)]
    code, modules = modules_after(given, cli_env)
    assert code == 0
    assert sorted(name for name in modules if name.startswith(HEAVY)) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list", "--package-dirs", str(FIXTURES / "trees" / "golden")],
        ["list", "--no-index", "--package-dirs", str(FIXTURES / "trees" / "golden")],
        ["build", "--simulate", "--package-dirs", str(FIXTURES / "trees" / "golden"), "bundle"],
        ["show", "accel", "--package-dirs", str(FIXTURES / "trees" / "golden")],
    ],
)
def test_a_read_only_command_leaves_no_process_running(argv, cli_env, tmp_path):
    """Nothing jetforge starts (its config-script worker, a runner, anything a script
    starts) outlives a read-only command: no process carries the command's mark after it."""
    mark = f"jftest-{uuid.uuid4().hex}"
    env = {**cli_env, "JETFORGE_TEST_MARK": mark, "JETFORGE_DOCKER": "/nonexistent/docker"}
    done = subprocess.run(
        [sys.executable, "-m", "jetforge", *argv], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert marked_processes(mark) == []


def marked_processes(mark: str) -> list[str]:
    """The processes whose environment holds ``mark`` (their command lines)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if mark.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found
