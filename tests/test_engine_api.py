"""The engine API client (jetforge.engine.api) against a tiny HTTP server on a unix socket,
and how the engines choose between it and their program."""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetforge.engine import docker as docker_module
from jetforge.engine.api import (
    ENGINE_API,
    LIBPOD_API,
    ApiError,
    EngineApi,
    docker_socket,
    filter_map,
    open_api,
    podman_socket,
)
from jetforge.engine.docker import DockerEngine
from jetforge.engine.podman import PodmanEngine
from jetforge.errors import EngineUnavailableError
from jetforge.host.process import Completed

INSPECT = {
    "Id": "sha256:" + "a" * 64,
    "RepoTags": ["one:1", "two:2"],
    "RepoDigests": ["reg/one@sha256:" + "b" * 64],
    "Created": "2026-01-01T00:00:00.123Z",
    "Architecture": "arm64",
    "Config": {"Labels": {"jetforge.stage-key": "k"}, "Env": ["PATH=/bin", "A=b"]},
    "RootFS": {"Type": "layers", "Layers": ["sha256:l1", "sha256:l2"]},
}

Answer = tuple[int, dict[str, str], bytes]


class FakeApi:
    """An HTTP server on a unix socket that answers from ``answers`` (by method and path,
    without the query) and records each request.
    ``mode``: how bodies are sent: ``length`` (Content-Length), ``chunked``, or ``close``
    (no length: the body ends with the connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answers: dict[tuple[str, str], Answer] = {
            ("GET", "/_ping"): (200, {"Api-Version": "1.41"}, b"OK")
        }
        self.requests: list[tuple[str, str]] = []
        self.mode = "length"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def answer(self, method: str, path: str, status: int, body: object, **headers: str) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[(method, path)] = (status, headers, data)

    def paths(self) -> list[str]:
        return [target for _, target in self.requests if not target.startswith("/_ping")]

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client:
                self._handle(client)

    def _handle(self, client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return
            data += chunk
        method, target, _ = data.split(b"\r\n", 1)[0].decode().split(" ", 2)
        self.requests.append((method, target))
        path = target.partition("?")[0]
        found = self.answers.get((method, path), (404, {}, b'{"message":"no such thing"}'))
        status, headers, body = found
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if self.mode == "chunked":
            pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
            client.sendall(
                f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"
            )
        elif self.mode == "close":
            client.sendall(f"{head}\r\n".encode() + body)
        else:
            client.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[FakeApi]:
    server = FakeApi(tmp_path / "engine.sock")
    yield server
    server.close()


def api_of(server: FakeApi) -> EngineApi:
    found = open_api(str(server.path), ENGINE_API)
    assert found is not None
    return found


class RecordingRunner:
    """Answers every command with ``answer`` and records it."""

    def __init__(self, answer: Completed | None = None) -> None:
        self.answer = answer or Completed((), 0, "", "")
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv, **_: object) -> Completed:
        self.calls.append(tuple(argv))
        return self.answer


# --- negotiation --------------------------------------------------------------------------


def test_the_api_version_comes_from_the_ping(fake_api):
    assert api_of(fake_api).prefix == "/v1.41"


def test_without_a_version_header_the_version_answer_gives_it(fake_api):
    fake_api.answer("GET", "/_ping", 200, b"OK")
    fake_api.answer("GET", "/version", 200, {"ApiVersion": "1.43", "Version": "24.0.7"})
    assert api_of(fake_api).prefix == "/v1.43"


def test_podman_speaks_its_libpod_version(fake_api):
    fake_api.answer("GET", "/_ping", 200, b"OK", **{"Libpod-Api-Version": "4.3.1"})
    found = open_api(str(fake_api.path), LIBPOD_API)
    assert found is not None
    assert found.prefix == "/v4.3.1/libpod"


@pytest.mark.parametrize(
    "ping",
    [
        (500, {"Api-Version": "1.41"}, b"down"),  # an error answer
        (200, {"Api-Version": "1.24"}, b"OK"),  # older than jetforge's queries need
        (200, {"Api-Version": "x.y"}, b"OK"),  # not a version; no /version either
    ],
)
def test_a_socket_that_does_not_answer_as_an_engine_gives_no_api(fake_api, ping):
    fake_api.answers[("GET", "/_ping")] = ping
    assert open_api(str(fake_api.path), ENGINE_API) is None


def test_a_docker_socket_is_no_podman_api(fake_api):
    assert open_api(str(fake_api.path), LIBPOD_API) is None


def test_no_socket_or_not_a_socket_gives_no_api(tmp_path):
    assert open_api(None, ENGINE_API) is None
    assert open_api(str(tmp_path / "missing.sock"), ENGINE_API) is None
    plain = tmp_path / "file"
    plain.write_text("")
    assert open_api(str(plain), ENGINE_API) is None


def test_a_socket_nobody_listens_on_gives_no_api(tmp_path):
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left:
        left.bind(str(path))  # bound, never listening: connections are refused
        assert open_api(str(path), ENGINE_API) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any socket")
def test_a_socket_this_user_may_not_open_gives_no_api(fake_api):
    fake_api.path.chmod(0)
    assert open_api(str(fake_api.path), ENGINE_API) is None


# --- requests -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
def test_inspect_asks_for_the_image_by_name_and_reads_any_body(fake_api, mode):
    fake_api.mode = mode
    fake_api.answer("GET", "/v1.41/images/127.0.0.1:5000/ns/one:1/json", 200, INSPECT)
    assert api_of(fake_api).inspect_image("127.0.0.1:5000/ns/one:1") == INSPECT


def test_an_absent_image_is_none_and_other_errors_raise(fake_api):
    api = api_of(fake_api)
    assert api.inspect_image("missing:1") is None
    fake_api.answer("GET", "/v1.41/images/broken:1/json", 500, {"message": "disk on fire"})
    with pytest.raises(ApiError, match="500: disk on fire"):
        api.inspect_image("broken:1")
    fake_api.answer("GET", "/v1.41/images/odd:1/json", 200, b"<html>")
    with pytest.raises(ApiError, match="not JSON"):
        api.inspect_image("odd:1")
    fake_api.answer("GET", "/v1.41/images/bare:1/json", 200, {"RepoTags": []})
    with pytest.raises(ApiError, match="without an id"):
        api.inspect_image("bare:1")


def test_filters_go_as_one_json_parameter():
    assert filter_map(["label=a", "label=b=c", "reference=x*"]) == {
        "label": ["a", "b=c"],
        "reference": ["x*"],
    }


def test_image_ids_are_listed_with_filters_newest_first_each_once(fake_api):
    listed = [
        {"Id": "sha256:old", "Created": 1},
        {"Id": "sha256:new", "Created": 3},
        {"Id": "sha256:mid", "Created": 2},
        {"Id": "sha256:new", "Created": 3},
    ]
    fake_api.answer("GET", "/v1.41/images/json", 200, listed)
    ids = api_of(fake_api).image_ids(["label=jetforge.stage-key", "label=a=b"])
    assert ids == ["sha256:new", "sha256:mid", "sha256:old"]
    query = urllib.parse.parse_qs(fake_api.paths()[-1].partition("?")[2])
    assert json.loads(query["filters"][0]) == {"label": ["jetforge.stage-key", "a=b"]}


def test_tag_and_remove_name_use_the_api_routes(fake_api):
    fake_api.answer("POST", "/v1.41/images/sha256:abc/tag", 201, b"")
    fake_api.answer("DELETE", "/v1.41/images/reg:5000/x:y", 200, [{"Untagged": "reg:5000/x:y"}])
    api = api_of(fake_api)
    api.tag_image("sha256:abc", "reg:5000/ns/x", "t1")
    api.remove_name("reg:5000/x:y")
    assert fake_api.paths() == [
        "/v1.41/images/sha256:abc/tag?repo=reg%3A5000%2Fns%2Fx&tag=t1",
        "/v1.41/images/reg:5000/x:y",
    ]


def test_a_closed_socket_is_an_error_without_status(fake_api):
    api = api_of(fake_api)
    fake_api.close()
    fake_api.path.unlink()
    with pytest.raises(ApiError) as caught:
        api.inspect_image("one:1")
    assert caught.value.status == 0


# --- the engines' choice ------------------------------------------------------------------


def engine_on(server: FakeApi, runner: RecordingRunner) -> DockerEngine:
    return DockerEngine("docker", "legacy", runner, {}, api_of(server))


def test_the_engine_answers_from_the_api_without_a_process(fake_api):
    for name in ("one:1", "two:2", INSPECT["Id"]):
        fake_api.answer("GET", f"/v1.41/images/{name}/json", 200, INSPECT)
    fake_api.answer("GET", "/v1.41/images/json", 200, [{"Id": INSPECT["Id"], "Created": 1}])
    fake_api.answer("POST", "/v1.41/images/one:1/tag", 201, b"")
    fake_api.answer("DELETE", "/v1.41/images/two:2", 200, [])
    runner = RecordingRunner()
    engine = engine_on(fake_api, runner)
    info = engine.inspect("one:1")
    assert info is not None
    assert (info.id, info.tags, info.architecture, info.created) == (
        INSPECT["Id"],
        ("one:1", "two:2"),
        "arm64",
        "2026-01-01T00:00:00.123Z",
    )
    assert (info.labels, info.env, info.layers) == (
        {"jetforge.stage-key": "k"},
        ("PATH=/bin", "A=b"),
        ("sha256:l1", "sha256:l2"),
    )
    assert info.digests == ("reg/one@sha256:" + "b" * 64,)
    assert engine.list_images(["label=jetforge.stage-key"]) == [info]
    engine.tag("one:1", "three")
    engine.untag("two:2")
    assert runner.calls == []
    assert "/v1.41/images/one:1/tag?repo=three&tag=latest" in fake_api.paths()
    assert "/v1.41/images/two:2" in fake_api.paths()


def test_an_image_gone_between_listing_and_inspection_is_left_out(fake_api):
    fake_api.answer("GET", "/v1.41/images/json", 200, [{"Id": "sha256:gone", "Created": 1}])
    assert engine_on(fake_api, RecordingRunner()).list_images() == []


def test_an_error_answer_falls_back_to_the_program(fake_api):
    fake_api.answer("GET", "/v1.41/images/one:1/json", 500, {"message": "busy"})
    runner = RecordingRunner(Completed((), 0, json.dumps([INSPECT]), ""))
    engine = engine_on(fake_api, runner)
    info = engine.inspect("one:1")
    assert info is not None
    assert info.id == INSPECT["Id"]
    assert runner.calls == [("docker", "image", "inspect", "--", "one:1")]
    assert engine.api is not None  # it answered: asked again next time


def test_an_engine_whose_socket_went_away_asks_its_program_from_then_on(fake_api):
    runner = RecordingRunner(Completed((), 1, "", "Error: No such image"))
    engine = engine_on(fake_api, runner)
    fake_api.close()
    fake_api.path.unlink()
    assert engine.inspect("one:1") is None
    assert engine.api is None
    assert runner.calls == [("docker", "image", "inspect", "--", "one:1")]


def test_a_failed_api_tag_is_retried_by_the_program(fake_api):
    fake_api.answer("POST", "/v1.41/images/one:1/tag", 409, {"message": "conflict"})
    runner = RecordingRunner()
    engine_on(fake_api, runner).tag("one:1", "reg:5000/two:2")
    assert runner.calls == [("docker", "tag", "--", "one:1", "reg:5000/two:2")]


# --- where the socket is ------------------------------------------------------------------


def test_docker_socket_from_docker_host_and_contexts(tmp_path):
    home = {"HOME": str(tmp_path)}
    assert docker_socket(home) == "/var/run/docker.sock"
    assert docker_socket({**home, "DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == (
        "/run/user/1000/docker.sock"
    )
    assert docker_socket({**home, "DOCKER_HOST": "tcp://10.0.0.2:2376"}) is None
    assert docker_socket({**home, "DOCKER_HOST": "ssh://builder"}) is None
    config = tmp_path / ".docker"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"currentContext": "rootless"}))
    assert docker_socket(home) is None  # a context whose endpoint is unknown
    import hashlib

    meta = config / "contexts" / "meta" / hashlib.sha256(b"rootless").hexdigest()
    meta.mkdir(parents=True)
    endpoint = {"Endpoints": {"docker": {"Host": "unix:///run/user/1000/docker.sock"}}}
    (meta / "meta.json").write_text(json.dumps(endpoint))
    assert docker_socket(home) == "/run/user/1000/docker.sock"
    assert docker_socket({**home, "DOCKER_CONTEXT": "default"}) == "/var/run/docker.sock"
    (config / "config.json").write_text("{not json")
    assert docker_socket(home) is None


def test_podman_socket_for_root_users_and_remote_connections():
    assert podman_socket({}, 0) == "/run/podman/podman.sock"
    assert podman_socket({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000) == (
        "/run/user/1000/podman/podman.sock"
    )
    assert podman_socket({}, 1000) is None
    assert podman_socket({"CONTAINER_HOST": "unix:///tmp/p.sock"}, 1000) == "/tmp/p.sock"
    assert podman_socket({"CONTAINER_HOST": "ssh://core@host/run/podman.sock"}, 0) is None
    assert podman_socket({"CONTAINER_CONNECTION": "remote"}, 0) is None


# --- connecting ---------------------------------------------------------------------------

VERSION = json.dumps({"Client": {"Version": "28.2.2"}, "Server": {"Version": "28.2.2"}})


@pytest.fixture
def docker_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose PATH finds a ``docker`` file and no plugin directories."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker"
    program.write_text("#!/bin/sh\nexit 99\n")  # never started: the runner stands in
    program.chmod(0o755)
    monkeypatch.setattr(docker_module, "PLUGIN_DIRS", (str(tmp_path / "plugins"),))
    monkeypatch.setattr(docker_module, "SETTLED_NS", 0)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def test_docker_connects_through_the_api_and_remembers_the_program(
    fake_api, docker_program, tmp_path
):
    env = {**docker_program, "DOCKER_HOST": f"unix://{fake_api.path}"}
    memo = tmp_path / "engines.json"
    runner = RecordingRunner(Completed((), 0, VERSION, ""))
    first = DockerEngine.connect(env, runner, memo=memo)
    assert first.api is not None
    assert [call[:2] for call in runner.calls] == [("docker", "version"), ("docker", "buildx")]
    runner.calls.clear()
    again = DockerEngine.connect(env, runner, memo=memo)
    assert (again.api, again.build_mode) == (first.api, first.build_mode)
    assert runner.calls == []  # nothing started: the daemon answered on its socket
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "docker-buildx").write_text("")
    DockerEngine.connect(env, runner, memo=memo)
    assert [call[:2] for call in runner.calls] == [("docker", "version"), ("docker", "buildx")]


def test_a_build_mode_override_needs_no_detection(fake_api, docker_program):
    env = {
        **docker_program,
        "DOCKER_HOST": f"unix://{fake_api.path}",
        "JETFORGE_BUILD_MODE": "buildkit",
    }
    runner = RecordingRunner()
    engine = DockerEngine.connect(env, runner)
    assert (engine.build_mode, runner.calls) == ("buildkit", [])


@pytest.mark.parametrize(
    "extra",
    [
        {"DOCKER_HOST": "tcp://127.0.0.1:9"},  # remote: the program knows how to get there
        {"JETFORGE_ENGINE_API": "0"},
        {"JETFORGE_DOCKER": "docker"},  # perhaps a wrapper that reaches another daemon
    ],
)
def test_docker_asks_its_program_where_the_api_may_not_be_the_same_engine(
    fake_api, docker_program, extra
):
    env = {**docker_program, "DOCKER_HOST": f"unix://{fake_api.path}", **extra}
    runner = RecordingRunner(Completed((), 0, VERSION, ""))
    engine = DockerEngine.connect(env, runner)
    assert engine.api is None
    assert runner.calls[0][:2] == ("docker", "version")
    engine.inspect("one:1")
    assert runner.calls[-1] == ("docker", "image", "inspect", "--", "one:1")


def test_podman_connects_through_its_service_without_a_process(fake_api, docker_program):
    fake_api.answer("GET", "/_ping", 200, b"OK", **{"Libpod-Api-Version": "4.3.1"})
    (Path(docker_program["PATH"]) / "podman").write_text("")
    (Path(docker_program["PATH"]) / "podman").chmod(0o755)
    env = {**docker_program, "CONTAINER_HOST": f"unix://{fake_api.path}"}
    runner = RecordingRunner(Completed((), 0, "4.3.1", ""))
    engine = PodmanEngine.connect(env, runner)
    assert engine.api is not None
    assert engine.api.prefix == "/v4.3.1/libpod"
    assert runner.calls == []
    fake_api.answer("GET", "/v4.3.1/libpod/images/one:1/json", 200, INSPECT)
    assert engine.inspect("one:1") is not None
    assert runner.calls == []


def test_a_daemon_that_answers_without_its_program_is_no_engine(fake_api, tmp_path):
    env = {"PATH": str(tmp_path), "DOCKER_HOST": f"unix://{fake_api.path}"}
    runner = RecordingRunner(Completed((), 127, "", "docker: not found"))
    with pytest.raises(EngineUnavailableError, match="not installed"):
        DockerEngine.connect({**env, "JETFORGE_BUILD_MODE": "legacy"}, runner)
