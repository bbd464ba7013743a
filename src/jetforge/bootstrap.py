"""Create a base OS image from a distro package mirror, with no registry (SPEC section 7).

``mmdebstrap`` writes a minimal root filesystem tarball; the engine imports it as an image.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jetforge._process import Runner, run
from jetforge.core.tags import image_reference
from jetforge.engine.base import Engine
from jetforge.errors import FailureError, UsageError
from jetforge.platform import Distro

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


@dataclass(frozen=True, slots=True)
class BootstrapPlan:
    """The suite, mirror and image tag of one bootstrap, and the mmdebstrap argv."""

    distro: Distro
    suite: str
    mirror: str
    tag: str

    def argv(self, tarball: Path) -> tuple[str, ...]:
        """The mmdebstrap command writing the root filesystem to ``tarball``."""
        return (
            "mmdebstrap",
            "--variant=minbase",
            "--include=ca-certificates",
            "--",
            self.suite,
            str(tarball),
            self.mirror,
        )


def plan_bootstrap(distro: Distro, mirror: str | None, tag: str | None) -> BootstrapPlan:
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
    return BootstrapPlan(distro, suite, chosen_mirror, chosen_tag)


def bootstrap(plan: BootstrapPlan, engine: Engine, work_dir: Path, runner: Runner = run) -> str:
    """Run the bootstrap; returns the new image's id."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as temporary:
        tarball = Path(temporary) / "rootfs.tar"
        done = runner(plan.argv(tarball))
        if done.returncode == 127:
            raise UsageError("bootstrap needs mmdebstrap: apt-get install -y mmdebstrap")
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise FailureError(f"mmdebstrap failed: {' | '.join(last)}")
        imported = engine.import_tarball(str(tarball), plan.tag)
        if imported.returncode != 0:
            raise FailureError(f"{engine.name} import failed: {imported.stderr.strip()}")
    info = engine.inspect(plan.tag)
    return info.id if info else ""
