"""Real engines and a registry for tests and benchmarks: docker calls that show docker's
own words when they fail, and docker-registry started on a free port."""

from __future__ import annotations

import shlex
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path


def docker(
    *argv: str,
    program: str = "docker",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> str:
    """``docker ARGV``'s stdout. A failure is an AssertionError that shows the command, its
    exit code and docker's stderr (``check=True`` would raise a CalledProcessError, whose
    message shows none of docker's words)."""
    done = subprocess.run(
        [program, *argv], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip() or "(no output)"
        raise AssertionError(f"{shlex.join([program, *argv])} exited {done.returncode}: {said}")
    return done.stdout


@dataclass
class Registry:
    """A real ``docker-registry`` on loopback, with or without htpasswd auth."""

    address: str
    user: str = ""
    password: str = ""


def free_port() -> int:

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_registry(root: Path, *, auth: bool) -> tuple[Registry, subprocess.Popen[bytes]]:
    """Start docker-registry serving from ``root``; wait until it answers."""
    import time
    import urllib.error
    import urllib.request

    port = free_port()
    registry = Registry(f"127.0.0.1:{port}")
    config = [
        "version: 0.1",
        "log: {level: error}",
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}",
        f"http: {{addr: 127.0.0.1:{port}}}",
    ]
    if auth:
        registry.user, registry.password = "jetforge", uuid.uuid4().hex
        line = subprocess.run(
            ["htpasswd", "-Bbn", registry.user, registry.password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (root / "htpasswd").write_text(line + "\n")
        config.append(f"auth: {{htpasswd: {{realm: jetforge, path: {root / 'htpasswd'}}}}}")
    (root / "config.yml").write_text("\n".join(config) + "\n")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{registry.address}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.1)
    return registry, process
