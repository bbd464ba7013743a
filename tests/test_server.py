"""The command server: a served command prints, exits and sees what a process of its own
would; commands that build are never served; a changed jetforge, an idle timeout, a dead
server and Ctrl-C are each handled. Real processes and sockets throughout."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jetforge
from jetforge.server_client import server_directory, server_path, stop_server

HEADER = "#---\n# name: {name}\n# depends: [{depends}]\n#---\nFROM scratch\n"


class Served:
    """Runs ``python -m jetforge`` with a private server directory."""

    def __init__(self, directory: str, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = env
        found = server_path(env)
        assert found is not None
        self.path = found[0]

    def run(
        self, *argv: str, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jetforge", *argv],
            env={**self.env, **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def wait_until_up(self) -> int:
        """The server's process id, once its socket is there."""
        for _ in range(200):
            if Path(self.path + ".sock").exists():
                return int(Path(self.path + ".lock").read_text())
            time.sleep(0.05)
        raise AssertionError(f"no server came up; log: {self.log()}")

    def log(self) -> str:
        log = Path(self.path + ".log")
        return log.read_text() if log.exists() else ""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int) -> None:
    for _ in range(200):
        if not _running(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"server {pid} is still running")


@pytest.fixture
def served(cli_env: dict[str, str]) -> Iterator[Served]:
    # A short path: a Unix socket's path has at most 107 bytes.
    directory = tempfile.mkdtemp(prefix="jfs-", dir="/tmp")
    os.chmod(directory, 0o700)
    env = {**cli_env, "JETFORGE_SERVER_DIR": directory, "JETFORGE_NO_SERVER": ""}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["JETFORGE_SHIPPED_PACKAGES"] = ""
    runner = Served(directory, env)
    yield runner
    stop_server(runner.path)
    for _ in range(100):
        if not Path(runner.path + ".sock").exists():
            break
        time.sleep(0.05)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def packages(tmp_path: Path) -> Path:
    root = tmp_path / "packages"
    for name, depends in (("base", ""), ("app", "base")):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(HEADER.format(name=name, depends=depends))
    (root / "broken").mkdir()
    (root / "broken" / "Dockerfile").write_text("#---\n# name: [unclosed\n#---\nFROM scratch\n")
    return root


def test_a_served_command_prints_and_exits_as_its_own_process_would(served, packages):
    alone = served.run("list", "--package-dirs", str(packages), JETFORGE_NO_SERVER="1")
    first = served.run("list", "--package-dirs", str(packages))  # starts the server
    served.wait_until_up()
    second = served.run("list", "--package-dirs", str(packages))
    assert alone.returncode == first.returncode == second.returncode == 0
    assert alone.stdout == first.stdout == second.stdout == "app\nbase\n"
    assert alone.stderr == second.stderr
    assert "broken/Dockerfile" in second.stderr
    assert "served: list: exit 0" in served.log()
    strict = served.run("list", "--strict", "--package-dirs", str(packages))
    assert strict.returncode == 2
    assert strict.stderr.splitlines()[-1] == "jetforge: error: 1 package definition(s) have errors"
    unknown = served.run("build", "--simulate", "--package-dirs", str(packages), "nosuch")
    assert unknown.returncode == 2
    assert "unknown package 'nosuch'" in unknown.stderr
    assert "served: build: exit 2" in served.log()


def test_a_served_command_sees_every_change_of_the_tree(served, packages):
    argv = ("list", "--package-dirs", str(packages))
    served.run(*argv)
    served.wait_until_up()
    for _ in range(2):  # the index settles, is kept and read ahead by the server
        time.sleep(1.1)
        assert served.run(*argv).stdout == "app\nbase\n"
    (packages / "extra").mkdir()
    (packages / "extra" / "Dockerfile").write_text(HEADER.format(name="extra", depends=""))
    assert served.run(*argv).stdout == "app\nbase\nextra\n"
    time.sleep(1.1)
    assert served.run(*argv).stdout == "app\nbase\nextra\n"
    (packages / "extra" / "Dockerfile").write_text(HEADER.format(name="extra2", depends=""))
    assert served.run(*argv).stdout == "app\nbase\nextra2\n"
    time.sleep(1.1)
    shutil.rmtree(packages / "extra")
    assert served.run(*argv).stdout == "app\nbase\n"
    assert served.log().count("served: list") >= 6


