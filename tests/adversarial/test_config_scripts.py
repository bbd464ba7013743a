"""Config scripts and the processes around them (the hardening issue's scripts part): what
a script reads is what its remembered answer depends on, a failure is remembered like any
other answer, the network is not there, nothing a scan starts outlives it, one script's
damage stays its own; and results never share stdout with diagnostics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
