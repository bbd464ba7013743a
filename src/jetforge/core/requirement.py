"""Requirements: dependency entries (``numpy``, ``pytorch:2.8``, ``pytorch>=2.6``) and
platform predicates (``>=r36``, ``<cu130``, ``>=py310``, ``==ubuntu24.04``, ``aarch64``).

Both are parsed once into values; evaluation is a pure function of the platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

if TYPE_CHECKING:
    from jetforge.core.platform import Platform


class RequirementSyntaxError(ValueError):
    """A requirement or predicate that does not parse; the message says what is valid."""


@dataclass(frozen=True)  # no slots: the discovery index fills thousands (discovery/records.py)
class Requirement:
    """A dependency entry: a name (variant, base name or alias), an optional tag or
    version specifier. ``text`` is the entry as written."""

    name: str
    tag: str = ""
    specifier: SpecifierSet | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.name


_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.:+\-]*))?"
    r"\s*(?P<spec>(?:[<>=!~]=?|===).*)?$"
)


def parse_requirement(text: str) -> Requirement:
    """Parse ``name``, ``name:tag`` or ``name<specifier>``."""
    match = _REQUIREMENT.match(text.strip())
    if match is None or (match["tag"] and match["spec"]):
        raise RequirementSyntaxError(
            f"bad requirement '{text}' (valid: 'name', 'name:tag' or 'name>=1.2')"
        )
    specifier = None
    if match["spec"]:
        try:
            specifier = SpecifierSet(match["spec"].replace(" ", ""))
        except InvalidSpecifier:
            raise RequirementSyntaxError(
                f"bad version specifier in '{text}' (valid: PEP 440, e.g. '>=2.6,<3')"
            ) from None
    return Requirement(match["name"].lower(), match["tag"] or "", specifier, text.strip())


PredicateKind = Literal["l4t", "cuda", "python", "distro", "arch"]

_ARCH_WORDS = {
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "tegra": "tegra",
    "sbsa": "sbsa",
}

_PREDICATE = re.compile(
    r"^(?P<op>===|==|!=|<=|>=|~=|<|>)?\s*(?P<prefix>r|cu|py|[a-z]+(?=\d))?(?P<version>\d[\w.*]*)$"
)


@dataclass(frozen=True, slots=True)
class Predicate:
    """A platform predicate: ``kind`` says which platform field ``specifier`` tests.

    For ``arch`` predicates ``word`` holds the normalised word and ``negate`` the ``!=``.
    For ``distro`` predicates ``word`` holds the distro name. ``l4t_off_jetson`` is the
    L4T release an ``l4t`` predicate compares against off Jetson (jetson-containers
    trees); without it such a predicate holds there.
    """

    kind: PredicateKind
    text: str
    specifier: SpecifierSet | None = None
    word: str = ""
    negate: bool = False
    l4t_off_jetson: Version | None = None

    def holds(self, platform: Platform) -> bool:
        """Whether the predicate holds on ``platform``."""
        if self.kind == "arch":
            return _arch_matches(self.word, platform) != self.negate
        assert self.specifier is not None
        if self.kind == "l4t":
            # L4T predicates constrain Jetson platforms only.
            version = platform.l4t_version or self.l4t_off_jetson
            return version is None or self.specifier.contains(version, prereleases=True)
        if self.kind == "cuda":
            return self.specifier.contains(platform.cuda_version, prereleases=True)
        if self.kind == "python":
            return self.specifier.contains(platform.python_version, prereleases=True)
        if platform.distro.name != self.word:
            # Another distro: only an exclusion such as '!=ubuntu22.04' holds.
            return all(spec.operator == "!=" for spec in self.specifier)
        return self.specifier.contains(platform.distro.version, prereleases=True)

    def __str__(self) -> str:
        return self.text


def _arch_matches(word: str, platform: Platform) -> bool:
    if word == "tegra":
        return platform.cuda_arch == "tegra-aarch64"
    if word == "sbsa":
        return platform.cuda_arch == "aarch64-sbsa"
    return platform.arch == word


def _cuda_version(text: str) -> str:
    # cu126 = 12.6, cu130 = 13.0; cu12 is the major release 12, as CUDA_VERSION reads it.
    if "." in text or not text.isdigit() or len(text) <= 2:
        return text
    return f"{text[:-1]}.{text[-1]}" if len(text) <= 3 else f"{text[:2]}.{text[2:]}"


def _python_version(text: str) -> str:
    if "." in text or not text.isdigit():
        return text
    return f"{text[0]}.{text[1:]}"


_DISTRO_WORDS = ("ubuntu", "debian")

_VALID_PREDICATES = (
    "valid: '>=r36', '<36.4', '>=cu126', '<cu130', '>=py310', '==ubuntu24.04', '22.04', "
    "'aarch64', '!=x86_64', 'tegra', 'sbsa'"
)


def parse_predicate(text: str) -> Predicate:
    """Parse one platform predicate (docs/package-format.md)."""
    stripped = text.strip().replace(" ", "")
    arch = re.fullmatch(r"(==|!=)?([a-z0-9_]+)", stripped)
    if arch and arch[2] in _ARCH_WORDS:
        return Predicate("arch", text, word=_ARCH_WORDS[arch[2]], negate=arch[1] == "!=")
    match = _PREDICATE.match(stripped)
    if match is None:
        raise RequirementSyntaxError(f"bad platform predicate '{text}' ({_VALID_PREDICATES})")
    op, prefix, version = match["op"], match["prefix"] or "", match["version"]
    kind: PredicateKind
    word = ""
    if prefix == "r":
        kind = "l4t"
    elif prefix == "cu":
        kind, version = "cuda", _cuda_version(version)
    elif prefix == "py":
        kind, version = "python", _python_version(version)
    elif prefix in _DISTRO_WORDS:
        kind, word = "distro", prefix
    elif prefix:
        raise RequirementSyntaxError(f"bad platform predicate '{text}' ({_VALID_PREDICATES})")
    elif op:
        kind = "l4t"
    else:
        kind, word = "distro", "ubuntu"
    try:
        specifier = SpecifierSet(f"{op or '=='}{version}")
    except InvalidSpecifier:
        raise RequirementSyntaxError(
            f"bad platform predicate '{text}' ({_VALID_PREDICATES})"
        ) from None
    return Predicate(kind, text, specifier, word)


_JC_ARCH_WORDS = {"tegra-aarch64": "tegra", **_ARCH_WORDS}
_JC_RELEASES = ("16.04", "18.04", "20.04", "22.04", "24.04", "26.04")


def parse_jc_predicate(text: str, l4t_off_jetson: Version) -> Predicate:
    """Parse a platform predicate of a jetson-containers tree, with jc's reading.

    An architecture word (``aarch64``, ``arm64``, ``x86_64``, ``amd64``, ``tegra-aarch64``,
    optionally after ``==``/``!=``) or an Ubuntu release (``22.04``) tests that; text that
    contains ``cu`` compares the CUDA release; anything else, with any ``r`` removed, is a
    PEP 440 specifier on the L4T release, which off Jetson is ``l4t_off_jetson``.
    """
    stripped = text.strip().lower().replace(" ", "")
    arch = re.fullmatch(r"(==|!=)?([a-z0-9_\-]+)", stripped)
    if arch and arch[2] in _JC_ARCH_WORDS:
        return Predicate("arch", text, word=_JC_ARCH_WORDS[arch[2]], negate=arch[1] == "!=")
    if stripped.removeprefix("==") in _JC_RELEASES:
        return parse_predicate(stripped.removeprefix("=="))
    if "cu" in stripped:
        return parse_predicate(stripped)
    try:
        specifier = SpecifierSet(stripped.replace("r", ""))
    except InvalidSpecifier:
        raise RequirementSyntaxError(
            f"bad platform predicate '{text}' (valid: '>=36', '==35.*', '<36.4', '>=cu126', "
            "'aarch64', '!=x86_64', '22.04')"
        ) from None
    return Predicate("l4t", text, specifier, l4t_off_jetson=l4t_off_jetson)


def is_version_match(wanted: str, tag: str) -> bool:
    """Whether a requested version text names ``tag`` (``2.6`` matches ``2.6.0``)."""
    if wanted == tag:
        return True
    try:
        return Version(wanted) == Version(tag)
    except ValueError:
        return False
