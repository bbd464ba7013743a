"""Find a compatible image for a package (docs/cli.md, "autotag").

The matching is pure: an image's platform comes from its ``jetforge.platform`` label, or,
for images jetforge did not build, from its tag postfix (jetforge's own ``r36.4.0-cu126-22.04``
and ``x86_64-cu128-24.04`` styles and jetson-containers' ``r36.4.0``,
``r36.4.tegra-aarch64-cu126-22.04``, ``amd64.x86_64-cu128-24.04``). Compatible means the same
CUDA architecture; on Jetson the same L4T major and an L4T not newer than the host's; the same
CUDA major and a CUDA not newer than the host's. Among compatible images the newest platform
(L4T, then CUDA) wins, then the newest build, then an image whose last package is the one
asked for, then the shortest chain.

:func:`find_local` and :func:`find_in_registries` gather candidates from an engine and from
registries; they never print, pull or build (the CLI decides that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from packaging.version import Version

from jetforge.core import labels
from jetforge.core.names import base_name, variant_tag
from jetforge.core.platform import SBSA, TEGRA, X86, Platform, parse_cuda_version
from jetforge.core.tags import ImageRef, parse_image_ref
from jetforge.engine.base import Engine, ImageInfo
from jetforge.errors import RegistryError
from jetforge.host.registry import RegistryClient, RegistryLocation

LOCAL, REGISTRY, BUILT = "local", "registry", "built"
CUDA_ARCHES = (TEGRA, SBSA, X86)
_ARCH_WORDS = {"sbsa": SBSA, "aarch64-sbsa": SBSA, "x86_64": X86, "tegra-aarch64": TEGRA}
_NEVER = datetime.min.replace(tzinfo=timezone.utc)
_ZERO = Version("0")
# Configs fetched per registry repository for tags that do not name a platform.
UNPARSED_TAG_LIMIT = 20

_TAG_POSTFIX = re.compile(
    r"""(?:^|-)
    (?:
        r(?P<l4t>\d+(?:\.\d+){0,2})(?:\.tegra-aarch64)?
      | (?:(?:amd64|arm64)\.)?(?P<arch>tegra-aarch64|aarch64-sbsa|sbsa|x86_64)
    )
    (?:-cu(?P<cuda>\d{3,4}))?
    (?:-(?P<distro>\d+\.\d+|[a-z]+\d+(?:\.\d+)?))?
    $""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class ImagePlatform:
    """The platform an image was built for; unknown parts are None (or empty)."""

    cuda_arch: str
    l4t: Version | None = None
    cuda: Version | None = None
    distro: str = ""  # "ubuntu-22.04", "debian-12"

    def __str__(self) -> str:
        parts = [] if self.l4t is None else [f"l4t-{self.l4t}"]
        parts += [] if self.cuda is None else [f"cuda-{self.cuda}"]
        parts += [self.distro] if self.distro else []
        return " ".join((*parts, self.cuda_arch))


def parse_platform_label(text: str) -> ImagePlatform | None:
    """The value of ``jetforge.platform`` (``l4t-36.4.0 cuda-12.6 ubuntu-22.04 tegra-aarch64``);
    None when it names no CUDA architecture."""
    words = text.split()
    if not words or words[-1] not in CUDA_ARCHES:
        return None
    l4t = cuda = None
    distro = ""
    for word in words[:-1]:
        kind, _, value = word.partition("-")
        try:
            if kind == "l4t":
                l4t = Version(value)
            elif kind == "cuda":
                cuda = Version(value)
            else:
                distro = word
        except ValueError:
            return None
    return ImagePlatform(words[-1], l4t, cuda, distro)


@dataclass(frozen=True, slots=True)
class TagPlatform:
    """A tag split into its version prefix (``2.8``, or empty) and its platform postfix."""

    prefix: str
    platform: ImagePlatform


def parse_tag_postfix(tag: str) -> TagPlatform | None:
    """The platform a tag's postfix names; None when the tag names none."""
    match = _TAG_POSTFIX.search(tag)
    if match is None:
        return None
    if match["l4t"] is not None:
        cuda_arch, l4t = TEGRA, Version(match["l4t"])
    else:
        cuda_arch, l4t = _ARCH_WORDS[match["arch"]], None
    cuda = parse_cuda_version(f"cu{match['cuda']}") if match["cuda"] else None
    distro = ""
    if match["distro"]:
        name_release = re.fullmatch(r"([a-z]*)(\d.*)", match["distro"])
        if name_release is not None:
            distro = f"{name_release[1] or 'ubuntu'}-{name_release[2]}"
    return TagPlatform(tag[: match.start()], ImagePlatform(cuda_arch, l4t, cuda, distro))


