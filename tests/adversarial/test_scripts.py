"""jetforge's own configure() scripts cannot reach the scan: a loop is timed out, exit()
and os._exit() are errors of their package, print() never reaches the output, chdir never
loses a directory, and the network is not there."""

from __future__ import annotations

import json
import time

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
CONFIGURE = "def configure(package, platform):\n"


def script(body: str) -> str:
    return CONFIGURE + "".join(f"    {line}\n" for line in body.splitlines())


def test_hostile_configure_scripts_are_errors_of_their_own_packages(tree, run):
    root = tree(
        {
            "aa-loops/config.py": script("while True:\n    pass"),
            "ab-exits/config.py": script("import sys\nsys.exit(3)"),
            "ac-prints/config.py": script('print(\'{"not": "jetforge"}\')\nreturn package'),
            "ad-chdir/config.py": script("import os\nos.chdir('/')\nreturn package"),
            "ae-kills/config.py": script("import os\nos._exit(0)"),
            "af-network/config.py": script(
                "import urllib.request\n"
                "try:\n"
                "    urllib.request.urlopen('https://pypi.org/simple/', timeout=30)\n"
                "except OSError:\n"
                "    return package.replace(notes='offline')\n"
                "return package"
            ),
            "zz-last/Dockerfile": HEADER.format("zz-last"),
            **{
                f"{name}/Dockerfile": HEADER.format(name)
                for name in (
                    "aa-loops",
                    "ab-exits",
                    "ac-prints",
                    "ad-chdir",
                    "ae-kills",
                    "af-network",
                )
            },
        }
    )
    started = time.monotonic()
    result = run(root, "list", "--json", env={"JETFORGE_CONFIG_TIMEOUT": "2"})
    assert time.monotonic() - started < 20
    assert result.code == 0, result.stderr
    listed = {item["name"]: item for item in json.loads(result.stdout)}  # valid JSON: no print
    assert sorted(listed) == ["ac-prints", "ad-chdir", "af-network", "zz-last"]
    assert listed["af-network"]["notes"] == "offline"
    errors = result.stderr
    assert "aa-loops/config.py: config script did not finish within 2 s" in errors
    assert "ab-exits/config.py:3: config script called exit(3)" in errors
    assert "ae-kills/config.py: config script ended the process that ran it" in errors
    assert "Traceback" not in errors
