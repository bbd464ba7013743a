"""Create a base OS image from a distro package mirror, with no registry (SPEC section 7).

``mmdebstrap`` writes a minimal root filesystem tarball; the engine imports it as an image.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from jetforge._process import Runner, run
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
            self.suite,
            str(tarball),
            self.mirror,
        )


def plan_bootstrap(distro: Distro, mirror: str | None, tag: str | None) -> BootstrapPlan:
    """Decide suite, mirror and tag; an unknown distro release is a usage error."""
    suite = SUITES.get((distro.name, distro.release))
    if suite is None:
        known = ", ".join(f"{name}:{release}" for name, release in SUITES)
        raise UsageError(f"bootstrap: no suite known for {distro} (known: {known})")
    chosen_mirror = mirror or DEFAULT_MIRRORS[distro.name]
    return BootstrapPlan(distro, suite, chosen_mirror, tag or str(distro))


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