def check_compatibility(image: ImagePlatform, host: Platform) -> str | None:
    """Why an image built for ``image`` cannot run on ``host``; None when it can."""
    if image.cuda_arch != host.cuda_arch:
        return f"built for {image.cuda_arch}, not {host.cuda_arch}"
    if host.is_jetson and host.l4t_version is not None:
        if image.l4t is None:
            return "its L4T release is unknown"
        if image.l4t.major != host.l4t_version.major:
            return f"L4T {image.l4t} is not L4T {host.l4t_version.major}.x"
        if image.l4t > host.l4t_version:
            return f"L4T {image.l4t} is newer than this platform's {host.l4t_version}"
    if image.cuda is not None:
        if image.cuda.major != host.cuda_version.major:
            return f"CUDA {image.cuda} is not CUDA {host.cuda_version.major}.x"
        if image.cuda > host.cuda_version:
            return f"CUDA {image.cuda} is newer than this platform's {host.cuda_version}"
    return None


@dataclass(frozen=True, slots=True)
class Wanted:
    """The package asked for: ``pytorch`` (any variant) or ``pytorch:2.8``."""

    name: str

    @property
    def base_name(self) -> str:
        """``pytorch`` for ``pytorch:2.8``."""
        return base_name(self.name)

    @property
    def tag(self) -> str:
        """``2.8`` for ``pytorch:2.8``; empty for a bare base name."""
        return variant_tag(self.name)

    def is_in_chain(self, chain: Iterable[str]) -> bool:
        """Whether a chain of variants holds this package."""
        if self.tag:
            return self.name in chain
        return any(base_name(variant) == self.name for variant in chain)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (``2025-01-02T03:04:05.123456789Z``), or the earliest time for junk."""
    match = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?", text)
    if match is None:
        return _NEVER
    fraction = (match[3] or "")[:7]
    zone = match[4] or "Z"
    zone = "+00:00" if zone == "Z" else f"{zone[:3]}:{zone[-2:]}"
    try:
        return datetime.fromisoformat(f"{match[1]}T{match[2]}{fraction}{zone}")
    except ValueError:
        return _NEVER


@dataclass(frozen=True, slots=True)
class Candidate:
    """An image that holds the wanted package, with what ranking needs."""

    reference: str
    source: str
    platform: ImagePlatform
    created: datetime = _NEVER
    package: str = ""
    chain: tuple[str, ...] = ()

    @property
    def is_labeled(self) -> bool:
        """Whether jetforge built it (its platform comes from labels, not the tag)."""
        return bool(self.chain)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An image that holds the wanted package but cannot run here, and why."""

    reference: str
    reason: str


@dataclass(frozen=True, slots=True)
class Choice:
    """The best compatible candidate (if any), every compatible one, and the rejected."""

    chosen: Candidate | None
    compatible: tuple[Candidate, ...] = ()
    rejected: tuple[Rejection, ...] = ()


def candidate_from_labels(
    reference: str, image_labels: Mapping[str, str], created: str, source: str, wanted: Wanted
) -> Candidate | None:
    """A candidate from jetforge's labels; None when the chain lacks the package or the
    platform label is unreadable."""
    chain = tuple(item for item in image_labels.get(labels.CHAIN, "").split(",") if item)
    platform = parse_platform_label(image_labels.get(labels.PLATFORM, ""))
    if not wanted.is_in_chain(chain) or platform is None:
        return None
    return Candidate(
        reference,
        source,
        platform,
        parse_time(image_labels.get(labels.CREATED, "") or created),
        image_labels.get(labels.PACKAGE, ""),
        chain,
    )


def candidate_from_tag(
    reference: ImageRef, created: str, source: str, wanted: Wanted
) -> Candidate | None:
    """A candidate from an image without labels: its repository name must be the package's
    base name, its tag must name a platform, and carry the variant tag when one is asked."""
    if reference.name != wanted.base_name:
        return None
    parsed = parse_tag_postfix(reference.tag)
    if parsed is None or (wanted.tag and parsed.prefix != wanted.tag):
        return None
    return Candidate(str(reference), source, parsed.platform, parse_time(created))


def rank(candidate: Candidate, wanted: Wanted) -> tuple[Version, Version, datetime, bool, int]:
    """Sort key, best last: platform (L4T, CUDA), build time, exact package, short chain."""
    platform = candidate.platform
    exact = candidate.package in (wanted.name, wanted.base_name) or (
        not wanted.tag and base_name(candidate.package) == wanted.name
    )
    return (
        platform.l4t or _ZERO,
        platform.cuda or _ZERO,
        candidate.created,
        exact or not candidate.is_labeled,
        -len(candidate.chain),
    )


