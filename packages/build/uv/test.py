"""uv runs, installs into the chain's environment, and refuses to move a pinned package.

Runs offline: two tiny wheels are written here and served from a local directory; the
pin comes from a private constraints file given to uv through UV_CONSTRAINT, as the
`python` package does for the chain's own file.
"""

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def write_wheel(directory: Path, version: str) -> None:
    """A minimal pure-Python wheel of the distribution ``jetforge-uv-probe``."""
    name = "jetforge_uv_probe"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: jetforge-uv-probe\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: jetforge-test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


def uv(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["uv", *args], env=env, capture_output=True, text=True, check=False)
    print(f"$ uv {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done


version = subprocess.run(["uv", "--version"], capture_output=True, text=True, check=True)
print(version.stdout.strip())
assert os.environ.get("UV_PYTHON") == "/opt/venv/bin/python", "UV_PYTHON is not the venv"
with tempfile.TemporaryDirectory() as work:
    wheels = Path(work)
    for number in ("1.0", "2.0"):
        write_wheel(wheels, number)
    pins = wheels / "constraints.txt"
    pins.write_text("jetforge-uv-probe==1.0\n")
    env = {**os.environ, "UV_CONSTRAINT": str(pins)}
    local = ("--offline", "--no-index", "--find-links", str(wheels))
    assert uv(env, "pip", "install", *local, "jetforge-uv-probe").returncode == 0
    check = [sys.executable, "-c", "import jetforge_uv_probe as p; print(p.VERSION)"]
    assert subprocess.run(check, capture_output=True, text=True).stdout.strip() == "1.0"
    moved = uv(env, "pip", "install", *local, "jetforge-uv-probe==2.0")
    assert moved.returncode != 0, "uv moved a pinned package"
print("uv ok")
