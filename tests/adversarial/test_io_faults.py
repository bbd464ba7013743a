"""A hostile environment around jetforge's own input and output: closed or full standard
streams, a deleted working directory, a cache directory that cannot be written, values
that look like options, and special files where jetforge expects a regular one. Each
case runs jetforge as a real process where the property needs it (descriptors, the
working directory) and asserts one error line and the exit code, or that the command
still works."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error
from tests.conftest import CliResult

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"


@pytest.fixture
def small(tree) -> Path:  # type: ignore[no-untyped-def]
    return tree({"a/Dockerfile": HEADER.format("a"), "b/Dockerfile": HEADER.format("b")})


@pytest.fixture
def process(cli_env):  # type: ignore[no-untyped-def]
    """``process(*argv, shell="", cwd=None, stdout=...)``: jetforge in a process of its own,
    started by bash after ``shell`` (redirections such as ``exec >&-``)."""

    def call(  # type: ignore[no-untyped-def]
        *argv: str,
        shell: str = "",
        cwd: Path | None = None,
        stdout=subprocess.PIPE,
        env: dict[str, str] | None = None,
    ) -> CliResult:
        command = " ".join(["exec", sys.executable, "-m", "jetforge", *map(_quote, argv)])
        done = subprocess.run(
            ["bash", "-c", f"{shell}\n{command}"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**cli_env, "JETFORGE_SHIPPED_PACKAGES": "", **(env or {})},
            timeout=120,
            check=False,
        )
        return CliResult(done.returncode, done.stdout or "", done.stderr)

    return call


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


# --- standard streams --------------------------------------------------------------------


def test_results_into_a_closed_stdout_are_one_line(process, small):
    result = process("list", "--package-dirs", str(small), shell="exec >&-")
    one_line_error(result, 1, "cannot write the results to standard output: it is closed")


def test_results_onto_a_full_device_are_one_line(process, small):
    with Path("/dev/full").open("w") as full:
        result = process("list", "--package-dirs", str(small), stdout=full)
    one_line_error(result, 1, "cannot write the results to standard output", "No space left")


def test_help_onto_a_full_device_is_one_line(process):
    with Path("/dev/full").open("w") as full:
        result = process("build", "--help", stdout=full)
    one_line_error(result, 1, "cannot write the results to standard output", "No space left")


def test_a_command_without_results_runs_with_stdout_closed(process, tmp_path):
    result = process("cache", "stop", shell="exec >&-")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_diagnostics_onto_a_full_device_do_not_change_the_results(process, tree):
    broken = tree({"a/Dockerfile": HEADER.format("a"), "bad/Dockerfile": "#---\n# nme: x\n#---\n"})
    result = process("list", "--package-dirs", str(broken), shell="exec 2>/dev/full")
    assert result.code == 0
    assert result.stdout == "a\n"


def test_a_closed_standard_descriptor_is_not_reused_by_a_file_jetforge_opens(tmp_path):
    # Python makes sys.stdout None; without the reservation the next open gets number 1.
    script = (
        "from jetforge.cli.streams import reserve_standard_descriptors\n"
        "reserve_standard_descriptors()\n"
        "import os, sys\n"
        f"fd = os.open({str(tmp_path / 'f')!r}, os.O_WRONLY | os.O_CREAT)\n"
        "sys.stderr.write(str(fd))\n"
    )
    done = subprocess.run(
        ["bash", "-c", f'exec >&-; exec {sys.executable} -c "$0"', script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stderr) > 2


# --- the working directory -------------------------------------------------------------


@pytest.mark.parametrize("argv", [["list"], ["build", "--simulate", "a"]], ids=["list", "sim"])
def test_a_deleted_working_directory_is_one_line(process, small, tmp_path, argv):
    gone = tmp_path / "gone"
    gone.mkdir()
    shell = f"cd {gone} && rmdir {gone}"
    result = process(*argv, "--package-dirs", str(small), shell=shell)
    one_line_error(result, 2, "cannot use the working directory (it was deleted)", "cd to")


# --- the cache directory -----------------------------------------------------------------


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


@pytest.fixture(params=["read-only", "full"])
def unwritable_cache(request, tiny_filesystem: Path) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    """A cache home that cannot be written, and the reason jetforge gives."""
    if request.param == "full":
        (tiny_filesystem / "jetforge").mkdir()
        (tiny_filesystem / "filler").write_bytes(b"x" * 64 * 1024)
        return tiny_filesystem, "No space left on device"
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_filesystem)], check=True)
    return tiny_filesystem, "Read-only file system"


CA = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}  # a trust context to write


@pytest.mark.parametrize(
    "argv",
    [["list"], ["build", "--simulate", "a"], ["platform"], ["cache", "status"]],
    ids=["list", "simulate", "platform", "cache-status"],
)
def test_reading_commands_work_with_an_unwritable_cache(jetforge, small, unwritable_cache, argv):
    cache, why = unwritable_cache
    packages = ["--package-dirs", str(small)] if argv[0] in ("list", "build") else []
    env = {"XDG_CACHE_HOME": str(cache), "JETFORGE_SHIPPED_PACKAGES": "", **CA}
    result = jetforge(*argv, *packages, env=env)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cache directory" in line]
    assert len(warnings) <= 1, result.stderr
    assert all(why in line for line in warnings)


def test_a_build_with_an_unwritable_cache_is_one_line(run, small, unwritable_cache):
    cache, why = unwritable_cache
    result = run(small, "build", "a", env={"XDG_CACHE_HOME": str(cache)})
    code = 1 if why.startswith("No space") else 2
    one_line_error(result, code, f"cannot write the cache directory {cache}/jetforge ({why})")


def test_cache_serve_with_an_unwritable_cache_is_one_line(jetforge, unwritable_cache):
    cache, why = unwritable_cache
    result = jetforge("cache", "serve", "--background", env={"XDG_CACHE_HOME": str(cache)})
    code = 1 if why.startswith("No space") else 2
    one_line_error(result, code, "cannot write the cache directory", "XDG_CACHE_HOME")


def test_a_temporary_cache_directory_is_removed(run, small, unwritable_cache, tmp_path):
    cache, _ = unwritable_cache
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"XDG_CACHE_HOME": str(cache), "TMPDIR": str(scratch), **CA}
    result = run(small, "build", "--simulate", "a", env=env)
    assert result.code == 0, result.stderr
    assert os.listdir(scratch) == []