def choose(candidates: Iterable[Candidate], host: Platform, wanted: Wanted) -> Choice:
    """Split candidates into compatible and rejected and pick the best compatible one."""
    compatible: list[Candidate] = []
    rejected: list[Rejection] = []
    for candidate in candidates:
        reason = check_compatibility(candidate.platform, host)
        if reason is None:
            compatible.append(candidate)
        else:
            rejected.append(Rejection(candidate.reference, reason))
    # Ties (one image under several names) go to the alphabetically first reference.
    ordered = sorted(compatible, key=lambda candidate: candidate.reference)
    ordered.sort(key=lambda candidate: rank(candidate, wanted), reverse=True)
    return Choice(ordered[0] if ordered else None, tuple(ordered), tuple(rejected))


def preferred_tag(tags: Sequence[str], wanted: Wanted) -> str | None:
    """The name to print for a local image: one in the package's repository, shortest first."""
    if not tags:
        return None
    return min(
        tags,
        key=lambda tag: (parse_image_ref(tag).name != wanted.base_name, len(tag), tag),
    )


# --- searches (engine and registries) -----------------------------------------------------


def iter_local_candidates(engine: Engine, wanted: Wanted) -> Iterator[tuple[ImageInfo, Candidate]]:
    """Candidates among the engine's images (with the image each is): labeled ones, then
    the package's repository."""
    seen: set[str] = set()
    labeled = engine.list_images([f"label={labels.CHAIN}"])
    patterns = (wanted.base_name, f"*/{wanted.base_name}", f"*/*/{wanted.base_name}")
    named = [info for pattern in patterns for info in engine.list_images([f"reference={pattern}"])]
    for info in (*labeled, *named):
        if info.id in seen:
            continue
        seen.add(info.id)
        for candidate in _local_candidates(info, wanted):
            yield info, candidate


def _local_candidates(info: ImageInfo, wanted: Wanted) -> Iterator[Candidate]:
    if labels.CHAIN in info.labels:
        reference = preferred_tag([tag for tag in info.tags if "<none>" not in tag], wanted)
        if reference is not None:
            found = candidate_from_labels(reference, info.labels, info.created, LOCAL, wanted)
            if found is not None:
                yield found
        return
    for tag in info.tags:
        found = candidate_from_tag(parse_image_ref(tag), info.created, LOCAL, wanted)
        if found is not None:
            yield found


UNTESTED = "its tests did not pass here (a stage of a build that failed, or tests skipped)"


def find_local(
    engine: Engine,
    wanted: Wanted,
    host: Platform,
    is_tested: Callable[[ImageInfo], bool] = lambda _info: True,
) -> Choice:
    """The best compatible local image holding ``wanted``, among those that passed their
    tests: a jetforge image counts when ``is_tested`` says so or it came from (or went
    to) a registry, where jetforge puts only tested images; an image without jetforge's
    labels cannot tell and counts."""
    candidates: list[Candidate] = []
    untested: list[Rejection] = []
    for info, candidate in iter_local_candidates(engine, wanted):
        if labels.CHAIN in info.labels and not info.digests and not is_tested(info):
            untested.append(Rejection(candidate.reference, UNTESTED))
        else:
            candidates.append(candidate)
    choice = choose(candidates, host, wanted)
    return Choice(choice.chosen, choice.compatible, (*untested, *choice.rejected))


def find_in_registries(
    client: RegistryClient,
    locations: Sequence[RegistryLocation],
    wanted: Wanted,
    host: Platform,
    on_problem: Callable[[RegistryError], None] = lambda _error: None,
) -> Choice:
    """The best compatible image holding ``wanted`` in the registries' ``<ns>/<base name>``
    repositories. A registry that fails is handed to ``on_problem`` and skipped."""
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    for location in locations:
        try:
            candidates += _registry_candidates(client, location, wanted, host, rejected)
        except RegistryError as error:
            on_problem(error)
    choice = choose(candidates, host, wanted)
    return Choice(choice.chosen, choice.compatible, (*rejected, *choice.rejected))


def _registry_candidates(
    client: RegistryClient,
    location: RegistryLocation,
    wanted: Wanted,
    host: Platform,
    rejected: list[Rejection],
) -> list[Candidate]:
    repository = location.repository(wanted.base_name)
    found: list[Candidate] = []
    unparsed = 0
    for tag in sorted(client.list_tags(repository)):
        reference = repository.with_tag(tag)
        parsed = parse_tag_postfix(tag)
        if parsed is not None:
            # The tag already says it cannot run here: spare the fetch of its config.
            reason = check_compatibility(parsed.platform, host)
            if reason is not None:
                rejected.append(Rejection(str(reference), reason))
                continue
        else:
            unparsed += 1
            if unparsed > UNPARSED_TAG_LIMIT:
                continue
        remote = client.inspect(reference, host.arch)
        if remote is None:
            continue
        if labels.CHAIN in remote.labels:
            candidate = candidate_from_labels(
                str(reference), remote.labels, remote.created, REGISTRY, wanted
            )
        else:
            candidate = candidate_from_tag(reference, remote.created, REGISTRY, wanted)
        if candidate is not None:
            found.append(candidate)
    return found
