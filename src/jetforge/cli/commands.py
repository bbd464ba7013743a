"""The subcommands: which module implements each, and its one-line summary.

``jetforge --help`` and argument parsing import only the module of the command that runs
(see :func:`jetforge.cli.main.make_parser`), so a read-only command never loads the
engine, registry, cache or progress modules.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name: (module, summary), in the order --help lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("jetforge.cli.listing", "list variants, one name per line"),
    "show": ("jetforge.cli.show", "everything known about matching variants"),
    "build": ("jetforge.cli.build", "resolve, plan and build packages into one image"),
    "bake": (
        "jetforge.cli.bake",
        "write a docker-bake.json of a chain's stages for buildx builders",
    ),
    "graph": ("jetforge.cli.graph", "show the resolved dependency graph"),
    "explain": (
        "jetforge.cli.explain",
        "why each variant was chosen and why alternatives were rejected",
    ),
    "platform": ("jetforge.cli.platform", "show the detected platform"),
    "bootstrap": (
        "jetforge.cli.bootstrap",
        "create a base OS image with mmdebstrap (no registry needed)",
    ),
    "autotag": ("jetforge.cli.autotag", "print a compatible image for a package"),
    "run": ("jetforge.cli.run", "run a container with GPU, devices and data mounted"),
    "doctor": (
        "jetforge.cli.doctor",
        "check the engine, GPU runtime, disk, registries, caches and platform",
    ),
    "docs": ("jetforge.cli.docs", "generate documentation from the package tree"),
    "cache": ("jetforge.cli.cache", "the local wheel and tarball cache"),
    "lock": ("jetforge.cli.lock", "write or refresh a chain's lockfile, moving only what is named"),
    "ci": (
        "jetforge.cli.ci",
        "plan what a CI run builds and generate GitHub or GitLab pipelines for it",
    ),
    "sbom": ("jetforge.cli.sbom", "print the SPDX SBOM of an image jetforge built"),
}


def summary(name: str) -> str:
    """The one-line help of a subcommand."""
    return COMMANDS[name][1]


def load(name: str) -> ModuleType:
    """The module of a subcommand (it has ``register(commands)``)."""
    return importlib.import_module(COMMANDS[name][0])
