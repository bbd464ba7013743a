"""The dependency graph renderers: exact output for each format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jetforge.core.graph import FORMATS, render_graph
from jetforge.core.resolve import Resolution, resolve
from jetforge.discovery.discover import discover
from jetforge.host.platform import detect_platform

INDEX = Path(__file__).parent / "fixtures" / "resolve" / "index"


@pytest.fixture(scope="module")
def resolution() -> Resolution:
    catalog = discover([INDEX], detect_platform({}, target="jp6"))
    return resolve(catalog, ["app"], {})


GOLDEN = {
    "text": """\
base:2.0
lib:2.0   <- base:2.0
tool      <- base:2.0
app       <- lib:2.0, tool""",
    "dot": """\
digraph jetforge {
  rankdir=LR;
  "base:2.0";
  "lib:2.0";
  "tool";
  "app";
  "app" -> "lib:2.0";
  "lib:2.0" -> "base:2.0";
  "app" -> "tool";
  "tool" -> "base:2.0";
}""",
    "mermaid": """\
graph LR
  n1["base:2.0"]
  n2["lib:2.0"]
  n3["tool"]
  n4["app"]
  n4 --> n2
  n2 --> n1
  n4 --> n3
  n3 --> n1""",
}


@pytest.mark.process
@pytest.mark.parametrize("fmt", GOLDEN)
def test_render_graph_golden(resolution, fmt):
    assert render_graph(resolution, fmt) == GOLDEN[fmt]


def test_render_graph_json(resolution):
    assert json.loads(render_graph(resolution, "json")) == {
        "nodes": ["base:2.0", "lib:2.0", "tool", "app"],
        "edges": [
            ["app", "lib:2.0"],
            ["lib:2.0", "base:2.0"],
            ["app", "tool"],
            ["tool", "base:2.0"],
        ],
    }


def test_every_format_is_covered():
    assert set(FORMATS) == {*GOLDEN, "json"}


@pytest.mark.process
def test_single_node_graph():
    catalog = discover([INDEX], detect_platform({}, target="jp6"))
    single = resolve(catalog, ["base:1.0"], {})
    assert render_graph(single, "text") == "base:1.0"
    assert render_graph(single, "mermaid") == 'graph LR\n  n1["base:1.0"]'
