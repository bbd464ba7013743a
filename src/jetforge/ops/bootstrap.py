"""Create a base OS image from a distro package mirror, with no registry (docs/builds.md,
"Base images without a registry").

``mmdebstrap`` writes a minimal root filesystem tarball; the engine imports it as an image.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jetforge.core.platform import Distro
from jetforge.core.tags import image_reference
from jetforge.engine.base import Engine
from jetforge.errors import FailureError, JetforgeError, UsageError
from jetforge.host.files import file_kind
from jetforge.host.process import Runner, run_process

SUITES = {
    ("debian", "11"): "bullseye",
    ("debian", "12"): "bookworm",
    ("debian", "13"): "trixie",
    ("ubuntu", "20.04"): "focal",
    ("ubuntu", "22.04"): "jammy",
    ("ubuntu", "24.04"): "noble",
}

MIRROR_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s]+")
DEFAULT_MIRRORS = {
    "debian": "http://deb.debian.org/debian",
    "ubuntu": "http://archive.ubuntu.com/ubuntu",
}

# The keyring mmdebstrap verifies each distro's archive with (it takes it from this path
# on the host), and the package that installs it there.
KEYRINGS = {
    "debian": ("/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"),
    "ubuntu": ("/usr/share/keyrings/ubuntu-archive-keyring.gpg", "ubuntu-keyring"),
}


@dataclass(frozen=True, slots=True)
class BootstrapPlan:
    """The suite, mirror and image tag of one bootstrap, and the mmdebstrap argv."""

    distro: Distro
    suite: str
    mirror: str
    tag: str
    keyring: str = ""  # --keyring: a keyring file or directory instead of the host's

    def argv(self, tarball: Path) -> tuple[str, ...]:
        """The mmdebstrap command writing the root filesystem to ``tarball``."""
        keyring = (f"--keyring={self.keyring}",) if self.keyring else ()
        return (
            "mmdebstrap",
            "--variant=minbase",
            "--include=ca-certificates",
            *keyring,
            "--",
            self.suite,
            str(tarball),
            self.mirror,
        )

    def keyring_remedy(self) -> str:
        """How to give mmdebstrap the key of this distro's archive."""
        _, package = KEYRINGS[self.distro.name]
        return (
            f"install {self.distro.name.capitalize()}'s archive keyring: apt-get install "
            f"{package}; or pass --keyring FILE holding the archive's key"
        )


def plan_bootstrap(
    distro: Distro, mirror: str | None, tag: str | None, keyring: str | None = None
) -> BootstrapPlan:
    """Decide suite, mirror and tag; an unknown distro release, a mirror that is not a
    URL and a tag that is not an image name are usage errors (neither ever reaches
    mmdebstrap or the engine as an option)."""
    suite = SUITES.get((distro.name, distro.release))
    if suite is None:
        known = ", ".join(f"{name}:{release}" for name, release in SUITES)
        raise UsageError(f"bootstrap: no suite known for {distro} (known: {known})")
    if mirror is not None and not MIRROR_URL.fullmatch(mirror):
        raise UsageError(
            f"bootstrap --mirror: '{mirror}' is not a mirror URL "
            f"(e.g. {DEFAULT_MIRRORS[distro.name]})"
        )
    chosen_mirror = mirror or DEFAULT_MIRRORS[distro.name]
    chosen_tag = str(image_reference(tag, "bootstrap --tag")) if tag is not None else str(distro)
    return BootstrapPlan(distro, suite, chosen_mirror, chosen_tag, keyring or "")


def check_keyring(plan: BootstrapPlan) -> None:
    """Before mmdebstrap runs: the keyring it will verify the archive with is there (the
    ``--keyring`` given, else the distro's keyring on the host) and is a regular file or
    (``--keyring``) a directory of them. apt reads it: a FIFO would block mmdebstrap and
    everything it started, a device would feed it garbage."""
    if plan.keyring:
        problem = keyring_problem(Path(plan.keyring), directory=True)
        if problem:
            raise UsageError(
                f"bootstrap: --keyring {plan.keyring} {problem} (name a keyring file, or a "
                "directory of keyring files)"
            )
        return
    path, _ = KEYRINGS[plan.distro.name]
    problem = keyring_problem(Path(path), directory=False)
    if problem == "does not exist":
        raise UsageError(
            f"bootstrap: {plan.distro} needs {plan.distro.name.capitalize()}'s archive "
            f"keyring, which this host lacks ({path}); {plan.keyring_remedy()}"
        )
    if problem:
        raise UsageError(
            f"bootstrap: {path} {problem} (the host's keyring of {plan.distro.name}'s "
            f"archive); {plan.keyring_remedy()}"
        )


def keyring_problem(path: Path, *, directory: bool) -> str:
    """What is wrong with ``path`` as a keyring ("" when nothing): missing, or neither a
    regular file nor (``directory``) a directory whose entries are regular files or
    directories (a link is followed)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return ""
    if not (directory and stat.S_ISDIR(mode)):
        return f"is {file_kind(mode)}, not a keyring"
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    for entry in entries:
        try:
            inner = Path(entry.path).stat().st_mode
        except OSError as error:
            return f"holds {entry.name}, which cannot be read ({error.strerror or error})"
        if not (stat.S_ISREG(inner) or stat.S_ISDIR(inner)):
            return f"holds {entry.name}, which is {file_kind(inner)}, not a keyring file"
    return ""


def explain_failure(plan: BootstrapPlan, output: str) -> JetforgeError:
    """What a failed mmdebstrap run means: a key apt does not have (a usage error with
    its fix), else apt's own error lines, not mmdebstrap's last words (``received signal
    PIPE``)."""
    missing = re.search(r"NO_PUBKEY ([0-9A-Fa-f]+)", output)
    if missing or "is not signed" in output:
        key = f" (key {missing[1]} is missing)" if missing else ""
        return UsageError(
            f"bootstrap: apt cannot verify {plan.mirror} {plan.suite}{key}; "
            + plan.keyring_remedy()
        )
    lines = output.strip().splitlines()
    errors = [
        line[3:].strip()
        for line in lines
        if line.startswith("E: ") and "mmdebstrap failed" not in line
    ]
    return FailureError(f"mmdebstrap failed: {' | '.join(errors[:3] or lines[-3:])}")


def bootstrap(
    plan: BootstrapPlan, engine: Engine, work_dir: Path, runner: Runner = run_process
) -> str:
    """Run the bootstrap; returns the new image's id."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as temporary:
        tarball = Path(temporary) / "rootfs.tar"
        done = runner(plan.argv(tarball))
        if done.returncode == 127:
            raise UsageError("bootstrap needs mmdebstrap: apt-get install -y mmdebstrap")
        if done.returncode != 0:
            raise explain_failure(plan, f"{done.stdout}\n{done.stderr}")
        imported = engine.import_tarball(str(tarball), plan.tag)
        if imported.returncode != 0:
            raise FailureError(f"{engine.name} import failed: {imported.stderr.strip()}")
    info = engine.inspect(plan.tag)
    return info.id if info else ""
