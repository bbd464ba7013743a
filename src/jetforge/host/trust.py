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
The bundle goes to ``/usr/local/share/ca-certificates`` with mode 0644, so every user of
the image reads it, and ``update-ca-certificates`` in a later stage keeps the extras.

Finding the extras reads every root certificate of the distro; :func:`trust_context`
remembers its answer (a stash file, :mod:`jetforge.host.stash`) with the stamps of every file
and directory it read, and reads again only when one of them changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jetforge.errors import UsageError
from jetforge.host.files import MIB, UnreadableFileError, file_kind, read_regular
from jetforge.host.stash import (
    file_stamp,
    is_settled,
    read_private,
    read_stash,
    write_private,
    write_stash,
)

# ssl and certifi are imported where a bundle is read: a run whose answer is remembered
# needs neither (start-up time).

BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
DISTRO_ROOTS = Path("/usr/share/ca-certificates")
BUNDLE_PATH = "/usr/local/share/ca-certificates/jetforge-ca-bundle.crt"
BUNDLE_MODE = 0o644  # read by every user of the image (COPY keeps the context's mode)
BUNDLE_LIMIT = 16 * MIB  # a host's whole bundle is well under 1 MiB
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
            raise UsageError(f"--ca-bundle: {_not_a_file(path)}")
        found.append(Bundle(path, "--ca-bundle"))
    return found


def _not_a_file(path: Path) -> str:
    """Why ``path``, not a regular file, cannot be a bundle: missing, or what it is."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return f"no such file: {path}"
    return f"{path} is {file_kind(mode)}; it must be a regular file of PEM certificates"


def pem_certificates(text: str) -> list[str]:
    """The PEM certificates of a bundle, each a BEGIN/END CERTIFICATE block whose body is
    base64 and nothing else (:class:`ValueError` when one is not)."""
    found: list[str] = []
    rest = text
    while _BEGIN in rest:
        start = rest.index(_BEGIN)
        end = rest.find(_END, start)
        if end < 0:
            raise ValueError("a certificate has no END line")
        _check_body(rest[start + len(_BEGIN) : end], len(found) + 1)
        found.append(rest[start : end + len(_END)])
        rest = rest[end + len(_END) :]
    return found


def _check_body(body: str, number: int) -> None:
    """The body of certificate ``number`` is base64 that decodes to something: the
    lenient decoder behind :func:`ssl.PEM_cert_to_DER_cert` skips any other character."""
    try:
        decoded = base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error as error:
        raise ValueError(f"certificate {number}'s body is not base64: {error}") from None
    if not decoded:
        raise ValueError(f"certificate {number} is empty")


def _der(block: str) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(block)


def _fingerprints(blocks: list[str]) -> set[str]:
    return {hashlib.sha256(_der(block)).hexdigest() for block in blocks}


def _root_files(distro_roots: Path) -> list[Path]:
    """The files of the roots everyone has: the distro's, else certifi's."""
    files = sorted(distro_roots.rglob("*.crt")) if distro_roots.is_dir() else []
    if not files:
        import certifi

        files = [Path(certifi.where())]
    return files


def known_roots(distro_roots: Path = DISTRO_ROOTS) -> set[str]:
    """Fingerprints of the roots everyone has: the distro's, else certifi's."""
    files = _root_files(distro_roots)
    blocks = []
    for file in files:
        try:
            data = read_regular(file, "root certificate", BUNDLE_LIMIT)
            blocks += pem_certificates(data.decode("utf-8", errors="replace"))
        except (UnreadableFileError, ValueError):
            continue
    return _fingerprints(blocks)


def extra_certificates(bundles: list[Bundle], distro_roots: Path = DISTRO_ROOTS) -> list[str]:
    """The bundles' certificates beyond the roots everyone has, each once, in order. A
    file without valid PEM certificates is an error naming where it came from."""
    known = known_roots(distro_roots) if bundles else set()
    extras: dict[str, str] = {}
    for bundle in bundles:
        try:
            data = read_regular(bundle.path, "bundle of PEM certificates", BUNDLE_LIMIT)
            blocks = pem_certificates(data.decode("utf-8"))
        except UnreadableFileError as error:
            raise UsageError(f"{bundle.source}: {bundle.path} {error.problem}") from None
        except (UnicodeDecodeError, ValueError) as error:
            raise UsageError(
                f"{bundle.source}: {bundle.path} is not a bundle of PEM certificates ({error})"
            ) from None
        if not blocks:
            raise UsageError(f"{bundle.source}: {bundle.path} holds no PEM certificate")
        for block in blocks:
            fingerprint = hashlib.sha256(_der(block)).hexdigest()
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
    write_private(directory / "Dockerfile", TRUST_DOCKERFILE.encode("utf-8"))
    write_private(directory / "ca-bundle.crt", data.encode("utf-8"), mode=BUNDLE_MODE)
    return directory


def _is_own_context(directory: Path) -> bool:
    """Whether ``directory`` is a trust context this user wrote: files no one else may
    write, with jetforge's Dockerfile (it is built into every chain; a bundle someone else
    wrote would make every build trust their authority) and a bundle images can read."""
    dockerfile = read_private(directory / "Dockerfile")
    bundle = directory / "ca-bundle.crt"
    return (
        dockerfile == TRUST_DOCKERFILE.encode("utf-8")
        and read_private(bundle) is not None
        and stat.S_IMODE(bundle.stat().st_mode) == BUNDLE_MODE
    )


def trust_context(
    flag: str | None, env: Mapping[str, str], cache_dir: Path, distro_roots: Path = DISTRO_ROOTS
) -> Path | None:
    """The trust stage's context for the host's bundles and ``--ca-bundle`` (``flag``), or
    None when they add nothing to the roots everyone has. The answer is remembered under
    ``cache_dir`` with the stamps of what it was computed from (the bundles, every root
    file and directory, certifi's bundle), and used while every stamp is as it was."""
    bundles = find_bundles(flag, env)
    if not bundles:
        return None
    memo = cache_dir / "trust" / "answer.json"
    question = [[str(bundle.path), bundle.source] for bundle in bundles]
    started = time.time_ns()
    kept = read_stash(memo)
    try:
        if (
            isinstance(kept, dict)
            and kept["question"] == question
            and all(_stamp_list(path) == stamp for path, stamp in kept["inputs"])
        ):
            answer = kept["answer"]
            if answer is None:
                return None
            if _is_own_context(Path(answer)):
                return Path(answer)
    except (ValueError, KeyError, TypeError):
        pass  # nothing remembered, or something else: read the bundles
    import certifi

    inputs = [str(bundle.path) for bundle in bundles]
    inputs += [str(path) for path in _root_files(distro_roots)]
    inputs += [certifi.where(), str(distro_roots)]
    inputs += [directory for directory, _, _ in os.walk(distro_roots)]
    stamps = [(path, _stamp_list(path)) for path in inputs]
    extras = extra_certificates(bundles, distro_roots)
    context = prepare_trust_context(extras, cache_dir) if extras else None
    if all(is_settled(stamp, started) for _, stamp in stamps):
        answer = str(context) if context else None
        write_stash(memo, {"question": question, "inputs": stamps, "answer": answer})
    return context


def _stamp_list(path: str) -> list[int] | None:
    stamp = file_stamp(path)
    return None if stamp is None else list(stamp)
