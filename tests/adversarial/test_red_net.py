"""A hostile network and hostile config scripts (the red-team run's findings): a registry
that streams without end, trickles its headers, redirects off HTTP or is not there for a
farm; scripts that read through SQLite, answer too much or run out of time. Each is one
line naming what is wrong, never a hang, a traceback or memory exhausted.

The test servers are small HTTP servers on 127.0.0.1 in a thread, stopped at the end; a
hostile one gives up by itself after a while (:data:`GIVE_UP`), so that without its fix a
test fails instead of hanging or filling the machine's memory."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import jetforge.host.stash
from jetforge.core.tags import ImageRef
from jetforge.errors import RegistryError
from jetforge.host.credentials import CredentialStore
from jetforge.host.registry import RegistryClient
from jetforge.ops.executor import BuildOptions
from jetforge.ops.farm.graph import Site
from jetforge.ops.farm.schedule import Farm
from jetforge.reporter import NullReporter
from tests.adversarial.conftest import one_line_error

GIVE_UP = 15.0  # seconds a trickling server goes on before it finishes its answer
CAP = 64 << 20  # bytes an endless body sends before it closes (without the fix: no OOM)
DEADLINE = 2.0  # the client's deadline in these tests
HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"

Behaviour = Callable[[BaseHTTPRequestHandler, threading.Event], None]


def endless(prefix: bytes) -> Behaviour:
    """200, then ``prefix`` and ``a`` without end (until :data:`CAP` or the test ends)."""

    def answer(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(prefix)
        sent, chunk = 0, b"a" * 65536
        while sent < CAP and not stop.is_set():
            handler.wfile.write(chunk)
            sent += len(chunk)

    return answer


def trickled_headers(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A status line, then a header line every 0.2 s (each read of the client's gets
    something in time), finished only after :data:`GIVE_UP` seconds."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    ends = time.monotonic() + GIVE_UP
    while time.monotonic() < ends and not stop.is_set():
        handler.wfile.write(b"X-Slow: 1\r\n")
        handler.wfile.flush()
        time.sleep(0.2)
    handler.wfile.write(b'Content-Length: 11\r\nConnection: close\r\n\r\n{"tags":[]}')


def endless_headers(line: bytes) -> Behaviour:
    """A status line, then ``line`` without end, as fast as the client reads (until
    :data:`CAP` bytes or the test ends): a server that answers, but never readably."""

    def answer(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        sent = 0
        while sent < CAP and not stop.is_set():
            handler.wfile.write(line)
            sent += len(line)

    return answer


def trickled_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Headers at once, then the body a byte every 0.2 s."""
    body = b'{"tags":[]}' + b" " * 200
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    for index in range(len(body)):
        if stop.is_set():
            return
        handler.wfile.write(body[index : index + 1])
        handler.wfile.flush()
        time.sleep(0.2)


def redirect_to(location: str) -> Behaviour:
    def answer(handler: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def challenge(realm: str) -> Behaviour:
    """401 asking for a token from ``realm`` (``{port}``: this server's); the token
    service (``/token``) answers without end."""

    def answer(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        if handler.path.startswith("/token"):
            endless(b'{"token":"')(handler, stop)
            return
        port = handler.server.server_address[1]
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", f'Bearer realm="{realm.format(port=port)}"')
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


class _Server:
    def __init__(self, behaviour: Behaviour) -> None:
        stop = self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with contextlib.suppress(OSError):  # the client went away: what the fix does
                    behaviour(self, stop)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], int]]:
    """``serve(behaviour)``: the port of a server answering every GET so."""
    servers: list[_Server] = []

    def start(behaviour: Behaviour) -> int:
        servers.append(_Server(behaviour))
        return servers[-1].port

    yield start
    for server in servers:
        server.close()


def client() -> RegistryClient:
    return RegistryClient(CredentialStore({"HOME": "/nonexistent"}), timeout=DEADLINE)


# --- 1: every registry request is bounded in time, size and scheme -----------------------


