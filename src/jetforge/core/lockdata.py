"""A lockfile read back (docs/builds.md, "Lockfile"): its JSON turned into a
:class:`LockData` value in one pass, every entry checked against its grammar.

A lockfile comes from another machine or another person, and its values end up in
Dockerfiles (the pins of a locked build), in pip's constraints and in engine commands. So
nothing past :func:`parse_lock_data` sees raw JSON: a name, version, architecture,
environment, hash, URL, image id or digest that its grammar does not allow is a
:class:`~jetforge.errors.LockfileError` naming the entry (``stages[2].installed.python[5].
name``) and what would be valid. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from jetforge.core.inventory import (
    Deb,
    Distribution,
    Interpreter,
    Inventory,
    Source,
    canonical_name,
)
from jetforge.core.names import TRUST_STAGE
from jetforge.core.tags import parse_image_ref, reference_problem
from jetforge.core.urls import url_problem
from jetforge.errors import LockfileError

LOCK_FORMAT = 1


@dataclass(frozen=True, slots=True)
class LockedStage:
    """One stage as built: what it added to its parent image and what it removed.

    ``inventoried`` is false when the image could not be listed (no ``sh`` in it); the
    next stage is then compared with the nearest image that could."""

    index: int
    variant: str
    key: str
    image: str
    image_id: str
    added: Inventory
    removed: Inventory
    inventoried: bool = True


@dataclass(frozen=True, slots=True)
class LockedBase:
    """The first stage's base image as the lockfile records it."""

    reference: str
    id: str  # empty when the engine could not inspect it
    digests: tuple[str, ...]  # REPOSITORY@sha256:…
    inventory: Inventory
    inventoried: bool


@dataclass(frozen=True, slots=True)
class LockData:
    """A lockfile's content, checked: the platform (as ``Platform.to_json`` gives it), the
    chain, the base image and every stage with what it installed and removed."""

    platform: Mapping[str, object]
    chain: tuple[str, ...]
    build_mode: str
    final_image: str
    final_image_id: str
    base: LockedBase
    stages: tuple[LockedStage, ...]

    @property
    def platform_label(self) -> str:
        """The platform's label (``cuda-12.8 ubuntu-24.04 x86_64``)."""
        return str(self.platform.get("label", ""))


@dataclass(frozen=True, slots=True)
class Grammar:
    """What a kind of value may be: its name, a matcher and the rule in words."""

    name: str
    matches: Callable[[str], bool]
    rule: str
    longest: int = 4096  # so that one entry is a short line of a pinning RUN

    def check(self, value: object, where: str) -> str:
        """``value`` when it is a string of this grammar; else a LockfileError."""
        text = _string(value, where)
        if len(text) > self.longest:
            raise LockfileError(
                where, f"{_shown(text)} is longer than {self.longest} characters ({self.name})"
            )
        if not self.matches(text):
            raise LockfileError(where, f"{_shown(text)} is not {self.name} ({self.rule})")
        return text


def _pattern(expression: str, flags: int = 0) -> Callable[[str], bool]:
    compiled = re.compile(expression, flags)
    return lambda text: compiled.fullmatch(text) is not None


def _is_python_version(text: str) -> bool:
    """PEP 440, or a legacy version of the same characters (``importlib.metadata``
    reports one for some distro packages: Ubuntu's ``distro-info 1.1build1``)."""
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+!_-]*", text) is not None


def _is_path(text: str) -> bool:
    return text.startswith("/") and text.isprintable() and not any(c.isspace() for c in text)


def _is_word(text: str) -> bool:
    return text.isprintable() and not any(c.isspace() for c in text)


def _is_url(text: str, schemes: tuple[str, ...]) -> bool:
    return not url_problem(text, schemes)


def _is_digest_reference(text: str) -> bool:
    ref = parse_image_ref(text)
    return (
        _is_word(text)
        and ref.tag == ""
        and re.fullmatch("sha256:[0-9a-f]{64}", ref.digest) is not None
        and not reference_problem(ref)
    )


