"""Trees of independent package chains, for the build farm's tests and benchmark."""

from __future__ import annotations

from pathlib import Path


def write_chains(
    root: Path, chains: int, length: int, *, seconds: int = 0, salt: str = ""
) -> list[str]:
    """``chains`` independent chains ``c<i>s1 … c<i>s<length>``; the last names.

    Each stage writes its name into the image (``/c0s1``) and tests for it, after
    ``RUN sleep seconds`` when given; a ``salt`` written into every stage makes every
    stage key new, so nothing an earlier build made is reused."""
    for chain in range(chains):
        for step in range(1, length + 1):
            name = f"c{chain}s{step}"
            depends = f"# depends: [c{chain}s{step - 1}]\n" if step > 1 else ""
            salted = f"RUN echo {salt} > /salt-{name}\n" if salt else ""
            wait = f"sleep {seconds} && " if seconds else ""
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / "Dockerfile").write_text(
                f"#---\n# name: {name}\n{depends}# test: test -f /{name}\n#---\n"
                f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{salted}RUN {wait}echo {name} > /{name}\n"
            )
    return [f"c{chain}s{length}" for chain in range(chains)]
