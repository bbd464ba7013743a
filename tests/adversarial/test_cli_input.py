"""Bad command-line input and a hostile environment: one line, the right exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial.conftest import one_line_error

HEADER = "#---\n# name: {}\n{}#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"


def package(name: str, depends: str = "") -> str:
    return HEADER.format(name, f"# depends: [{depends}]\n" if depends else "")


@pytest.fixture
def small(tree) -> Path:  # type: ignore[no-untyped-def]
    return tree({"a/Dockerfile": package("a")})


def test_non_utf8_config_file_is_one_line(jetforge, tmp_path):
    (tmp_path / "jetforge").mkdir()
    (tmp_path / "jetforge" / "jetforge.toml").write_bytes(b'engine = "dock\xff"\n')
    result = jetforge("list", env={"XDG_CONFIG_HOME": str(tmp_path)})
    one_line_error(result, 2, "jetforge.toml: not UTF-8 text (byte 14)")


def test_base_image_in_build_args_is_refused(run, small):
    result = run(small, "build", "--simulate", "--build-args", "BASE_IMAGE=debian:12", "a")
    one_line_error(result, 2, "--build-args: BASE_IMAGE is set by jetforge", "--base")


def test_secret_looking_build_args_are_warned_about(run, small):
    result = run(small, "build", "--simulate", "--build-args", "HF_TOKEN=abc,MODE=fast", "a")
    assert result.code == 0
    warnings = [line for line in result.stderr.splitlines() if "looks like a secret" in line]
    assert len(warnings) == 1
    assert "HF_TOKEN" in warnings[0]
    assert "--secret" in warnings[0]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("a..b", "'a..b' is not a valid image name"),
        ("a-", "'a-' is not a valid image name"),
        ("Upper", "'Upper' is not a valid image name"),
        ("x:bad tag", "'bad tag' is not a valid tag"),
    ],
)
def test_names_the_engine_would_refuse_fail_before_anything_runs(run, small, name, fragment):
    result = run(small, "build", "--simulate", "--name", name, "a")
    one_line_error(result, 2, "--name: ", fragment)


def test_a_variant_whose_image_name_engines_refuse(run, tree):
    root = tree({"a..b/Dockerfile": package("a..b")})
    result = run(root, "build", "--simulate", "a..b")
    one_line_error(result, 2, "the image of a..b: 'a..b' is not a valid image name")


def test_a_chain_1200_deep_plans(run, tree):
    files = {"p0000/Dockerfile": package("p0000")}
    files.update(
        {f"p{i:04d}/Dockerfile": package(f"p{i:04d}", f"p{i - 1:04d}") for i in range(1, 1200)}
    )
    root = tree(files)
    result = run(root, "build", "--simulate", "--json", "--target", "x86_64-cu128", "p1199")
    assert result.code == 0, result.stderr[-500:]
    assert len(json.loads(result.stdout)["chain"]) == 1200


ENGINE = {"JETFORGE_DOCKER": "docker"}


@pytest.mark.engine
def test_logs_that_is_a_file_is_one_line(run, small, tmp_path, docker_engine):
    existing = tmp_path / "afile"
    existing.write_text("")
    result = run(small, "build", "--logs", str(existing), "--base", "debian:12", "a", env=ENGINE)
    one_line_error(result, 2, f"--logs: cannot use {existing}")


@pytest.mark.engine
def test_logs_on_a_read_only_filesystem_is_one_line(run, small, tiny_filesystem, docker_engine):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_filesystem)], check=True)
    logs = tiny_filesystem / "logs"
    result = run(small, "build", "--logs", str(logs), "--base", "debian:12", "a", env=ENGINE)
    one_line_error(result, 2, f"--logs: cannot use {logs}", "Read-only file system")


@pytest.mark.engine
def test_logs_on_a_full_filesystem_is_one_line(run, small, tiny_filesystem, docker_engine):
    (tiny_filesystem / "filler").write_bytes(b"x" * (60 * 1024))
    with pytest.raises(OSError):  # noqa: PT011 - the filesystem is full, as intended
        (tiny_filesystem / "more").write_bytes(b"x" * 8 * 1024)
    logs = str(tiny_filesystem / "logs")
    result = run(small, "build", "--logs", logs, "--base", "debian:12", "a", env=ENGINE)
    one_line_error(result, 1, str(tiny_filesystem), "No space left on device")


def test_output_into_a_closed_pipe_is_quiet(tree):
    files = {f"p{i:04d}/Dockerfile": package(f"p{i:04d}") for i in range(400)}
    root = tree(files)
    env = {**os.environ, "JETFORGE_SHIPPED_PACKAGES": ""}
    reader = subprocess.Popen(
        ["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    done = subprocess.run(
        [sys.executable, "-m", "jetforge", "show", "--json", "--package-dirs", str(root)],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    reader.stdin.close()  # type: ignore[union-attr]
    reader.wait()
    assert done.returncode == 1
    assert done.stderr == ""


def test_relative_package_dirs_reach_the_engine_as_absolute_paths(jetforge, tree, monkeypatch):
    root = tree({"a/Dockerfile": package("a"), "a/test.sh": "true\n"})
    (root / "a" / "Dockerfile").write_text(
        "#---\n# name: a\n# test: test.sh\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
    )
    monkeypatch.chdir(root.parent)
    env = {"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"}
    result = jetforge("build", "--simulate", "--json", "--package-dirs", root.name, "a", env=env)
    assert result.code == 0, result.stderr
    (stage,) = json.loads(result.stdout)["stages"][-1:]
    assert Path(stage["context"]).is_absolute()
    assert Path(stage["context"]) == root / "a"
    assert Path(stage["dockerfile"]).is_absolute()


@pytest.mark.engine
def test_log_directories_are_private(run, small, tmp_path, docker_engine):
    logs = tmp_path / "logs"
    result = run(small, "build", "--logs", str(logs), "--base", "debian:12", "a", env=ENGINE)
    assert result.code == 0, result.stderr
    assert logs.stat().st_mode & 0o077 == 0
