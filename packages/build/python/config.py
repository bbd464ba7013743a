"""python:<X.Y> variants: exactly one is available, the platform's Python.

The platform's Python is the distro's (Ubuntu 22.04: 3.10, Debian 12: 3.11, ...) unless
PYTHON_VERSION says otherwise; PYTHON_VERSION therefore also selects the variant. The
distro's own Python comes from the distro; any other version from the deadsnakes PPA,
which exists for Ubuntu only.
"""

from packaging.version import Version

from jetforge.host.platform_data import load_tables

VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")

# The oldest Ubuntu release for which the deadsnakes PPA publishes each version.
DEADSNAKES_FROM = {"3.13": "22.04"}


def configure(package, platform):
    distro_python = load_tables().python.get(platform.distro)
    variants = []
    for version in VERSIONS:
        requires = [f"==py{version}"]
        if distro_python == Version(version):
            source, tier = "distro", "e2e"
            what = f"Python {version}, the distro's own."
        else:
            source, tier = "deadsnakes", "plan"
            requires.append(f">=ubuntu{DEADSNAKES_FROM.get(version, '20.04')}")
            what = (
                f"Python {version} from the deadsnakes PPA (Ubuntu only; "
                "launchpad.net is not reachable from the CI machine)."
            )
        variants.append(
            package.replace(
                name=f"python:{version}",
                requires=requires,
                build_args={"PYTHON_SOURCE": source},
                tier=tier,
                notes=what,
            )
        )
    return variants