def test_a_served_command_runs_in_the_clients_directory_and_environment(served, packages):
    served.run("platform")
    served.wait_until_up()
    relative = served.run("list", "--package-dirs", "packages", cwd=packages.parent)
    assert relative.stdout == "app\nbase\n", relative.stderr
    for version in ("12.4", "12.6"):
        shown = served.run("platform", "--json", CUDA_VERSION=version)
        assert json.loads(shown.stdout)["cuda_version"] == version
    assert served.log().count("served: platform: exit 0") == 2


def test_a_command_that_builds_is_never_served(served, packages):
    served.run("platform")
    served.wait_until_up()
    build = served.run("build", "--package-dirs", str(packages), "app", JETFORGE_DOCKER="/none")
    assert build.returncode == 2
    assert "served: build" not in served.log()
    # The words look read-only, the parsed arguments are not: run by the client itself.
    disguised = served.run("build", "--package-dirs", str(packages), "--", "--simulate")
    assert disguised.returncode == 2
    assert "bad requirement '--simulate'" in disguised.stderr
    assert "not served: build" in served.log()


def test_a_changed_jetforge_ends_its_server(served, packages, tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(Path(jetforge.__file__).parent, copy / "jetforge")
    served.env["PYTHONPATH"] = str(copy)  # a jetforge of its own, to change
    probe = (
        "import os; from jetforge.server_client import server_path as p; print(p(os.environ)[0])"
    )
    served.path = subprocess.run(
        [sys.executable, "-c", probe], env=served.env, capture_output=True, text=True, check=True
    ).stdout.strip()
    served.run("platform")
    old = served.wait_until_up()
    (copy / "jetforge" / "__init__.py").write_text(
        (copy / "jetforge" / "__init__.py").read_text() + "# changed\n"
    )
    answered = served.run("list", "--package-dirs", str(packages))
    assert answered.stdout == "app\nbase\n"
    _wait_gone(old)
    assert "jetforge or its dependencies changed; exiting" in served.log()
    new = served.wait_until_up()  # the command that noticed started a new one
    assert new != old
    assert served.run("list", "--package-dirs", str(packages)).stdout == "app\nbase\n"


def test_an_idle_server_exits(served):
    served.run("platform", JETFORGE_SERVER_IDLE="0.5")
    pid = served.wait_until_up()
    _wait_gone(pid)
    assert not Path(served.path + ".sock").exists()
    assert "idle; exiting" in served.log()


def test_a_dead_servers_socket_is_replaced(served, packages):
    served.run("platform")
    pid = served.wait_until_up()
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    assert Path(served.path + ".sock").exists()  # left behind
    answered = served.run("list", "--package-dirs", str(packages))
    assert answered.stdout == "app\nbase\n"
    for _ in range(200):
        if Path(served.path + ".lock").read_text().strip() != str(pid):
            break
        time.sleep(0.05)
    new = served.wait_until_up()
    assert new != pid
    assert served.run("list", "--package-dirs", str(packages)).stdout == "app\nbase\n"


def test_concurrent_served_commands_each_get_their_own_answer(served, packages):
    served.run("platform")
    served.wait_until_up()
    argv = [sys.executable, "-m", "jetforge", "platform", "--json"]
    processes = [
        subprocess.Popen(
            argv,
            env={**served.env, "CUDA_VERSION": f"12.{minor}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for minor in range(8)
    ]
    for minor, process in enumerate(processes):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert json.loads(out)["cuda_version"] == f"12.{minor}"


def _slow_tree(root: Path) -> Path:
    """A package whose config script computes for a minute (sleeps return at once)."""
    (root / "sleeper").mkdir(parents=True)
    (root / "sleeper" / "Dockerfile").write_text("#---\n# name: sleeper\n#---\nFROM scratch\n")
    (root / "sleeper" / "config.py").write_text(
        "import time\n\ndef configure(package, platform):\n"
        "    end = time.time() + 60\n    while time.time() < end:\n        pass\n    return []\n"
    )
    return root


@contextlib.contextmanager
def _slow_command(
    served: Served, root: Path, *wrapper: str, job: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """A served ``list`` busy in a config script; ``job``: in a process group of its own
    under this one, as a shell starts a job (where Ctrl-Z may stop it: a group with no
    parent in the session outside it, an orphaned one, is never stopped)."""
    served.run("platform")
    served.wait_until_up()
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "jetforge", "list", "--package-dirs", str(root)],
        env=served.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=os.setpgrp if job else None,
    )
    try:
        time.sleep(3)  # the served process runs the script by now
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_ctrl_c_reaches_the_served_command(served, tmp_path):
    with _slow_command(served, _slow_tree(tmp_path / "slow")) as process:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err


def _command_processes(server: int) -> list[int]:
    """The processes the server forked (the commands it runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == server:
                found.append(int(entry.name))
    return found


def _state(pid: int) -> str:
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]


def test_ctrl_z_stops_and_continuing_continues_the_served_command(served, tmp_path):
    with _slow_command(served, _slow_tree(tmp_path / "slow"), job=True) as process:
        (command,) = _command_processes(int(Path(served.path + ".lock").read_text()))
        process.send_signal(signal.SIGTSTP)
        time.sleep(0.5)
        assert (_state(command), _state(process.pid)) == ("T", "T")
        process.send_signal(signal.SIGCONT)
        time.sleep(0.5)
        assert _state(command) != "T"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err


def test_a_hang_up_the_client_ignores_is_not_forwarded(served, tmp_path):
    with _slow_command(served, _slow_tree(tmp_path / "slow"), "nohup") as process:
        (command,) = _command_processes(int(Path(served.path + ".lock").read_text()))
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert process.poll() is None
        assert _state(command) in ("R", "S")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode == 130


def test_a_killed_client_ends_its_command(served, tmp_path):
    with _slow_command(served, _slow_tree(tmp_path / "slow")) as process:
        process.kill()
    for _ in range(200):
        if "served: list: exit 143" in served.log():
            break
        time.sleep(0.05)
    assert "served: list: exit 143" in served.log()


def test_a_closed_standard_stream_runs_the_command_itself(served, packages):
    served.run("platform")
    served.wait_until_up()
    script = f"exec >&-; exec {sys.executable} -m jetforge list --package-dirs {packages}"
    closed = subprocess.run(
        ["bash", "-c", script], env=served.env, capture_output=True, text=True, timeout=60
    )
    alone = subprocess.run(
        ["bash", "-c", script],
        env={**served.env, "JETFORGE_NO_SERVER": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert closed.returncode == alone.returncode
    assert "served: list" not in served.log()


def test_a_stopped_servers_old_process_id_is_not_signalled(served):
    served.run("platform", JETFORGE_SERVER_IDLE="0.5")
    pid = served.wait_until_up()
    _wait_gone(pid)
    Path(served.path + ".lock").write_text(f"{os.getpid()}\n")  # as if the id were reused
    assert stop_server(served.path) is False


def test_an_open_or_foreign_directory_is_not_used(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert server_directory({"JETFORGE_SERVER_DIR": str(shared)}) is None
    private = tmp_path / "private"
    assert server_directory({"JETFORGE_SERVER_DIR": str(private)}) == str(private)
    assert private.stat().st_mode & 0o777 == 0o700
