"""Extra certificate authorities for builds and tests, with no change to any Dockerfile.

When the host trusts extra authorities (``--ca-bundle``, or ``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE``, ``PIP_CERT`` set), the chain starts with a small generated stage
that copies the bundle into the image and points pip, requests, curl, git and Node at it.
The image then trusts what the host that built it trusts; the stage's key covers the
bundle's content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from jetforge.errors import UsageError

BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
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


def find_bundle(flag: str | None, env: Mapping[str, str]) -> Path | None:
    """The CA bundle to trust: ``--ca-bundle``, else the first bundle variable that is set."""
    if flag:
        path = Path(flag)
        if not path.is_file():
            raise UsageError(f"--ca-bundle: no such file: {flag}")
        return path
    for variable in BUNDLE_VARIABLES:
        value = env.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return None


def prepare_trust_context(bundle: Path, cache_dir: Path) -> Path:
    """Write the trust stage's build context (Dockerfile and bundle); return its directory."""
    data = bundle.read_bytes()
    directory = cache_dir / "trust" / hashlib.sha256(data).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(TRUST_DOCKERFILE, encoding="utf-8")
    (directory / "ca-bundle.crt").write_bytes(data)
    return directory
