"""Find, pull or build an image for a package (docs/cli.md, "autotag"): what ``jetforge autotag``
does and ``jetforge run PACKAGE`` uses. Local images first, then the configured
registries (pulled unless the request says not to), then a build (unless it says not to).
Questions, explanations and pull output go to a :class:`Conversation`; nothing here
prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from jetforge.core.resolve import COMMAND_LINE, bind, resolve
from jetforge.errors import FailureError, RegistryError, UnknownPackageError, UsageError
from jetforge.host.credentials import CredentialStore
from jetforge.host.registry import RegistryClient, RegistryLocation, registry_locations
from jetforge.ops.autotag import (
    BUILT,
    LOCAL,
    REGISTRY,
    Choice,
    Wanted,
    find_in_registries,
    find_local,
)
from jetforge.ops.chains import build_chains
from jetforge.ops.planning import BuildRequest
from jetforge.ops.results import is_marked, tested_marker
from jetforge.ops.workspace import Workspace

if TYPE_CHECKING:
    from jetforge.engine.base import Engine
    from jetforge.reporter import Reporter


class Conversation(Protocol):
    """The user's side: questions, the candidates weighed, a pull's output."""

    def confirm(self, question: str) -> bool:
        """Whether the user agrees to ``question`` (pull this? build that?)."""

    def explain(self, choice: Choice) -> None:
        """The candidates passed over and rejected, and why."""

    def output(self, line: str) -> None:
        """One line of a pull."""


@dataclass(frozen=True, slots=True)
class FindRequest:
    """``jetforge autotag``'s options once parsed; ``resume`` reruns the build it starts."""

    name: str
    pull: bool = True
    build: bool = True
    engine: str | None = None
    resume: str = ""


@dataclass(frozen=True, slots=True)
class Found:
    """The image chosen, where it came from (local, registry, built), for which platform
    and why."""

    reference: str
    source: str
    platform: str
    reason: str


def find_or_build(
    request: FindRequest,
    workspace: Workspace,
    conversation: Conversation,
    reporting: Callable[[], AbstractContextManager[Reporter]],
) -> Found:
    """The image for ``request`` on this platform (see the module docstring)."""
    wanted = Wanted(request.name.strip())
    if not wanted.base_name:
        raise UsageError("autotag: NAME is empty")
    # A registry that is not one is refused before any search, in every mode, as a build
    # refuses it. (An image may hold a package this tree does not have: the name is
    # looked up only when nothing was found.)
    locations = registry_locations(workspace.settings.registries, workspace.env)
    platform = workspace.platform
    engine = workspace.engine(request.engine)
    results = workspace.state_dir / "test-results"
    local = find_local(
        engine, wanted, platform, lambda info: is_marked(tested_marker(results, info.id))
    )
    conversation.explain(local)
    if local.chosen is not None:
        reason = f"local image built for {local.chosen.platform}{_among(local)}"
        return Found(local.chosen.reference, LOCAL, str(local.chosen.platform), reason)
    workspace.note(f"no compatible local image holds {wanted.name} ({platform.label})")
    found = _from_registries(request, workspace, conversation, engine, wanted, locations)
    if found is not None:
        return found
    if not request.build:
        _refuse_a_typo(workspace, wanted.name)
        raise FailureError(f"no compatible image for {wanted.name} on {platform.label}")
    # An unknown or unresolvable name fails now, before the question and the build.
    resolve(workspace.catalog, [wanted.name], workspace.env)
    _ = workspace.records_dir  # checked before the question: a build keeps records there
    if not conversation.confirm(f"build {wanted.name} for {platform.label}?"):
        raise FailureError(f"no compatible image for {wanted.name}; not built")
    workspace.note(f"building: {request.resume}" if request.resume else f"building {wanted.name}")
    build = BuildRequest(packages=(wanted.name,), engine=request.engine, resume=request.resume)
    outcomes = list(build_chains(build, workspace, reporting))
    summary = outcomes[-1].summary if outcomes else None
    if summary is None:
        raise FailureError(f"build of {wanted.name} did not produce an image")
    workspace.note(
        f"{summary.outcome} {summary.final_image} "
        f"({summary.stage_counts()}; logs: {outcomes[-1].logs_dir})"
    )
    return Found(summary.final_image, BUILT, platform.label, "nothing compatible found; built")


def _refuse_a_typo(workspace: Workspace, name: str) -> None:
    """A name no package has but close to some is a typo: say so with the closest names.
    (Any other name may be of images built from another tree: no image is the answer.)"""
    try:
        bind(workspace.catalog, name, COMMAND_LINE)
    except UnknownPackageError as error:
        if error.suggestions and not error.broken:
            raise


def _from_registries(
    request: FindRequest,
    workspace: Workspace,
    conversation: Conversation,
    engine: Engine,
    wanted: Wanted,
    locations: Sequence[RegistryLocation],
) -> Found | None:
    """The choice of the registries at ``locations``, pulled when the request and the
    user agree; None when they hold nothing compatible or the user declines the pull."""
    if not locations:
        return None
    client = RegistryClient(
        CredentialStore(workspace.env),
        ca_bundle=workspace.env.get("REQUESTS_CA_BUNDLE") or workspace.env.get("SSL_CERT_FILE"),
    )

    def warn(error: RegistryError) -> None:
        workspace.warn(f"{error}; skipped")

    remote = find_in_registries(client, locations, wanted, workspace.platform, on_problem=warn)
    conversation.explain(remote)
    chosen = remote.chosen
    if chosen is None:
        searched = ", ".join(map(str, locations))
        workspace.note(f"no compatible image of {wanted.name} in {searched}")
        return None
    reason = f"registry image built for {chosen.platform}{_among(remote)}"
    if not request.pull:
        return Found(chosen.reference, REGISTRY, str(chosen.platform), reason)
    if not conversation.confirm(f"pull {chosen.reference}?"):
        return None
    _pull(workspace, conversation, engine, chosen.reference)
    return Found(chosen.reference, REGISTRY, str(chosen.platform), reason + "; pulled")


def _among(choice: Choice) -> str:
    count = len(choice.compatible)
    return f" (newest of {count} compatible)" if count > 1 else ""


def _pull(workspace: Workspace, conversation: Conversation, engine: Engine, reference: str) -> None:
    lines: list[str] = []

    def sink(line: str) -> None:
        lines.append(line)
        conversation.output(line)

    workspace.note(f"pulling {reference}")
    done = engine.pull(reference, sink)
    if done.returncode != 0:
        last = next((line for line in reversed(lines) if line.strip()), "")
        raise FailureError(f"pull of {reference} failed: {last or done.stderr.strip()}")
