"""The OCI distribution client: parsing, credentials, and real ``docker-registry`` servers
(anonymous, htpasswd basic auth, and the bearer-token flow with a token service)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from jetforge.core.tags import ImageRef, parse_image_ref
from jetforge.errors import RegistryError
from jetforge.host.credentials import (
    DOCKER_HUB,
    Credentials,
    CredentialStore,
    credentials_from_entry,
    parse_helper_output,
)
from jetforge.host.process import Completed
from jetforge.host.registry import (
    RegistryClient,
    RegistryLocation,
    parse_challenge,
    parse_registry_location,
    registry_locations,
    registry_scheme,
)
from support.engines import Registry, free_port, start_registry

# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "scheme"),
    [
        ("127.0.0.1:5000", "http"),
        ("127.3.2.1", "http"),
        ("localhost:5000", "http"),
        ("localhost", "http"),
        ("[::1]:5000", "http"),
        ("nvcr.io", "https"),
        ("docker.io", "https"),
        ("10.0.0.5:5000", "https"),
        ("registry.local:5000", "https"),
    ],
)
def test_scheme_is_http_only_for_loopback(host, scheme):
    assert registry_scheme(host) == scheme


@pytest.mark.parametrize(
    ("text", "host", "namespace"),
    [
        ("127.0.0.1:5000/team", "127.0.0.1:5000", "team"),
        ("127.0.0.1:5000", "127.0.0.1:5000", ""),
        ("http://127.0.0.1:5000/team/", "127.0.0.1:5000", "team"),
        ("nvcr.io/nvidia/l4t", "nvcr.io", "nvidia/l4t"),
        ("localhost/ns", "localhost", "ns"),
        ("dustynv", DOCKER_HUB, "dustynv"),
        ("docker.io/dustynv", DOCKER_HUB, "dustynv"),
        ("index.docker.io/dustynv", DOCKER_HUB, "dustynv"),
    ],
)
def test_registry_locations_are_parsed(text, host, namespace):
    assert parse_registry_location(text) == RegistryLocation(host, namespace)


def test_repository_of_a_location():
    assert parse_registry_location("127.0.0.1:5000/team").repository("fb") == ImageRef(
        "127.0.0.1:5000/team/fb"
    )
    assert parse_registry_location("127.0.0.1:5000").repository("fb") == ImageRef(
        "127.0.0.1:5000/fb"
    )
    assert parse_registry_location("docker.io").repository("ubuntu") == ImageRef(
        "docker.io/library/ubuntu"
    )


def test_environment_replaces_configured_registries():
    configured = ["127.0.0.1:5000/a"]
    assert registry_locations(configured, {}) == (RegistryLocation("127.0.0.1:5000", "a"),)
    env = {"JETFORGE_REGISTRIES": "nvcr.io/nvidia, dustynv,"}
    assert registry_locations(configured, env) == (
        RegistryLocation("nvcr.io", "nvidia"),
        RegistryLocation(DOCKER_HUB, "dustynv"),
    )


def test_bearer_and_basic_challenges_are_parsed():
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/ubuntu:pull"'
    )
    assert parse_challenge(header) == (
        "bearer",
        {
            "realm": "https://auth.docker.io/token",
            "service": "registry.docker.io",
            "scope": "repository:library/ubuntu:pull",
        },
    )
    assert parse_challenge('Basic realm="jetforge"') == ("basic", {"realm": "jetforge"})
    assert parse_challenge("") == ("", {})


def test_credentials_from_config_entries():
    encoded = base64.b64encode(b"user:pa:ss").decode()
    assert credentials_from_entry({"auth": encoded}) == Credentials("user", "pa:ss")
    assert credentials_from_entry({"username": "u", "password": "p"}) == Credentials("u", "p")
    assert credentials_from_entry({"identitytoken": "t"}) == Credentials(identity_token="t")
    assert credentials_from_entry({}) is None
    assert credentials_from_entry({"auth": "%%%"}) is None


def test_credential_helper_output():
    assert parse_helper_output('{"ServerURL":"h","Username":"u","Secret":"s"}') == Credentials(
        "u", "s"
    )
    assert parse_helper_output('{"Username":"<token>","Secret":"t"}') == Credentials(
        identity_token="t"
    )
    assert parse_helper_output("credentials not found in native keychain") is None


def write_docker_config(directory: Path, data: dict) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return {"DOCKER_CONFIG": str(directory), "HOME": str(directory / "home")}


def test_credentials_come_from_docker_config_auths(tmp_path):
    env = write_docker_config(
        tmp_path,
        {
            "auths": {
                "https://127.0.0.1:5000": {"auth": base64.b64encode(b"a:b").decode()},
                "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
            }
        },
    )
    store = CredentialStore(env)
    assert store.lookup("127.0.0.1:5000") == Credentials("a", "b")
    assert store.lookup(DOCKER_HUB) == Credentials("hub", "pw")
    assert store.lookup("nvcr.io") is None


class RecordingRunner:
    """Answers ``docker-credential-*`` calls and records them (unit tests only)."""

    def __init__(self, answers: dict[str, Completed]) -> None:
        self.answers = answers
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def __call__(self, argv, *, env=None, cwd=None, input_text=None, timeout=None, on_output=None):
        self.calls.append((tuple(argv), input_text))
        return self.answers.get(argv[0], Completed(tuple(argv), 127, "", "not found"))


def test_credential_helpers_are_asked_before_auths(tmp_path):
    env = write_docker_config(
        tmp_path,
        {
            "credHelpers": {"nvcr.io": "ngc"},
            "credsStore": "desktop",
            "auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"file:pw").decode()}},
        },
    )
    runner = RecordingRunner(
        {
            "docker-credential-ngc": Completed(
                (), 0, '{"Username":"$oauthtoken","Secret":"k"}', ""
            ),
            "docker-credential-desktop": Completed((), 1, "credentials not found", ""),
        }
    )
    store = CredentialStore(env, runner)
    assert store.lookup("nvcr.io") == Credentials("$oauthtoken", "k")
    # The default store has nothing for this host: the file's entry is used.
    assert store.lookup("127.0.0.1:5000") == Credentials("file", "pw")
    assert store.lookup("docker.io") is None
    assert runner.calls == [
        (("docker-credential-ngc", "get"), "nvcr.io"),
        (("docker-credential-desktop", "get"), "127.0.0.1:5000"),
        (("docker-credential-desktop", "get"), "https://index.docker.io/v1/"),
    ]


def test_closed_port_is_a_registry_error_in_one_line():
    client = RegistryClient(CredentialStore({}), timeout=5)
    with pytest.raises(RegistryError) as caught:
        client.list_tags(parse_image_ref(f"127.0.0.1:{free_port()}/team/fb"))
    assert "cannot connect (Connection refused)" in str(caught.value)
    assert "\n" not in str(caught.value)


# --- real registries ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_program() -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("needs docker-registry (apt-get install -y docker-registry)")


@dataclass
class Uploader:
    """Puts blobs and manifests into a registry through its HTTP API."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)

    def blob(self, path: str, data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = requests.post(f"{self.base}/v2/{path}/blobs/uploads/", headers=self.headers)
        assert started.status_code == 202, started.text
        location = requests.compat.urljoin(self.base, started.headers["Location"])
        joiner = "&" if "?" in location else "?"
        put = requests.put(
            f"{location}{joiner}digest={digest}",
            data=data,
            headers={**self.headers, "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        return {"digest": digest, "size": len(data)}

    def manifest(self, path: str, reference: str, document: dict[str, object]) -> str:
        data = json.dumps(document).encode()
        response = requests.put(
            f"{self.base}/v2/{path}/manifests/{reference}",
            data=data,
            headers={**self.headers, "Content-Type": str(document["mediaType"])},
        )
        assert response.status_code == 201, response.text
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def image(self, path: str, tag: str, arch: str, labels: dict[str, str]) -> str:
        """An image with one empty layer, the given architecture and labels."""
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w"):
            pass
        layer_blob = gzip.compress(layer.getvalue(), mtime=0)
        config = {
            "architecture": arch,
            "os": "linux",
            "created": "2025-02-03T04:05:06Z",
            "config": {"Labels": labels},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()],
            },
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **self.blob(path, json.dumps(config).encode()),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **self.blob(path, layer_blob),
                }
            ],
        }
        return self.manifest(path, tag, manifest)