DEB_NAME = Grammar(
    "a Debian package name",
    _pattern(r"[a-z0-9][a-z0-9+.-]*"),
    "lowercase letters, digits, '+', '-' and '.', starting with a letter or digit",
    longest=255,
)
DEB_VERSION = Grammar(
    "a Debian version",
    _pattern(r"(?:[0-9]+:)?[A-Za-z0-9](?:[A-Za-z0-9.+~-]*[A-Za-z0-9.+~])?"),
    "[EPOCH:]UPSTREAM[-REVISION] of letters, digits, '.', '+', '~' and '-'",
    longest=255,
)
ARCHITECTURE = Grammar(
    "a Debian architecture",
    _pattern(r"[a-z0-9][a-z0-9-]*"),
    "such as amd64, arm64 or all",
    longest=255,
)
PYTHON_NAME = Grammar(
    "a Python distribution name",
    _pattern(r"[A-Z0-9](?:[A-Z0-9._-]*[A-Z0-9])?", re.IGNORECASE),
    "PEP 508: letters, digits, '.', '_' and '-', starting and ending with a letter or digit",
    longest=255,
)
PYTHON_VERSION = Grammar(
    "a Python version",
    _is_python_version,
    "PEP 440, such as 2.2.1 or 1!2.0rc1+local: letters, digits, '.', '+', '!', '_' and '-'",
    longest=255,
)
PATH = Grammar("an absolute path", _is_path, "'/' then printable characters, no whitespace")
SHA256 = Grammar("a sha256", _pattern("[0-9a-f]{64}"), "64 lowercase hex digits")
STAGE_KEY = Grammar("a stage key", _pattern("[0-9a-f]{64}"), "64 lowercase hex digits")
IMAGE_ID = Grammar(
    "an image id", _pattern("(?:sha256:)?[0-9a-f]{64}"), "sha256: and 64 lowercase hex digits"
)
DIGEST = Grammar("an image digest", _is_digest_reference, "REPOSITORY@sha256:<64 hex digits>")
FILE_URL = Grammar(
    "a file's URL",
    lambda text: _is_url(text, ("http", "https", "file")),
    "http://, https:// or file:, no whitespace or control characters",
)
INDEX_URL = Grammar(
    "an index URL",
    lambda text: _is_url(text, ("http", "https")),
    "http:// or https:// and a host, no whitespace or control characters",
)
VARIANT = Grammar(
    "a variant name",
    _pattern(r"[A-Za-z0-9][A-Za-z0-9_.+-]*(?::[A-Za-z0-9_][A-Za-z0-9_.+-]*)?"),
    "NAME or NAME:TAG of letters, digits, '_', '.', '+' and '-'",
    longest=255,
)
WORD = Grammar("a word", _is_word, "printable characters, no whitespace")
TEXT = Grammar("text", str.isprintable, "printable characters on one line")
FILE = Grammar(
    "an absolute path",
    lambda text: text.startswith("/") and text.isprintable(),
    "'/' then printable characters",
)


def parse_lock_data(data: object, build_modes: Collection[str] | None = None) -> LockData:
    """The lockfile whose JSON (as :func:`json.loads` gives it) is ``data``, checked; its
    ``build_mode`` one of ``build_modes`` (the engines' builders, which the core does not
    know), or any word when they are not given."""
    top = _object(data, "")
    version = _get(top, "format", "")
    if type(version) is not int or version != LOCK_FORMAT:
        raise LockfileError(
            "format", f"{_shown(version)} is not {LOCK_FORMAT}, the format this jetforge reads"
        )
    platform = _object(_get(top, "platform", ""), "platform")
    for key, value in platform.items():
        _platform_value(value, f"platform.{key}")
    TEXT.check(_get(platform, "label", "platform"), "platform.label")
    base = _object(_get(top, "base", ""), "base")
    chain = tuple(
        VARIANT.check(item, f"chain[{n}]")
        for n, item in enumerate(_list(_get(top, "chain", ""), "chain"))
    )
    stages = _stages(_list(_get(top, "stages", ""), "stages"))
    _check_stages_follow(chain, stages)
    return LockData(
        platform=dict(platform),
        chain=chain,
        build_mode=_build_mode(top, build_modes),
        final_image=_optional(top, "final_image", "", WORD),
        final_image_id=_optional(top, "final_image_id", "", IMAGE_ID),
        base=_base(base),
        stages=stages,
    )


def _build_mode(top: Mapping[str, Any], build_modes: Collection[str] | None) -> str:
    mode = _optional(top, "build_mode", "", WORD)
    if mode and build_modes is not None and mode not in build_modes:
        valid = ", ".join(build_modes)
        raise LockfileError("build_mode", f"{_shown(mode)} is not a build mode ({valid})")
    return mode


