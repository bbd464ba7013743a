"""Config scripts and the processes around them (the hardening issue's scripts part): what
a script reads is what its remembered answer depends on, a failure is remembered like any
other answer, the network is not there, nothing a scan starts outlives it, one script's
damage stays its own; and results never share stdout with diagnostics."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error
from tests.conftest import CliResult

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
NO_ENGINE = {"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"}


def jetforge_process(root: Path, *argv: str, shell: str = '"$@"') -> list[str]:
    """The argv of ``python -m jetforge ARGV --package-dirs ROOT`` as its own process,
    through ``sh -c SHELL`` (for redirections)."""
    command = [sys.executable, "-m", "jetforge", *argv, "--package-dirs", str(root)]
    return ["sh", "-c", f"exec {shell}", "sh", *command]


def test_warnings_never_reach_stdout_when_stderr_is_closed(tree, cli_env):
    root = tree(
        {
            "bad/Dockerfile": "#---\n# name: bad\n# depnds: x\n#---\nFROM x\n",
            "good/Dockerfile": HEADER.format("good"),
        }
    )
    env = {**cli_env, **NO_ENGINE}
    argv = jetforge_process(root, "list", shell='"$@" 2>&-')
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0
    assert done.stdout == "good\n"  # the warning about 'bad' went nowhere, not here


def _alias_bomb(indent: str) -> str:
    """Billion laughs: nine levels of nine aliases each, a few hundred bytes of YAML that
    expand to 9**9 strings wherever the value is copied or printed."""
    lines = [f'{indent}A: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for before, level in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{indent}{level.upper()}: &{level} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _limited_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a regression fails, not the host


@pytest.mark.parametrize(
    ("files", "argv", "where"),
    [
        (
            {"bomb/package.yaml": "build_args:\n" + _alias_bomb("  ")},
            (),
            "bomb/package.yaml:7:",
        ),
        (
            {"bomb/Dockerfile": "#---\n# build_args:\n" + _alias_bomb("#   ") + "#---\nFROM x\n"},
            (),
            "bomb/Dockerfile:8:",
        ),
        (
            {"bomb/config.yaml": "build_args:\n" + _alias_bomb("  ")},
            ("--package-format", "jc"),
            "bomb/config.yaml:7:",
        ),
    ],
    ids=["package.yaml", "header", "jc-config.yaml"],
)
def test_a_yaml_alias_bomb_is_one_line_quickly_in_bounded_memory(tree, cli_env, files, argv, where):
    root = tree({"bomb/Dockerfile": HEADER.format("bomb"), **files})
    env = {**cli_env, **NO_ENGINE}
    command = jetforge_process(root, "build", "--simulate", "bomb", *argv)
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=_limited_memory,
    )
    assert time.monotonic() - started < 15
    result = CliResult(done.returncode, done.stdout, done.stderr)
    one_line_error(result, 2, where, "YAML aliases expand this to over 1000000 values")
