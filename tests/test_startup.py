"""Start-up: read-only commands import neither the engine, the registry client, the
package cache nor the progress display."""

from __future__ import annotations

import subprocess
import sys

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