@pytest.fixture
def open_registry(tmp_path, registry_program) -> Iterator[Registry]:
    server, process = start_registry(tmp_path, auth=False)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def basic_registry(tmp_path, registry_program) -> Iterator[Registry]:
    server, process = start_registry(tmp_path, auth=True)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def basic_header(server: Registry) -> dict[str, str]:
    pair = base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def anonymous_client() -> RegistryClient:
    return RegistryClient(CredentialStore({"HOME": "/nonexistent"}), timeout=10)


@pytest.mark.process
def test_tags_manifest_and_config_from_an_open_registry(open_registry):
    upload = Uploader(f"http://{open_registry.address}")
    labels = {"jetforge.chain": "fa,fb", "jetforge.platform": "cuda-12.8 ubuntu-24.04 x86_64"}
    digest = upload.image("team/fb", "x86_64-cu128-24.04", "amd64", labels)
    upload.image("team/fb", "other", "amd64", {})
    client = anonymous_client()
    repository = parse_image_ref(f"{open_registry.address}/team/fb")
    assert sorted(client.list_tags(repository)) == ["other", "x86_64-cu128-24.04"]
    remote = client.inspect(repository.with_tag("x86_64-cu128-24.04"), "x86_64")
    assert remote is not None
    assert remote.labels == labels
    assert remote.architecture == "amd64"
    assert remote.created == "2025-02-03T04:05:06Z"
    assert remote.digest == digest
    assert client.list_tags(parse_image_ref(f"{open_registry.address}/team/absent")) == []
    assert client.inspect(repository.with_tag("absent"), "x86_64") is None


