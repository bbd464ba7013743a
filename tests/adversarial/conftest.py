"""The adversarial corpus (issue 10): one case per finding, each asserting the exit code and
the one-line message (or the right behaviour) of what a hostile user tries."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``tree({"pkg/Dockerfile": "...", ...})`` writes files (bytes or text) under a fresh
    package directory and returns it."""

    def write(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / "packages"
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        root.mkdir(exist_ok=True)
        return root

    return write


@pytest.fixture
def run(jetforge):  # type: ignore[no-untyped-def]
    """``run(root, *argv)``: jetforge on ``root`` only (no shipped tree), with no engine
    (a test that needs one passes ``JETFORGE_DOCKER`` in ``env``)."""

    def call(root: Path, *argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        base = {"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"}
        return jetforge(*argv, "--package-dirs", str(root), env={**base, **(env or {})})

    return call


def one_line_error(result, code: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    """The command failed with ``code`` and one ``jetforge: error:`` line holding every
    fragment, and no traceback."""
    assert result.code == code, (result.code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("jetforge: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only, as on the CI machine)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def write_config(cli_env: dict[str, str], text: str) -> Path:
    """The user's config file (``XDG_CONFIG_HOME/jetforge/jetforge.toml``) holding ``text``."""
    path = Path(cli_env["XDG_CONFIG_HOME"]) / "jetforge" / "jetforge.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
