"""YAML as package files use it: yaml's safe loader (the C one where available) that
refuses duplicate keys and names the file and line of every error.

Headers and ``package.yaml`` files are plain data: mappings, lists, strings, numbers,
booleans and nulls. An anchor may be reused, but a document whose aliases would expand it
by more than :data:`MAX_EXPANSION` (a "billion laughs" bomb: a few hundred bytes that
expand to gigabytes wherever the value is copied or printed) is an error before anything
is built of it. A document of only those is built straight from its nodes, about
twice as fast as yaml's general constructor (whose bookkeeping serves anchors, merge keys
and recursive structures); any other document goes through that constructor, so every
document means what ``yaml.safe_load`` makes of it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetforge.errors import AliasBombError, DefinitionError

if TYPE_CHECKING:
    import yaml

_TAG = "tag:yaml.org,2002:"
# What aliases may add to a document, in nodes plus characters of scalars: far beyond any
# package file's reuse of its anchors, far below what hurts to copy or print.
MAX_EXPANSION = 1_000_000
_SCALAR_TAGS = frozenset(_TAG + name for name in ("null", "bool", "int", "float"))


class _NotPlain(Exception):  # noqa: N818 - a signal, not an error
    """A node the direct construction leaves to yaml's constructor."""


class _Plain:
    """The loader's construction: plain data straight from the nodes, anything else (and
    duplicate keys, which are errors) through yaml's constructor. A mixin before yaml's
    loader class (see :func:`_loader`); nodes are told apart by their ``id``."""

    yaml_constructors: dict[str, Any]

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        try:
            return self._plain(node, {})
        except _NotPlain:
            return super().construct_document(node)  # type: ignore[misc]

    def _plain(self, node: Any, built: dict[int, Any]) -> Any:  # a yaml.Node
        """``node`` as yaml's constructor would build it, for plain data only; ``built``
        holds the collections built so far (an alias is the same object)."""
        tag = node.tag
        if node.id == "scalar":
            if tag == _TAG + "str":
                return node.value
            if tag in _SCALAR_TAGS:
                return self.yaml_constructors[tag](self, node)
            raise _NotPlain
        if id(node) in built:
            if built[id(node)] is None:  # an alias inside itself
                raise _NotPlain
            return built[id(node)]
        built[id(node)] = None
        value: Any
        if node.id == "sequence" and tag == _TAG + "seq":
            value = [self._plain(item, built) for item in node.value]
        elif node.id == "mapping" and tag == _TAG + "map":
            value = self._plain_mapping(node, built)
        else:
            raise _NotPlain
        built[id(node)] = value
        return value

    def _plain_mapping(self, node: Any, built: dict[int, Any]) -> dict[Any, Any]:
        value: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # merge keys, value keys, collections as keys and duplicates: yaml's way
            if key_node.id != "scalar" or key_node.tag not in _PLAIN_KEYS:
                raise _NotPlain
            key = self._plain(key_node, built)
            if key in value:
                raise _NotPlain
            value[key] = self._plain(value_node, built)
        return value

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        import yaml  # loaded already: a loader exists

        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.id != "scalar":
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}'", key_node.start_mark
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc, no-any-return]


class _ExpansionError(Exception):
    """A document whose aliases expand it too far; ``line`` is where (0-based)."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it by more than :data:`MAX_EXPANSION`.

    Each node's expanded size (itself, the characters of a scalar, the expanded sizes of
    its children) is computed once, by node identity, so a bomb costs what its text costs.
    A node inside itself (a recursive anchor) counts once there."""
    sizes: dict[int, int] = {}
    own = 0  # the sizes of the distinct nodes, each counted once
    first_large = root  # the first node found expanding past the limit: the line to name
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes and not children_done:
            continue
        if node.id == "scalar":
            sizes[id(node)] = 1 + len(node.value)
            own += sizes[id(node)]
            continue
        children = (
            [part for pair in node.value for part in pair] if node.id == "mapping" else node.value
        )
        if not children_done:
            sizes[id(node)] = 1  # while its children are counted: inside itself, it is 1
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        own += 1
        if first_large is root and sizes[id(node)] > MAX_EXPANSION:
            first_large = node
    if sizes[id(root)] - own > MAX_EXPANSION:
        raise _ExpansionError(first_large.start_mark.line)


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    """The loader class, made when a file is first parsed: with the discovery index most
    runs parse none and spare the import."""
    import yaml  # here, not at the top: start-up time

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return type("Loader", (_Plain, base), {})


_PLAIN_KEYS = _SCALAR_TAGS | {_TAG + "str"}


def preload() -> None:
    """Import yaml and make the loader now: a process that forks a reader per package
    directory (the script worker) does it once, not in every reader."""
    _loader()


# A document of the simplest form most package headers have (``name: cuda``,
# ``depends: [cmake, python]``): one line per key, each key once, at one indentation, every
# value a word or a flow list of words, a word being what YAML can only read as a string
# (a letter first, then letters, digits and ``_ . - /``; not a boolean or null word).
_WORD = r"[A-Za-z][A-Za-z0-9_./-]*"
_SIMPLE_LINE = re.compile(
    rf"( *)([A-Za-z_][A-Za-z0-9_]*): +({_WORD}|\[ *(?:{_WORD}(?: *, *{_WORD})*)? *\]) *"
)
_NOT_STRINGS = frozenset(
    word
    for base in ("yes", "no", "true", "false", "on", "off", "null")
    for word in (base, base.capitalize(), base.upper())
)


def _simple(text: str) -> dict[str, object] | None:
    """What yaml's safe loader makes of ``text`` when it is of the simplest form (see
    :data:`_SIMPLE_LINE`), else None (yaml reads it): a warm-up-free reading of most
    headers, which a cold run of a large tree parses by the thousand."""
    found: dict[str, object] = {}
    indent = None
    for line in text.split("\n"):
        if not line.strip(" "):
            continue
        match = _SIMPLE_LINE.fullmatch(line)
        if match is None or match[2] in found or indent not in (None, match[1]):
            return None
        if match[2] in _NOT_STRINGS:  # a key YAML reads as a boolean or null
            return None
        indent, value = match[1], match[3]
        if value[0] == "[":
            words = [word.strip(" ") for word in value[1:-1].split(",")]
            if words == [""]:
                words = []
            if any(word in _NOT_STRINGS for word in words):
                return None
            found[match[2]] = words
        elif value in _NOT_STRINGS:
            return None
        else:
            found[match[2]] = value
    return found or None


def load_yaml(path: Path, text: str, first_line: int = 1) -> object:
    """``yaml.safe_load`` whose errors name the file and line; an alias bomb is an
    :class:`~jetforge.errors.AliasBombError`."""
    simple = _simple(text)
    if simple is not None:
        return simple
    import yaml  # here, not at the top: start-up time

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - CSafeLoader or SafeLoader
    except _ExpansionError as error:
        problem = (
            f"YAML aliases expand this to over {MAX_EXPANSION} values (an alias bomb?); "
            "an anchor may be reused, not multiplied"
        )
        raise AliasBombError(path, problem, first_line + error.line) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = first_line + mark.line if mark is not None else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DefinitionError(path, f"malformed YAML: {problem}", line) from None


def key_lines(text: str, first_line: int = 1) -> dict[str, int]:
    """Map each key of a YAML mapping (any depth) to its line, for error messages."""
    import yaml  # here, not at the top: start-up time

    lines: dict[str, int] = {}
    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError:
        return lines
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                lines.setdefault(str(key.value), first_line + key.start_mark.line)
                stack.append(value)
    return lines