@pytest.mark.parametrize(
    ("behaviour", "ask", "message"),
    [
        (endless(b'{"tags":["'), "tags", "the tag list of ns/nolocal is larger than 8 MiB"),
        (endless(b'{"schemaVersion":2,"x":"'), "inspect", "the manifest of ns/nolocal is larger"),
        (trickled_headers, "tags", f"no answer within {DEADLINE:g} s"),
        (trickled_headers, "inspect", f"no answer within {DEADLINE:g} s"),
        (trickled_body, "tags", f"no answer within {DEADLINE:g} s"),
        (
            endless_headers(b"X-A: aaaa\r\n"),
            "tags",
            "connected, but its answer cannot be read (got more than 100 headers)",
        ),
        (
            endless_headers(b"X-A: " + b"a" * 65536),
            "tags",
            "connected, but its answer cannot be read (got more than 65536 bytes",
        ),
        (redirect_to("file:///etc/passwd"), "tags", "refused a redirect to a non-HTTP URL"),
        (challenge("file:///etc/passwd"), "tags", "refused a token service with a non-HTTP URL"),
    ],
    ids=[
        "endless-tags",
        "endless-manifest",
        "trickled-headers-tags",
        "trickled-headers-manifest",
        "trickled-body",
        "endless-headers",
        "endless-header-line",
        "redirect-to-file",
        "token-service-file",
    ],
)
def test_a_hostile_registry_is_one_error_within_the_deadline(serve, behaviour, ask, message):
    port = serve(behaviour)
    repository = ImageRef(f"127.0.0.1:{port}/ns/nolocal")
    asked = (
        (lambda: client().list_tags(repository))
        if ask == "tags"
        else (lambda: client().inspect(repository.with_tag("latest"), "x86_64"))
    )
    started = time.monotonic()
    with pytest.raises(RegistryError) as raised:
        asked()
    assert time.monotonic() - started < DEADLINE + 3
    assert str(raised.value).startswith(f"registry 127.0.0.1:{port}: {message}"), raised.value


def test_an_endless_token_answer_is_refused_past_its_limit(serve):
    port = serve(challenge("http://127.0.0.1:{port}/token"))
    with pytest.raises(RegistryError) as raised:
        client().list_tags(ImageRef(f"127.0.0.1:{port}/ns/nolocal"))
    assert str(raised.value) == (
        f"registry 127.0.0.1:{port}: token service: the token is larger than 1 MiB"
    )


def test_doctor_says_a_trickling_registry_does_not_answer(serve, jetforge):
    port = serve(trickled_headers)
    started = time.monotonic()
    env = {"JETFORGE_REGISTRIES": f"127.0.0.1:{port}/ns", "JETFORGE_DOCKER": "/nonexistent/docker"}
    result = jetforge("doctor", env=env)
    assert time.monotonic() - started < GIVE_UP - 5
    [line] = [line for line in result.stdout.splitlines() if line.split()[1:2] == ["registry"]]
    url = f"http://127.0.0.1:{port}/v2/"
    assert f"registry 127.0.0.1:{port}/ns at {url}: no answer within 3 s" in line
    assert "Traceback" not in result.stderr


@pytest.mark.engine
@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [
        (endless(b'{"tags":["'), "the tag list of ns/nolocal is larger than 8 MiB"),
        (trickled_headers, f"no answer within {DEADLINE:g} s"),
    ],
    ids=["endless", "trickled"],
)
def test_autotag_skips_a_hostile_registry_in_one_warning(
    jetforge, docker_engine, serve, tree, monkeypatch, behaviour, problem
):
    monkeypatch.setattr("jetforge.host.registry.DEADLINE", DEADLINE)
    port = serve(behaviour)
    root = tree({"nolocal/Dockerfile": HEADER.format("nolocal")})
    env = {"JETFORGE_REGISTRIES": f"127.0.0.1:{port}/ns", "JETFORGE_SHIPPED_PACKAGES": ""}
    started = time.monotonic()
    result = jetforge("autotag", "nolocal", "--no-build", "--package-dirs", str(root), env=env)
    assert time.monotonic() - started < GIVE_UP - 5
    assert result.code == 1, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert warnings == [f"jetforge: warning: registry 127.0.0.1:{port}: {problem}; skipped"]
    assert "Traceback" not in result.stderr


