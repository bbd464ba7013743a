"""Real containers through ``jetforge run``: /data, exit codes, pass-through, packages."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.engine

IMAGE = "debian:12"


def jetforge_process(cli_env, *argv, stdin=""):
    """``python -m jetforge`` as a user would run it, stdin a pipe, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "jetforge", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env={**cli_env, "DISPLAY": ""},
        timeout=120,
        check=False,
    )


def test_data_dir_is_mounted_at_data(docker_engine, cli_env, tmp_path):
    data = tmp_path / "data" / "jetforge" / "data"
    data.mkdir(parents=True)
    (data / "hello.txt").write_text("written on the host\n")
    done = jetforge_process(cli_env, "run", IMAGE, "cat", "/data/hello.txt")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "written on the host\n"
    written = jetforge_process(cli_env, "run", IMAGE, "sh", "-c", "echo back > /data/back.txt")
    assert written.returncode == 0, written.stderr
    assert (data / "back.txt").read_text() == "back\n"


def test_exit_code_of_the_container_is_returned(docker_engine, jetforge, capfd):
    result = jetforge("run", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert result.code == 7
    captured = capfd.readouterr()
    assert captured.out == "out\n"
    assert captured.err.endswith("err\n")


def test_user_options_pass_through_and_rm_leaves_nothing(docker_engine, cli_env):
    name = f"jftest-run-{uuid.uuid4().hex[:8]}"
    done = jetforge_process(
        cli_env,
        "run",
        "-i",
        "--name",
        name,
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        IMAGE,
        "sh",
        "-c",
        'echo "$GREETING $(pwd) $(cat)"',
        stdin="piped",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi /tmp piped\n"
    left = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"name={name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""


def test_localtime_and_host_network(docker_engine, cli_env):
    done = jetforge_process(
        cli_env, "run", IMAGE, "sh", "-c", "test -f /etc/localtime && cat /proc/net/dev"
    )
    assert done.returncode == 0, done.stderr
    # The host's interfaces, not a bridge's lone eth0.
    host = subprocess.run(["cat", "/proc/net/dev"], capture_output=True, text=True, check=True)
    names = {line.split(":")[0].strip() for line in host.stdout.splitlines()[2:]}
    assert names == {line.split(":")[0].strip() for line in done.stdout.splitlines()[2:]}


def test_package_name_runs_the_image_autotag_finds(jetforge, cli_env, image_name, tmp_path):
    # A package of its own, so that no other test's image can be the newest match.
    package = f"jfrun-{uuid.uuid4().hex[:8]}"
    tree = tmp_path / "packages"
    (tree / package).mkdir(parents=True)
    (tree / package / "Dockerfile").write_text(
        f"#---\n# name: {package}\n#---\n"
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo built > /stage.txt\n"
    )
    built = jetforge(
        "build",
        "--package-dirs",
        str(tree),
        "--distro",
        "debian:12",
        "--base",
        IMAGE,
        "--name",
        image_name,
        "--logs",
        str(tmp_path / "logs"),
        package,
    )
    assert built.code == 0, built.stderr
    image = built.stdout.strip()
    planned = jetforge("run", "--dry-run", "--package-dirs", str(tree), package, "true")
    assert planned.code == 0, planned.stderr
    assert planned.stdout.split()[-2:] == [image, "true"]
    done = jetforge_process(
        cli_env, "run", "--package-dirs", str(tree), package, "cat", "/stage.txt"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "built\n"


def test_stopped_daemon_is_exit_2_with_how_to_start_it(docker_engine, jetforge):
    result = jetforge(
        "run", "--dry-run", IMAGE, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    assert result.code == 2
    assert "docker daemon is not running" in result.stderr
    assert "start it" in result.stderr


def test_engine_info_of_the_real_daemon(docker_engine):
    from jetforge.engine.table import connect_engine

    engine = connect_engine("docker", {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    info = engine.info()
    raw = json.loads(
        subprocess.run(
            ["docker", "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert info.version == raw["ServerVersion"]
    assert info.data_root == raw["DockerRootDir"]
    assert "runc" in info.runtimes
