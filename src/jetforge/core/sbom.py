"""An SPDX 2.3 JSON document for a final image, made offline from its lock.

The image is the package the document describes; it contains every Debian/Ubuntu
package, Python distribution and Python interpreter that the base image and the stages
put in it (what a stage removed is left out; a package a later stage upgraded appears with
its last version). The same lock gives the same document, byte for byte: the creation time
is the one the image's labels carry and the order is sorted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote

from jetforge import __version__
from jetforge.core.inventory import Deb, Distribution, Interpreter, Inventory, canonical_name
from jetforge.core.lockfile import Lock

SPDX_VERSION = "SPDX-2.3"
NAMESPACE_ROOT = "https://spdx.org/spdxdocs/jetforge"
NOASSERTION = "NOASSERTION"
IMAGE_ID = "SPDXRef-Image"


def spdx_problem(text: str) -> str:
    """What keeps ``text`` from being an SPDX 2.3 JSON document ("" when nothing): not
    JSON, not an object, or another ``spdxVersion``. A record jetforge reads back is
    checked so before it is shown as the image's bill of materials."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return f"is not JSON ({error.msg} at line {error.lineno})"
    except RecursionError:
        return "is not JSON it can read (nested too deeply)"
    if not isinstance(document, dict):
        return f"is JSON {type(document).__name__}, not an object"
    version = document.get("spdxVersion")
    if version != SPDX_VERSION:
        return f"has spdxVersion {json.dumps(version)[:40]}, not {SPDX_VERSION!r}"
    return ""


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # "deb", "pypi" or "python"
    name: str
    version: str
    purl: str
    origin: str  # the stage (or base image) that put it there
    sha256: str = ""  # of the file it was installed from, when recorded
    url: str = ""  # where that file came from


def spdx_document(lock: Lock, created: str) -> dict[str, object]:
    """The SPDX 2.3 document of ``lock``'s final image; ``created`` is an ISO 8601 UTC
    time (``2026-01-02T03:04:05Z``)."""
    final = lock.plan.final_image
    entries = _contents(lock)
    packages: list[dict[str, object]] = [
        {
            "SPDXID": IMAGE_ID,
            "name": str(final),
            "versionInfo": lock.final_id or NOASSERTION,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "CONTAINER",
            "comment": f"container image built by jetforge from the chain "
            f"{', '.join(lock.plan.chain)} on {lock.plan.base_image}",
        }
    ]
    relationships: list[dict[str, str]] = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": IMAGE_ID,
        }
    ]
    for number, entry in enumerate(entries, start=1):
        identifier = f"SPDXRef-{entry.kind}-{_id_part(entry.name)}-{number}"
        packages.append(
            {
                "SPDXID": identifier,
                "name": entry.name,
                "versionInfo": entry.version,
                "downloadLocation": entry.url or NOASSERTION,
                **(
                    {"checksums": [{"algorithm": "SHA256", "checksumValue": entry.sha256}]}
                    if entry.sha256
                    else {}
                ),
                "filesAnalyzed": False,
                "licenseConcluded": NOASSERTION,
                "licenseDeclared": NOASSERTION,
                "copyrightText": NOASSERTION,
                "primaryPackagePurpose": "APPLICATION" if entry.kind == "python" else "LIBRARY",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": entry.purl,
                    }
                ],
                "comment": f"installed by {entry.origin}",
            }
        )
        relationships.append(
            {
                "spdxElementId": IMAGE_ID,
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": identifier,
            }
        )
    digest = (lock.final_id or "unknown").rpartition(":")[2]
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": str(final),
        "documentNamespace": f"{NAMESPACE_ROOT}/{quote(final.repository, safe='')}-{digest}",
        "creationInfo": {
            "created": created,
            "creators": [f"Tool: jetforge-{__version__}"],
        },
        "packages": packages,
        "relationships": relationships,
    }


def _contents(lock: Lock) -> list[_Entry]:
    """Every package in the final image, folded from the base through each stage."""
    debs: dict[tuple[str, str], tuple[Deb, str]] = {}
    distributions: dict[tuple[str, str], tuple[Distribution, str]] = {}
    interpreters: dict[str, tuple[Interpreter, str]] = {}
    distro = lock.base.os_id or lock.plan.platform.distro.name
    layers = [(f"the base image {lock.plan.base_image}", lock.base, Inventory())]
    layers += [(f"stage {s.variant}", s.added, s.removed) for s in lock.stages]
    for origin, added, removed in layers:
        distro = added.os_id or distro
        for deb in removed.debs:
            debs.pop((deb.name, deb.architecture), None)
        for found in removed.distributions:
            distributions.pop((found.environment, canonical_name(found.name)), None)
        for deb in added.debs:
            debs[(deb.name, deb.architecture)] = (deb, origin)
        for found in added.distributions:
            distributions[(found.environment, canonical_name(found.name))] = (found, origin)
        for one in added.interpreters:
            interpreters[one.environment] = (one, origin)
    entries = [
        _Entry("deb", deb.name, deb.version, _deb_purl(distro, deb), origin)
        for deb, origin in debs.values()
    ]
    seen: set[tuple[str, str]] = set()
    for found, origin in distributions.values():
        name = canonical_name(found.name)
        if (name, found.version) not in seen:  # the same in two environments: once
            seen.add((name, found.version))
            purl = f"pkg:pypi/{_purl_part(name)}@{_purl_part(found.version)}"
            file = (found.sha256, found.url)
            entries.append(_Entry("pypi", found.name, found.version, purl, origin, *file))
    versions: set[str] = set()
    for one, origin in interpreters.values():
        if one.version not in versions:
            versions.add(one.version)
            purl = f"pkg:generic/python@{_purl_part(one.version)}"
            entries.append(_Entry("python", "python", one.version, purl, origin))
    return sorted(entries, key=lambda e: (e.kind, e.name.lower(), e.version, e.purl))


def _deb_purl(distro: str, deb: Deb) -> str:
    namespace = _purl_part(distro.lower() or "debian")
    purl = f"pkg:deb/{namespace}/{_purl_part(deb.name)}@{_purl_part(deb.version)}"
    return purl + (f"?arch={_purl_part(deb.architecture)}" if deb.architecture else "")


def _purl_part(text: str) -> str:
    return quote(text, safe=".-_~+")


def _id_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "package"