@pytest.mark.engine
def test_a_build_goes_on_without_a_trickling_registry(
    jetforge, docker_engine, image_name, serve, tree, tmp_path
):
    port = serve(trickled_headers)
    salt = uuid.uuid4().hex
    root = tree({"one/Dockerfile": HEADER.format("one") + f"RUN echo {salt} > /salt\n"})
    started = time.monotonic()
    result = jetforge(
        "build", "--package-dirs", str(root), "--distro", "debian:12", "--base", "debian:12",
        "--name", f"{image_name}/", "--logs", str(tmp_path / "logs"), "one",
        env={"JETFORGE_REGISTRIES": f"127.0.0.1:{port}/ns", "JETFORGE_SHIPPED_PACKAGES": ""},
    )  # fmt: skip
    assert time.monotonic() - started < GIVE_UP - 2
    assert result.code == 0, result.stderr
    assert (
        f"jetforge: warning: registry 127.0.0.1:{port}: no answer within 5 s; "
        "not looked at again in this build"
    ) in result.stderr.splitlines()


def test_json_nested_beyond_the_parser_is_invalid_json(serve):
    body = b"[" * 200_000

    def answer(handler: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    port = serve(answer)
    with pytest.raises(RegistryError, match="invalid JSON from"):
        client().list_tags(ImageRef(f"127.0.0.1:{port}/ns/nolocal"))


# --- 2: what a script reads through SQLite is an input -----------------------------------


@pytest.fixture
def settled(monkeypatch):  # type: ignore[no-untyped-def]
    """The index trusts files the moment they are written (the real rule waits a second)."""
    monkeypatch.setattr(jetforge.host.stash, "SETTLED_NS", 0)


def _store(database: Path, version: str) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS v (x TEXT)")
        connection.execute("DELETE FROM v")
        connection.execute("INSERT INTO v VALUES (?)", (version,))
    connection.close()


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "write-ahead-log"])
def test_a_sqlite_database_a_script_reads_is_an_input(tree, run, tmp_path, settled, wal):
    database = tmp_path / "data" / "v.db"
    database.parent.mkdir()
    _store(database, "1.0")
    if wal:
        sqlite3.connect(database).execute("PRAGMA journal_mode=WAL").close()
    script = (
        "def configure(package, platform):\n"
        "    import sqlite3\n"
        f"    db = sqlite3.connect('file:{database}?mode=ro', uri=True)\n"
        "    (version,) = db.execute('SELECT x FROM v').fetchone()\n"
        "    return package.replace(name=f'widget:{version}')\n"
    )
    root = tree({"widget/Dockerfile": HEADER.format("widget"), "widget/config.py": script})
    assert run(root, "list").stdout.split() == ["widget:1.0"]
    if wal:  # the change stays in the log: the database file itself is not written
        keeper = sqlite3.connect(database)
        keeper.execute("PRAGMA wal_autocheckpoint=0")
        keeper.execute("UPDATE v SET x = '2.0'")
        keeper.commit()
    else:
        _store(database, "2.0")
    result = run(root, "list")
    assert result.stdout.split() == ["widget:2.0"], result.stderr
    if wal:
        keeper.close()


# --- 3: a large answer comes back at once, a too large one is one error ------------------


def _notes(megabytes: int) -> str:
    return (
        "def configure(package, platform):\n"
        f"    return package.replace(notes='x' * {megabytes} * 1000 * 1000)\n"
    )


def test_a_large_answer_is_taken_quickly_and_a_too_large_one_is_one_error(tree, run):
    root = tree(
        {
            "big/Dockerfile": HEADER.format("big"),
            "big/config.py": _notes(11),  # about 15 MiB as an answer
            "huge/Dockerfile": HEADER.format("huge"),
            "huge/config.py": _notes(50),
        }
    )
    started = time.monotonic()
    result = run(root, "list", "--strict", env={"JETFORGE_CONFIG_TIMEOUT": "2"})
    assert time.monotonic() - started < 15
    assert result.stdout.split() == ["big"]
    one_line_error(result, 2, "1 package definition(s) have errors")
    assert (
        f"jetforge: warning: {root / 'huge' / 'config.py'}: config script's answer "
        "(its variants) is larger than 16 MiB; package left out (a definition error)"
    ) in result.stderr.splitlines()


def test_a_long_answer_line_is_taken_in_time_linear_in_its_length():
    import sys

    from jetforge.host.process import LineWorker

    size = 100_000_000  # copied over and over, as it was, this took minutes
    program = f"import sys; sys.stdin.readline(); sys.stdout.write('x' * {size} + '\\n')"
    worker = LineWorker([sys.executable, "-c", program])
    try:
        started = time.monotonic()
        assert len(worker.ask("go", timeout=20)) == size
        assert time.monotonic() - started < 10
    finally:
        worker.close()


