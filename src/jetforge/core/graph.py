"""Render a resolved dependency graph as text, Graphviz dot, Mermaid or JSON (pure)."""

from __future__ import annotations

import json

from jetforge.core.resolve import Resolution

FORMATS = ("text", "dot", "mermaid", "json")


def render_graph(resolution: Resolution, fmt: str) -> str:
    """The graph in ``fmt``; nodes in build order, edges from dependant to dependency."""
    nodes = [variant.name for variant in resolution.chain]
    edges = resolution.edges
    if fmt == "json":
        return json.dumps({"nodes": nodes, "edges": [list(edge) for edge in edges]}, indent=2)
    if fmt == "dot":
        lines = ["digraph jetforge {", "  rankdir=LR;"]
        lines += [f'  "{node}";' for node in nodes]
        lines += [f'  "{source}" -> "{target}";' for source, target in edges]
        return "\n".join([*lines, "}"])
    if fmt == "mermaid":
        ids = {node: f"n{number}" for number, node in enumerate(nodes, start=1)}
        lines = ["graph LR"]
        lines += [f'  {ids[node]}["{node}"]' for node in nodes]
        lines += [f"  {ids[source]} --> {ids[target]}" for source, target in edges]
        return "\n".join(lines)
    depends: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in edges:
        depends[source].append(target)
    width = max(len(node) for node in nodes)
    return "\n".join(
        f"{node:<{width}}  <- {', '.join(depends[node])}" if depends[node] else node
        for node in nodes
    )
