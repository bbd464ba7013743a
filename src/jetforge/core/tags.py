"""Image references and the names jetforge gives images (docs/builds.md, "Stages, names
and arguments")."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from jetforge.core.names import in_file_name
from jetforge.errors import UsageError

if TYPE_CHECKING:
    from jetforge.core.platform import Platform
    from jetforge.core.spec import PackageSpec


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference: ``[registry/]path[:tag][@digest]``."""

    repository: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def registry(self) -> str:
        """The registry host (``127.0.0.1:5000``), or empty for the engine's default."""
        first, slash, _ = self.repository.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            return first
        return ""

    @property
    def path(self) -> str:
        """The repository path inside its registry (``ns/pytorch``)."""
        registry = self.registry
        return self.repository[len(registry) + 1 :] if registry else self.repository

    @property
    def name(self) -> str:
        """The last path component (``pytorch``)."""
        return self.repository.rsplit("/", 1)[-1]

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository with another tag and no digest."""
        return replace(self, tag=tag, digest="")


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_REPOSITORY = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}")


def reference_problem(ref: ImageRef) -> str:
    """Why an engine would refuse ``ref`` (the distribution reference grammar that Docker
    and podman share), or "" when it is valid."""
    if not _REPOSITORY.fullmatch(ref.repository) or len(ref.repository) > 255:
        return (
            f"'{ref.repository}' is not a valid image name (lowercase letters and digits, "
            "single separators '.', '_', '__' or '-' between them, '/' between components)"
        )
    if ref.tag and not _TAG.fullmatch(ref.tag):
        return f"'{ref.tag}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128)"
    if ref.digest and not _DIGEST.fullmatch(ref.digest):
        return f"'{ref.digest}' is not a valid digest (e.g. sha256:<64 hex digits>)"
    return ""


def image_reference(text: str, source: str) -> ImageRef:
    """An image reference a user gave (``--base``, ``bootstrap --tag``, ``run IMAGE``,
    ``sbom IMAGE``), parsed once and checked against the reference grammar the engines
    share, so that what reaches an engine's command line is an image and never an option
    (``--help``, ``-v``). Anything else is a :class:`UsageError` naming ``source``."""
    reference = parse_image_ref(text)
    problem = _word_problem(text, "an image (e.g. debian:12)") or reference_problem(reference)
    if problem:
        raise UsageError(f"{source}: {problem}")
    return reference


def repository_prefix(text: str, source: str) -> str:
    """A registry and namespace a user gave for repositories (``--push REPO``:
    ``127.0.0.1:5000/team``), without a trailing ``/``, checked as :func:`image_reference`
    checks a repository."""
    what = "a registry and namespace (e.g. 127.0.0.1:5000/team)"
    prefix = text.strip().rstrip("/")
    problem = _word_problem(text, what)
    if not problem and (
        reference_problem(ImageRef(f"{prefix}/x")) or parse_image_ref(f"{prefix}/x").tag
    ):
        problem = f"'{text}' is not {what}"
    if problem:
        raise UsageError(f"{source}: {problem}")
    return prefix


def _word_problem(text: str, what: str) -> str:
    """What makes ``text`` no name at all: nothing, or a word that looks like an option."""
    if not text.strip():
        return f"an empty value is not {what}"
    if text.strip().startswith("-"):
        return f"'{text}' looks like an option, not {what}"
    return ""


def parse_image_ref(text: str) -> ImageRef:
    """Parse an image reference once; a missing tag stays empty (the engine says latest)."""
    rest, _, digest = text.strip().partition("@")
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        return ImageRef(rest[:colon], rest[colon + 1 :], digest)
    return ImageRef(rest, "", digest)


def final_image(last: PackageSpec, platform: Platform, name: str | None = None) -> ImageRef:
    """The final image of a chain whose last requested variant is ``last``.

    ``NAME`` is ``name`` or the variant's base name (a ``name`` ending in ``/`` is a
    namespace for it); ``TAG`` joins the variant's prefix, tag, the platform postfix and
    the variant's postfix with ``-``. A ``name`` that carries a tag is used as given.
    """
    if name and not name.endswith("/"):
        given = parse_image_ref(name)
        if given.tag:
            return given
        repository = given.repository
    else:
        repository = f"{name or ''}{last.base_name}"
    # A jc variant's postfix is jc's own platform part, which the platform postfix replaces.
    postfix = "" if last.format == "jc" else last.postfix
    parts = (last.prefix, in_file_name(last.tag), platform.tag_postfix, postfix)
    return ImageRef(repository, "-".join(part for part in parts if part))


def stage_image(final: ImageRef, variant_name: str) -> ImageRef:
    """The intermediate image of one stage: ``NAME:TAG-<variant with ':' → '_'>``."""
    suffix = in_file_name(variant_name)
    return final.with_tag(f"{final.tag}-{suffix}" if final.tag else suffix)
