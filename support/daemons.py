"""Docker daemons of their own beside the system one, for the build farm's tests and
benchmark: each with its own data root, exec root, pid file, socket and bridge.

Each gets a bridge of its own (``jfbr-…``), never ``--bridge=none``: a dockerd started
with that deletes the host's ``docker0``, and the system daemon's containers on the
default network could then not start."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Daemon:
    """A Docker daemon of its own."""

    directory: Path
    process: subprocess.Popen[bytes]
    bridge: str

    @property
    def endpoint(self) -> str:
        return f"unix://{self.directory}/sock"

    def docker(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``docker ARGV`` on this daemon, whatever its exit code (stdout and stderr kept)."""
        env = {**os.environ, "DOCKER_HOST": self.endpoint}
        return subprocess.run(
            ["docker", *argv], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def kill(self) -> None:
        """Kill the daemon and every process it started (its containerd, shims)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def start_daemon(*, load_base: bool = True) -> Daemon:
    """A dockerd with a short private directory (socket paths have at most 107 bytes),
    given the system daemon's debian:12 by ``docker save | docker load`` (``load_base``)."""
    directory = Path(tempfile.mkdtemp(prefix="jfd-", dir="/tmp"))
    bridge = f"jfbr-{directory.name[4:12]}"
    subnet = 1 + int.from_bytes(os.urandom(1), "big") % 250
    for command in (
        ["ip", "link", "add", "name", bridge, "type", "bridge"],
        ["ip", "addr", "add", f"10.213.{subnet}.1/24", "dev", bridge],
        ["ip", "link", "set", bridge, "up"],
    ):
        subprocess.run(command, capture_output=True, check=True)
    argv = [
        "dockerd",
        "--data-root", f"{directory}/data",
        "--exec-root", f"{directory}/exec",
        "--pidfile", f"{directory}/pid",
        "-H", f"unix://{directory}/sock",
        f"--bridge={bridge}", "--iptables=false", "--ip6tables=false",
    ]  # fmt: skip
    with (directory / "log").open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    daemon = Daemon(directory, process, bridge)
    for _ in range(120):
        if daemon.docker("version").returncode == 0:
            break
        time.sleep(0.25)
    else:
        daemon.kill()
        raise AssertionError(f"second dockerd did not start: {(directory / 'log').read_text()}")
    if not load_base:
        return daemon
    env = {**os.environ, "DOCKER_HOST": daemon.endpoint}
    with subprocess.Popen(
        ["docker", "save", "debian:12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as saved:
        loaded = subprocess.run(
            ["docker", "load", "-q"], stdin=saved.stdout, env=env, capture_output=True, check=False
        )
        said = saved.stderr.read() if saved.stderr else b""
    if loaded.returncode != 0 or saved.returncode != 0:
        daemon.kill()
        raise AssertionError(
            "docker save debian:12 | docker load into the second dockerd failed: "
            f"{(said + loaded.stderr).decode(errors='replace').strip()}"
        )
    return daemon


def stop_daemon(daemon: Daemon) -> None:
    if daemon.process.poll() is None:
        os.killpg(daemon.process.pid, signal.SIGTERM)
        try:
            daemon.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.process.pid, signal.SIGKILL)  # a containerd left behind
    # containerd's shims leave its process group: any process naming the directory goes
    subprocess.run(["pkill", "-KILL", "-f", str(daemon.directory)], capture_output=True)
    for mounted in ("exec/netns/default", "data", "exec"):  # what dockerd leaves mounted
        subprocess.run(["umount", "-R", "-l", str(daemon.directory / mounted)], capture_output=True)
    shutil.rmtree(daemon.directory, ignore_errors=True)
    subprocess.run(["ip", "link", "del", daemon.bridge], capture_output=True, check=False)


def write_farm_config(config_home: Path, registry: str, daemons: list[Daemon], *extra: str) -> None:
    """``config_home/jetforge/jetforge.toml`` (``XDG_CONFIG_HOME``) naming the registry
    ``registry`` (``host:port``) and ``daemons`` as the workers ``d2``, ``d3``, …;
    ``extra``: more ``[[workers]]`` tables."""
    config = config_home / "jetforge"
    config.mkdir(parents=True, exist_ok=True)
    workers = [
        f'[[workers]]\nname = "d{n}"\nendpoint = "{d.endpoint}"\n'
        for n, d in enumerate(daemons, start=2)
    ]
    text = "\n".join([f'registries = ["{registry}/farm"]\n', *workers, *extra])
    (config / "jetforge.toml").write_text(text)