@pytest.mark.process
def test_index_entry_of_the_platform_architecture_is_chosen(open_registry):
    upload = Uploader(f"http://{open_registry.address}")
    entries = []
    for arch in ("amd64", "arm64"):
        digest = upload.image("multi", f"only-{arch}", arch, {"arch": arch})
        size = len(
            requests.get(
                f"http://{open_registry.address}/v2/multi/manifests/{digest}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            ).content
        )
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    upload.manifest(
        "multi",
        "both",
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        },
    )
    client = anonymous_client()
    both = parse_image_ref(f"{open_registry.address}/multi:both")
    arm = client.inspect(both, "aarch64")
    intel = client.inspect(both, "x86_64")
    assert arm is not None
    assert intel is not None
    assert (arm.labels, arm.architecture, arm.digest) == (
        {"arch": "arm64"},
        "arm64",
        entries[1]["digest"],
    )
    assert (intel.labels, intel.architecture) == ({"arch": "amd64"}, "amd64")
    assert client.inspect(both, "riscv64") is None


@pytest.mark.process
def test_basic_auth_with_docker_config_and_a_credential_helper(basic_registry, tmp_path):
    upload = Uploader(f"http://{basic_registry.address}", basic_header(basic_registry))
    upload.image("team/fb", "r36.4.0", "arm64", {"x": "1"})
    repository = parse_image_ref(f"{basic_registry.address}/team/fb")

    with pytest.raises(RegistryError) as caught:
        anonymous_client().list_tags(repository)
    assert f"not authorized for team/fb (log in with 'docker login {basic_registry.address}')" in (
        str(caught.value)
    )

    pair = base64.b64encode(f"{basic_registry.user}:{basic_registry.password}".encode()).decode()
    env = write_docker_config(
        tmp_path / "plain", {"auths": {basic_registry.address: {"auth": pair}}}
    )
    client = RegistryClient(CredentialStore(env), timeout=10)
    assert client.list_tags(repository) == ["r36.4.0"]
    assert client.inspect(repository.with_tag("r36.4.0"), "aarch64") is not None

    # A real credential helper program on PATH, run through jetforge's process runner.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = json.dumps(
        {
            "ServerURL": basic_registry.address,
            "Username": basic_registry.user,
            "Secret": basic_registry.password,
        }
    )
    helper = bin_dir / "docker-credential-jftest"
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$server" >> {tmp_path / "asked"}\n'
        f'[ "$1" = get ] && [ "$server" = "{basic_registry.address}" ] && '
        f"echo '{answer}' && exit 0\n"
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(0o755)
    env = write_docker_config(
        tmp_path / "helper",
        {"credHelpers": {basic_registry.address: "jftest"}, "auths": {}},
    )
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    client = RegistryClient(CredentialStore(env), timeout=10)
    assert client.list_tags(repository) == ["r36.4.0"]
    assert (tmp_path / "asked").read_text().split() == [basic_registry.address]


