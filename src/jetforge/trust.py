"""Extra certificate authorities for builds and tests, with no change to any Dockerfile.

The extra authorities are the certificates of the host's bundle (``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE``, ``PIP_CERT``) and of ``--ca-bundle`` that are not among the distro's
own roots (``/usr/share/ca-certificates``; where there is no such directory, certifi's
roots): the local additions, such as a company's or a TLS proxy's authority. A host whose
bundle is just the distro's gets no trust stage, so its stages match other machines'.
With extras, the chain starts with a small generated stage that installs a bundle of
public roots (certifi's) plus the extras and points pip, requests, curl, git and Node at
it: the image trusts what it trusted before and the extras, not the extras alone. The
stage's key covers that bundle, so it is the same on every machine with the same extras.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jetforge.errors import UsageError

BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
DISTRO_ROOTS = Path("/usr/share/ca-certificates")
BUNDLE_PATH = "/usr/local/share/jetforge/ca-bundle.crt"
TRUST_DOCKERFILE = f"""ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY ca-bundle.crt {BUNDLE_PATH}
ENV SSL_CERT_FILE={BUNDLE_PATH} \\
    REQUESTS_CA_BUNDLE={BUNDLE_PATH} \\
    PIP_CERT={BUNDLE_PATH} \\
    CURL_CA_BUNDLE={BUNDLE_PATH} \\
    GIT_SSL_CAINFO={BUNDLE_PATH} \\
    NODE_EXTRA_CA_CERTS={BUNDLE_PATH}
"""
_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle the host trusts, and where it was named (the flag or a variable)."""

    path: Path
    source: str


def find_bundles(flag: str | None, env: Mapping[str, str]) -> list[Bundle]:
    """The CA bundles to look at: the first bundle variable set, and ``--ca-bundle``
    (whose authorities come on top of the host's)."""
    found = []
    for variable in BUNDLE_VARIABLES:
        value = env.get(variable)
        if value and Path(value).is_file():
            found.append(Bundle(Path(value), variable))
            break
    if flag:
        path = Path(flag)
        if not path.is_file():
            raise UsageError(f"--ca-bundle: no such file: {flag}")
        found.append(Bundle(path, "--ca-bundle"))
    return found


def pem_certificates(text: str) -> list[str]:
    """The PEM certificates of a bundle, each checked to decode."""
    found = []
    rest = text
    while _BEGIN in rest:
        start = rest.index(_BEGIN)
        end = rest.find(_END, start)
        if end < 0:
            raise ValueError("a certificate has no END line")
        block = rest[start : end + len(_END)]
        ssl.PEM_cert_to_DER_cert(block)
        found.append(block)
        rest = rest[end + len(_END) :]
    return found


def _fingerprints(blocks: list[str]) -> set[str]:
    return {hashlib.sha256(ssl.PEM_cert_to_DER_cert(block)).hexdigest() for block in blocks}


def known_roots(distro_roots: Path = DISTRO_ROOTS) -> set[str]:
    """Fingerprints of the roots everyone has: the distro's, else certifi's."""
    files = sorted(distro_roots.rglob("*.crt")) if distro_roots.is_dir() else []
    if not files:
        import certifi

        files = [Path(certifi.where())]
    blocks = []
    for file in files:
        try:
            blocks += pem_certificates(file.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError):
            continue
    return _fingerprints(blocks)


def extra_certificates(bundles: list[Bundle], distro_roots: Path = DISTRO_ROOTS) -> list[str]:
    """The bundles' certificates beyond the roots everyone has, each once, in order. A
    file without valid PEM certificates is an error naming where it came from."""
    known = known_roots(distro_roots) if bundles else set()
    extras: dict[str, str] = {}
    for bundle in bundles:
        try:
            blocks = pem_certificates(bundle.path.read_text(encoding="utf-8", errors="strict"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise UsageError(
                f"{bundle.source}: {bundle.path} is not a bundle of PEM certificates ({error})"
            ) from None
        if not blocks:
            raise UsageError(f"{bundle.source}: {bundle.path} holds no PEM certificate")
        for block in blocks:
            fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(block)).hexdigest()
            if fingerprint not in known:
                extras.setdefault(fingerprint, block)
    return list(extras.values())


def prepare_trust_context(extras: list[str], cache_dir: Path) -> Path:
    """Write the trust stage's build context (Dockerfile, and certifi's public roots plus
    ``extras`` as its bundle); return its directory."""
    import certifi

    data = Path(certifi.where()).read_text(encoding="utf-8").rstrip("\n") + "\n"
    data += "".join(f"{block}\n" for block in extras)
    directory = cache_dir / "trust" / hashlib.sha256(data.encode()).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(TRUST_DOCKERFILE, encoding="utf-8")
    (directory / "ca-bundle.crt").write_text(data, encoding="utf-8")
    return directory
