"""The package-file YAML loader: what ``yaml.safe_load`` makes of a document, built
straight from its nodes when it is plain data, and duplicate keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jetforge.core.yaml_text import load_yaml
from jetforge.errors import DefinitionError

DOCUMENTS = [
    "name: torch\ndepends: [cuda, python]\nrequires: '>=36'\n",
    "a: 1\nb: 0x1f\nc: 1_000\nd: 1.5e3\ne: .inf\nf: yes\ng: ~\nh: null\ni: 'quoted'\n",
    "1: one\ntrue: yes\nnull: nothing\n2.5: float key\n",
    "base: &base {x: 1, y: [1, 2]}\nderived:\n  <<: *base\n  y: [3]\n",
    "list: &items [a, b]\nagain: *items\n",
    "self: &loop [*loop]\n",
    "when: 2024-01-02\nstamp: 2024-01-02T03:04:05Z\n",
    "set: !!set {a, b}\npairs: !!omap [{a: 1}, {b: 2}]\n",
    "binary: !!binary aGVsbG8=\n",
    "? [a, b]\n: complex key\n",
    "= : value key\n",
    "1: int\ntrue: bool\n",
    "- a\n- {b: [c, {d: e}]}\n- - nested\n",
    "",
    "just a scalar",
    "tags: !!str 12\nnum: !!int '7'\n",
    # the simplest headers, read without yaml (and what looks like them but is not)
    " name: pkg0001\n depends: [pkg0000, pkg-2.x]\n test: test.sh\n",
    "name: a\ndepends: []\nalias: [ b ,c ]\n\n",
    "name: yes\nother: Off\nnothing: NULL\n",
    "yes: key\n",
    " name: a\n  depends: [b]\n",
    "name: a # comment\ntest: e5\ninf: nan\n",
    "depends: [a, yes]\n",
    "depends: [a, b,]\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_mean_what_safe_load_makes_of_them(text: str, tmp_path: Path) -> None:
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(DefinitionError):
            load_yaml(tmp_path / "package.yaml", text)
        return
    found = load_yaml(tmp_path / "package.yaml", text)
    if text.startswith("self:"):  # a recursive list: compare its shape
        assert isinstance(found, dict)
        assert found["self"][0] is found["self"]
    else:
        assert found == expected
        assert repr(found) == repr(expected)  # types too (True vs 1, str vs int)


def test_aliases_keep_their_identity(tmp_path: Path) -> None:
    found = load_yaml(tmp_path / "package.yaml", "a: &x [1]\nb: *x\n")
    assert isinstance(found, dict)
    assert found["a"] is found["b"]


@pytest.mark.parametrize(
    ("text", "line"),
    [("name: a\ndepends: [b]\nname: c\n", 3), ("x:\n  a: 1\n  a: 2\n", 3), ("1: a\n1: b\n", 2)],
)
def test_a_duplicate_key_is_an_error_naming_its_line(text: str, line: int, tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_yaml(tmp_path / "package.yaml", text, first_line=10)
    assert "duplicate key" in caught.value.problem
    assert caught.value.line == 9 + line


def test_equal_keys_written_differently_keep_yaml_meaning(tmp_path: Path) -> None:
    # ``1`` and ``true`` are equal Python keys; yaml keeps the last value, as before
    assert load_yaml(tmp_path / "x.yaml", "1: int\ntrue: bool\n") == yaml.safe_load(
        "1: int\ntrue: bool\n"
    )


def test_plain_data_skips_the_general_constructor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jetforge.core.yaml_text import _loader

    general: list[object] = []
    base = next(kind for kind in _loader().__mro__ if kind.__module__.startswith("yaml."))
    original = base.construct_document

    def counted(self: object, node: object) -> object:
        general.append(node)
        return original(self, node)

    monkeypatch.setattr(base, "construct_document", counted)
    assert load_yaml(tmp_path / "x.yaml", "a: [1, {b: c}]\nd: true\n") == {
        "a": [1, {"b": "c"}],
        "d": True,
    }
    assert general == []
    assert load_yaml(tmp_path / "x.yaml", "a: &x {b: 1}\nc:\n  <<: *x\n") == {
        "a": {"b": 1},
        "c": {"b": 1},
    }
    assert len(general) == 1


def test_simple_headers_are_what_the_safe_loader_makes_of_them() -> None:
    """Headers of one word or list of words per key skip yaml: every document of that
    form (and every near miss) means exactly what the safe loader makes of it."""
    import random

    from jetforge.core.yaml_text import _loader, _simple

    words = ["a", "name", "yes", "On", "NULL", "x.y", "e1", "True", "y", "a-b", "a/b", "nan"]
    rng = random.Random(26)
    for _ in range(3000):
        indent = rng.choice(["", " "])
        lines = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.4:
                value = "[" + ", ".join(rng.choice(words) for _ in range(rng.randint(0, 3))) + "]"
            else:
                value = rng.choice(words)
            lines.append(f"{indent}{rng.choice(words)}:{rng.choice([' ', '  '])}{value}")
        text = "\n".join(lines) + "\n"
        simple = _simple(text)
        if simple is not None:
            loaded = yaml.load(text, Loader=_loader())
            assert (simple, list(map(type, simple))) == (loaded, list(map(type, loaded)))