# --- 4: a script that ran out of time is a definition error, like one that raised --------


def test_a_timed_out_script_is_a_definition_error_like_one_that_raised(tree, run):
    root = tree(
        {
            "loops/Dockerfile": HEADER.format("loops"),
            "loops/config.py": "def configure(package, platform):\n    while True:\n        pass\n",
            "raises/Dockerfile": HEADER.format("raises"),
            "raises/config.py": "def configure(package, platform):\n    raise ValueError('x')\n",
            "good/Dockerfile": HEADER.format("good"),
        }
    )
    timeout = {"JETFORGE_CONFIG_TIMEOUT": "1"}
    listed = run(root, "list", env=timeout)
    assert listed.code == 0
    assert listed.stdout.split() == ["good"]
    assert listed.stderr.splitlines() == [
        f"jetforge: warning: {root / 'loops' / 'config.py'}: config script did not finish "
        "within 1 s (set JETFORGE_CONFIG_TIMEOUT); package left out (a definition error)",
        f"jetforge: warning: {root / 'raises' / 'config.py'}:2: config script raised "
        "ValueError: x; package left out (a definition error)",
    ]
    one_line_error(run(root, "list", "--strict", env=timeout), 2, "2 package definition(s)")
    for name in ("loops", "raises"):
        built = run(root, "build", "--simulate", name, env=timeout)
        one_line_error(built, 2, f"package '{name}' cannot be read: {root / name / 'config.py'}")


# --- 5: a farm needs its registry, and its own failures say where to look ----------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_farm_whose_registry_does_not_answer_is_refused_before_any_stage(
    tree, run, tmp_path, serve
):
    config = tmp_path / "config" / "jetforge"
    config.mkdir(parents=True)
    root = tree({"one/Dockerfile": HEADER.format("one")})
    for port, problem in [
        (_closed_port(), "cannot connect (Connection refused)"),
        (serve(trickled_headers), "no answer within 10 s"),
    ]:
        registry = f"127.0.0.1:{port}/farm"
        (config / "jetforge.toml").write_text(
            f'registries = ["{registry}"]\n[[workers]]\nname = "pw"\nengine = "podman"\n'
        )
        started = time.monotonic()
        result = run(root, "build", "--workers", "pw,local", "one")  # no engine: not asked
        assert time.monotonic() - started < GIVE_UP - 2
        one_line_error(
            result,
            2,
            f"--workers: the farm's registry {registry} (http://127.0.0.1:{port}/v2/): {problem}",
            "start it, or set a reachable one first in 'registries' (jetforge.toml)",
        )


def test_a_farm_failure_in_a_conclusion_names_the_log_and_how_to_resume(tmp_path):
    from jetforge.core.plan import PlanOptions, plan_build
    from jetforge.core.resolve import resolve
    from jetforge.discovery.discover import discover
    from jetforge.engine.fake import FakeEngine
    from jetforge.host.context import read_context
    from jetforge.host.platform import detect_platform
    from jetforge.host.workers import Worker
    from support.chains import write_chains

    tree = tmp_path / "tree"
    (last,) = write_chains(tree, 1, 2)
    platform = detect_platform({}, target="x86_64-cu128")
    plan = plan_build(
        resolve(discover([tree], platform), [last], {}), platform, PlanOptions(), read_context
    )
    engines = {"local": FakeEngine(), "w2": FakeEngine()}
    registry: dict[str, dict[str, str]] = {}
    sites = []
    for name, engine in engines.items():
        engine.registry = registry
        engine.fail_pushes = {"registry.test/*"}  # the registry went away during the build
        sites.append(Site(Worker(name, "fake"), engine, has_base=name == "w2"))
    logs = tmp_path / "logs"
    resume = "jetforge build --workers w2,local " + last
    options = BuildOptions(
        logs_dir=logs,
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        state_dir=tmp_path / "state",
        resume=resume,
    )
    farm = Farm([plan], sites, [options], lambda s: f"registry.test/ns/{s.image}", NullReporter())
    (ended,) = list(farm.run())
    failure = ended.failure
    assert failure is not None
    assert (failure.stage, failure.step) == (plan.stages[-1].package, "conclusion")
    assert failure.resume == resume
    assert failure.log_path == logs / f"{plan.stages[-1].slug}.build.log"
    assert "conclusion failed: push of registry.test/ns/" in failure.log_path.read_text()
