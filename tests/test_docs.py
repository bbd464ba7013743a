"""The documentation names every command and option the parser has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from jetforge.cli.main import make_parser

DOCS = Path(__file__).parent.parent / "docs" / "cli.md"


def test_every_command_and_option_is_documented():
    text = DOCS.read_text()
    parser = make_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, subparser in commands.choices.items():
        if f"## {name}" not in text:
            missing.append(f"## {name}")
        for action in subparser._actions:
            for option in action.option_strings:
                pattern = rf"(?<![\w-]){re.escape(option)}(?![\w-])"
                if option.startswith("--") and option != "--help" and not re.search(pattern, text):
                    missing.append(f"{name} {option}")
    assert missing == []