# --- bearer tokens: docker-registry with token auth and a token service -------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _libtrust_key_id(public_der: bytes) -> str:
    """The key id docker-registry gives a public key (base32 of a truncated sha256)."""
    text = base64.b32encode(hashlib.sha256(public_der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass
class TokenService:
    """Issues RS256 JWTs the way Docker Hub's and NGC's token services do."""

    key: Path
    key_id: str
    service: str
    issuer: str
    user: str
    password: str
    requests: list[dict[str, object]] = field(default_factory=list)

    def token(self, scope: str, *, granted: bool) -> str:
        now = int(time.time())
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        claims = {
            "iss": self.issuer,
            "sub": self.user if granted else "",
            "aud": self.service,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [{"type": kind, "name": name, "actions": actions.split(",")}]
            if granted
            else [],
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": self.key_id}
        signed = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signed.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signed}.{_b64url(signature)}"


@dataclass
class BearerRegistry:
    address: str
    tokens: TokenService


@pytest.fixture
def bearer_registry(tmp_path, registry_program) -> Iterator[BearerRegistry]:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=jetforge"),
        ],
        capture_output=True,
        check=True,
    )
    public = subprocess.run(
        f"openssl x509 -in {cert} -pubkey -noout | openssl pkey -pubin -outform DER",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout
    tokens = TokenService(
        key, _libtrust_key_id(public), "jetforge-registry", "jetforge-issuer", "jf", "secret"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            given = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(b"jf:secret").decode()
            tokens.requests.append({**query, "authorized": given == expected})
            body = json.dumps(
                {"token": tokens.token(query.get("scope", ""), granted=given == expected)}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    token_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=token_server.serve_forever, daemon=True).start()
    port = free_port()
    (tmp_path / "config.yml").write_text(
        "\n".join(
            [
                "version: 0.1",
                "log: {level: error}",
                f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}",
                f"http: {{addr: 127.0.0.1:{port}}}",
                "auth:",
                "  token:",
                f"    realm: http://127.0.0.1:{token_server.server_port}/token",
                f"    service: {tokens.service}",
                f"    issuer: {tokens.issuer}",
                f"    rootcertbundle: {cert}",
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(tmp_path / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    try:
        yield BearerRegistry(f"127.0.0.1:{port}", tokens)
    finally:
        process.terminate()
        process.wait(timeout=10)
        token_server.shutdown()
        token_server.server_close()


@pytest.mark.process
def test_bearer_token_flow_with_credentials(bearer_registry, tmp_path):
    address = bearer_registry.address
    push = bearer_registry.tokens.token("repository:nvidia/fb:pull,push", granted=True)
    upload = Uploader(f"http://{address}", {"Authorization": f"Bearer {push}"})
    upload.image("nvidia/fb", "r36.4.0-cu126-22.04", "arm64", {"jetforge.chain": "fb"})
    repository = parse_image_ref(f"{address}/nvidia/fb")

    # Anonymous: the token service answers, but the token grants nothing.
    with pytest.raises(RegistryError, match="not authorized for nvidia/fb"):
        anonymous_client().list_tags(repository)

    pair = base64.b64encode(b"jf:secret").decode()
    env = write_docker_config(tmp_path / "docker", {"auths": {address: {"auth": pair}}})
    client = RegistryClient(CredentialStore(env), timeout=10)
    assert client.list_tags(repository) == ["r36.4.0-cu126-22.04"]
    remote = client.inspect(repository.with_tag("r36.4.0-cu126-22.04"), "aarch64")
    assert remote is not None
    assert remote.labels == {"jetforge.chain": "fb"}
    asked = bearer_registry.tokens.requests
    assert asked[-1] == {
        "scope": "repository:nvidia/fb:pull",
        "service": "jetforge-registry",
        "authorized": True,
    }
    # One token per repository and client: tags, manifest and blob share it.
    assert sum(1 for request in asked if request["authorized"]) == 1