def _check_stages_follow(chain: tuple[str, ...], stages: tuple[LockedStage, ...]) -> None:
    """The stages are the chain's, one each, in order (index 1 on; index 0 the CA trust
    stage when there is one): a stage left out or named otherwise would build unpinned."""
    own = [s for s in stages if not (s.index == 0 and s.variant == TRUST_STAGE)]
    first = len(stages) - len(own)
    for number, (stage, variant) in enumerate(zip(own, chain, strict=False)):  # then: counts
        where = f"stages[{first + number}]"
        if stage.variant != variant:
            raise LockfileError(
                f"{where}.variant", f"{stage.variant} is not the chain's variant {variant}"
            )
        if stage.index != number + 1:
            raise LockfileError(f"{where}.index", f"{stage.index} is not {variant}'s {number + 1}")
    if len(own) != len(chain):
        raise LockfileError("stages", f"{len(own)} stages for the chain's {len(chain)} variants")


def _base(base: Mapping[str, Any]) -> LockedBase:
    where = "base"
    digests = _list(_get(base, "digests", where), f"{where}.digests")
    return LockedBase(
        reference=WORD.check(_get(base, "reference", where), f"{where}.reference"),
        id=_optional(base, "id", where, IMAGE_ID),
        digests=tuple(DIGEST.check(d, f"{where}.digests[{n}]") for n, d in enumerate(digests)),
        inventory=_contents(base, where, os=True),
        inventoried=_boolean(base.get("inventoried", True), f"{where}.inventoried"),
    )


def _stages(items: list[Any]) -> tuple[LockedStage, ...]:
    stages: list[LockedStage] = []
    for number, item in enumerate(items):
        where = f"stages[{number}]"
        stage = _object(item, where)
        index = _get(stage, "index", where)
        if type(index) is not int or index < 0:
            raise LockfileError(f"{where}.index", f"{_shown(index)} is not a stage number")
        if stages and index <= stages[-1].index:
            raise LockfileError(
                f"{where}.index", f"{index} does not follow the stage before's {stages[-1].index}"
            )
        variant = VARIANT.check(_get(stage, "variant", where), f"{where}.variant")
        if any(earlier.variant == variant for earlier in stages):
            raise LockfileError(f"{where}.variant", f"{variant} is in the chain twice")
        removed = _object(_get(stage, "removed", where), f"{where}.removed")
        added = _contents(stage, where)
        _check_debs_once(added.debs, f"{where}.installed")
        _check_distributions_once(added.distributions, f"{where}.installed")
        stages.append(
            LockedStage(
                index=index,
                variant=variant,
                key=STAGE_KEY.check(_get(stage, "key", where), f"{where}.key"),
                image=_optional(stage, "image", where, WORD),
                image_id=_optional(stage, "image_id", where, IMAGE_ID),
                added=added,
                removed=_removed(removed, f"{where}.removed"),
                inventoried=_boolean(stage.get("inventoried", True), f"{where}.inventoried"),
            )
        )
    return tuple(stages)


def _check_debs_once(debs: tuple[Deb, ...], where: str) -> None:
    """A stage pins a Debian package by name: one entry each, but for the architectures of
    a multi-arch package, which share its version."""
    seen: dict[str, Deb] = {}
    for number, deb in enumerate(debs):
        earlier = seen.setdefault(deb.name, deb)
        if earlier is not deb and (
            earlier.architecture == deb.architecture or earlier.version != deb.version
        ):
            raise LockfileError(f"{where}.deb[{number}]", f"{deb.name} is listed twice")


def _check_distributions_once(distributions: tuple[Distribution, ...], where: str) -> None:
    """A stage pins a Python distribution by its PEP 503 name in each environment: two
    entries would leave the pin to whichever comes last."""
    seen: set[tuple[str, str]] = set()
    for number, found in enumerate(distributions):
        key = (canonical_name(found.name), found.environment)
        if key in seen:
            raise LockfileError(
                f"{where}.python[{number}]",
                f"{found.name} in {found.environment} is listed twice",
            )
        seen.add(key)


def _contents(holder: Mapping[str, Any], where: str, *, os: bool = False) -> Inventory:
    """What ``holder`` (the base or a stage) lists under ``installed`` and ``sources``."""
    installed = _object(_get(holder, "installed", where), f"{where}.installed")
    at = f"{where}.installed"
    os_id = os_version = ""
    if os and "os" in holder:
        found = _object(holder["os"], f"{where}.os")
        os_id = _optional(found, "id", f"{where}.os", TEXT)
        os_version = _optional(found, "version", f"{where}.os", TEXT)
    return Inventory(
        os_id=os_id,
        os_version=os_version,
        debs=tuple(
            _deb(item, f"{at}.deb[{n}]") for n, item in _items(installed, "deb", at, required=True)
        ),
        distributions=tuple(
            _distribution(item, f"{at}.python[{n}]")
            for n, item in _items(installed, "python", at, required=True)
        ),
        interpreters=tuple(
            _interpreter(item, f"{at}.interpreters[{n}]")
            for n, item in _items(installed, "interpreters", at)
        ),
        sources=tuple(
            _source(item, f"{where}.sources[{n}]") for n, item in _items(holder, "sources", where)
        ),
    )


