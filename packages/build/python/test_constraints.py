"""The chain's pins work: jetforge-pip-install records what it installs, and a later
install that would move a pinned package fails with pip's conflict message.

Runs offline: two tiny wheels are written here and installed from a local directory,
against a private copy of the constraints file; the test container is thrown away after.
"""

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CONSTRAINTS = Path("/opt/venv/constraints.txt")


def write_wheel(directory: Path, version: str) -> None:
    """A minimal pure-Python wheel of the distribution ``jetforge-pin-probe``."""
    name = "jetforge_pin_probe"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: jetforge-pin-probe\n"
        f"Version: {version}\n",
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


def helper(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["jetforge-pip-install", "--no-index", "--find-links", env["WHEELS"], *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> int:
    assert os.environ.get("PIP_CONSTRAINT") == str(CONSTRAINTS), "PIP_CONSTRAINT is not set"
    assert os.environ.get("UV_CONSTRAINT") == str(CONSTRAINTS), "UV_CONSTRAINT is not set"
    assert CONSTRAINTS.is_file(), f"{CONSTRAINTS} is missing"
    assert shutil.which("jetforge-pip-install"), "jetforge-pip-install is not on PATH"
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        wheels = root / "wheels"
        wheels.mkdir()
        for version in ("1.0", "2.0"):
            write_wheel(wheels, version)
        pins = root / "constraints.txt"
        shutil.copy(CONSTRAINTS, pins)
        env = {**os.environ, "PIP_CONSTRAINT": str(pins), "WHEELS": str(wheels)}
        # --no-index: pip never asks this index; its password must not reach the pins.
        index = "--extra-index-url=http://jf:secret@127.0.0.1:9/simple/"
        first = helper(env, "jetforge-pin-probe==1.0", index)
        print(first.stdout, first.stderr, sep="")
        assert first.returncode == 0, "installing the probe failed"
        recorded = pins.read_text()
        assert "jetforge-pin-probe==1.0" in recorded, "the install was not pinned"
        assert "secret" not in recorded, "an index password was written into the pins"
        assert "http://***@127.0.0.1:9/simple/" in recorded, "the call was not recorded"

        moved = helper(env, "jetforge-pin-probe==2.0")
        print(moved.stdout, moved.stderr, sep="")
        assert moved.returncode != 0, "a pinned package was moved"
        assert "conflict" in (moved.stdout + moved.stderr).lower(), "no conflict message"
    print("constraints ok: a pinned package cannot be moved by a later install")
    return 0


if __name__ == "__main__":
    sys.exit(main())
