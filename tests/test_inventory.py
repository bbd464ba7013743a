"""The collector's output as a value, and what a stage added to its parent
(jetforge.core.inventory); the collector script itself runs here under the host's sh."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from jetforge.core.inventory import (
    COLLECTOR,
    HEADER,
    Deb,
    Distribution,
    Interpreter,
    Source,
    installed,
    is_inventory,
    parse_inventory,
)

SAMPLE = "\n".join(
    [
        HEADER,
        "os\tdebian\t12",
        "deb\tinstall ok installed\tdpkg\t1.21.22\tamd64",
        "deb\tinstall ok installed\tlibc6\t2.36-9+deb12u4\tamd64",
        "deb\tdeinstall ok config-files\told-thing\t1.0\tamd64",
        "python\t/opt/venv/bin/python3\t3.11.2\t/opt/venv",
        "pypi\tnumpy\t2.2.1\t/opt/venv",
        "pypi\tpip\t23.0.1\t/opt/venv",
        "pypi\tpip\t23.0.1\t/opt/venv",
        "source\t/usr/share/jetforge/sources/opencv.json\t"
        '{"name": "opencv",  "url": "https://x/o.tgz", "sha256": "' + "ab" * 32 + '"} ',
        "WARNING: something the engine said",
    ]
)


def test_the_collector_output_parses_into_sorted_unique_entries() -> None:
    inventory = parse_inventory(SAMPLE)
    assert (inventory.os_id, inventory.os_version) == ("debian", "12")
    assert inventory.debs == (
        Deb("dpkg", "1.21.22", "amd64"),
        Deb("libc6", "2.36-9+deb12u4", "amd64"),
    )  # not the package that left only its configuration behind
    assert inventory.distributions == (
        Distribution("numpy", "2.2.1", "/opt/venv"),
        Distribution("pip", "23.0.1", "/opt/venv"),
    )
    assert inventory.interpreters == (Interpreter("/opt/venv/bin/python3", "3.11.2", "/opt/venv"),)
    assert inventory.sources == (
        Source("/usr/share/jetforge/sources/opencv.json", "opencv", "https://x/o.tgz", "ab" * 32),
    )
    assert inventory.problems == ()
    assert is_inventory(SAMPLE)
    assert not is_inventory("test passed\n")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "is not JSON"),
        ('["a"]', "must be a JSON object"),
        (
            '{"name": "x", "url": "u"}',
            'lacks sha256 (it needs "name", "url" and "sha256" or "commit")',
        ),
        ('{"url": "u", "commit": "c0ffee"}', "lacks name"),
    ],
)
def test_a_source_record_that_breaks_the_convention_is_a_problem_naming_its_file(
    body: str, problem: str
) -> None:
    inventory = parse_inventory(f"{HEADER}\nsource\t/usr/share/jetforge/sources/bad.json\t{body}\n")
    assert inventory.sources == ()
    assert len(inventory.problems) == 1
    assert inventory.problems[0].startswith("/usr/share/jetforge/sources/bad.json: ")
    assert problem in inventory.problems[0]


def test_a_stage_installed_what_is_new_or_changed_and_removed_what_is_gone() -> None:
    parent = parse_inventory(SAMPLE)
    child = parse_inventory(
        SAMPLE.replace("numpy\t2.2.1", "numpy\t2.2.2")
        .replace(
            "deb\tinstall ok installed\tdpkg",
            "deb\tinstall ok installed\tcurl\t7.88\tamd64\ndeb\tinstall ok installed\tdpkg",
        )
        .replace("pypi\tpip\t23.0.1\t/opt/venv", "")
    )
    added, removed = installed(child, parent)
    assert added.debs == (Deb("curl", "7.88", "amd64"),)
    assert added.distributions == (Distribution("numpy", "2.2.2", "/opt/venv"),)
    assert added.interpreters == ()
    assert added.sources == ()
    assert removed.distributions == (Distribution("pip", "23.0.1", "/opt/venv"),)
    assert removed.debs == ()  # an upgrade is not a removal


@pytest.mark.process
@pytest.mark.parametrize("shell", ["sh", "dash", "bash"])  # Debian 12 has all three
def test_the_collector_runs_under_posix_shells_and_finds_this_python(shell: str) -> None:
    program = shutil.which(shell)
    assert program is not None, f"no {shell} here"
    argv = [program, "-c", COLLECTOR]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    inventory = parse_inventory(done.stdout)
    assert is_inventory(done.stdout)
    if shutil.which("python3"):
        assert inventory.interpreters
    if shutil.which("dpkg-query"):
        assert any(deb.name == "dpkg" for deb in inventory.debs)


@pytest.mark.process
def test_the_collector_tolerates_a_path_without_python_or_dpkg(tmp_path: Path) -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", COLLECTOR],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    inventory = parse_inventory(done.stdout)
    assert (inventory.debs, inventory.distributions, inventory.interpreters) == ((), (), ())