def _removed(removed: Mapping[str, Any], where: str) -> Inventory:
    """A stage's ``removed``: Debian package names, Python names with their environment."""
    debs = tuple(
        Deb(DEB_NAME.check(name, f"{where}.deb[{n}]"), "", "")
        for n, name in enumerate(_list(_get(removed, "deb", where), f"{where}.deb"))
    )
    distributions = []
    for n, item in _items(removed, "python", where, required=True):
        at = f"{where}.python[{n}]"
        found = _object(item, at)
        distributions.append(
            Distribution(
                name=PYTHON_NAME.check(_get(found, "name", at), f"{at}.name"),
                version="",
                environment=PATH.check(_get(found, "environment", at), f"{at}.environment"),
            )
        )
    return Inventory(debs=debs, distributions=tuple(distributions))


def _deb(item: object, where: str) -> Deb:
    deb = _object(item, where)
    return Deb(
        name=DEB_NAME.check(_get(deb, "name", where), f"{where}.name"),
        version=DEB_VERSION.check(_get(deb, "version", where), f"{where}.version"),
        architecture=ARCHITECTURE.check(_get(deb, "architecture", where), f"{where}.architecture"),
    )


def _distribution(item: object, where: str) -> Distribution:
    found = _object(item, where)
    sha256 = _optional(found, "sha256", where, SHA256)
    url = _optional(found, "url", where, FILE_URL)
    _optional(found, "index", where, INDEX_URL)
    return Distribution(
        name=PYTHON_NAME.check(_get(found, "name", where), f"{where}.name"),
        version=PYTHON_VERSION.check(_get(found, "version", where), f"{where}.version"),
        environment=PATH.check(_get(found, "environment", where), f"{where}.environment"),
        sha256=sha256,
        url=url,
    )


def _interpreter(item: object, where: str) -> Interpreter:
    found = _object(item, where)
    return Interpreter(
        path=FILE.check(_get(found, "path", where), f"{where}.path"),
        version=PYTHON_VERSION.check(_get(found, "version", where), f"{where}.version"),
        environment=PATH.check(_get(found, "environment", where), f"{where}.environment"),
    )


def _source(item: object, where: str) -> Source:
    found = _object(item, where)
    return Source(
        file=FILE.check(_get(found, "file", where), f"{where}.file"),
        name=TEXT.check(_get(found, "name", where), f"{where}.name"),
        url=TEXT.check(_get(found, "url", where), f"{where}.url"),
        sha256=_optional(found, "sha256", where, SHA256),
        commit=_optional(found, "commit", where, TEXT),
    )


def _platform_value(value: object, where: str) -> None:
    """A platform field: text, a number, null, or a list of text and numbers."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None and not isinstance(value, list):
            continue
        if isinstance(item, str):
            TEXT.check(item, where)
        elif type(item) is not int:
            raise LockfileError(where, f"is {_kind(item)}, not text or a whole number")


def _items(
    holder: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> list[tuple[int, Any]]:
    if key not in holder and not required:
        return []
    return list(enumerate(_list(_get(holder, key, where), f"{where}.{key}")))


def _optional(holder: Mapping[str, Any], key: str, where: str, grammar: Grammar) -> str:
    """``holder[key]`` of ``grammar``; empty when it is missing or empty."""
    value = holder.get(key, "")
    return "" if value == "" else grammar.check(value, f"{where}.{key}" if where else key)


def _get(holder: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in holder:
        raise LockfileError(f"{where}.{key}" if where else key, "is missing")
    return holder[key]


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LockfileError(where or "the file", f"is {_kind(value)}, not an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise LockfileError(where, f"is {_kind(value)}, not a list")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise LockfileError(where, f"is {_kind(value)}, not a string")
    return value


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise LockfileError(where, f"is {_kind(value)}, not true or false")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _shown(value: object) -> str:
    """``value`` for a one-line message: quoted, control characters escaped, cut short."""
    if isinstance(value, str):
        return repr(value[:60] + "..." if len(value) > 60 else value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)[:30]
    return _kind(value)
