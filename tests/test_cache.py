"""The package cache without an engine: Dockerfile mounts, sources, probes, secrets, and the
real cache server (pypiserver in its own process) with uploads, status and bundles."""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from jetforge.cache.builds import (
    PIP_TARGET,
    add_run_mounts,
    parse_cache_event,
    prepare_build_cache,
    render_helper_config,
    render_pip_config,
)
from jetforge.cache.control import CachePaths, ServerState
from jetforge.cache.sources import (
    Source,
    mirrors_from,
    order_sources,
    probe_sources,
    pypi_from,
    redact,
)
from jetforge.engine.table import engine_names
from jetforge.host.settings import load_settings
from support.engines import free_port

MOUNTS = ("--mount=type=secret,id=a", "--mount=type=secret,id=b")
ADDED = "--mount=type=secret,id=a --mount=type=secret,id=b"

# -- Dockerfile RUN mounts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("FROM x\nRUN make\n", f"FROM x\nRUN {ADDED} make\n"),
        ("from x\n  run  make\n", f"from x\n  run {ADDED}  make\n"),
        ('RUN ["make", "all"]\n', f'RUN {ADDED} ["make", "all"]\n'),
        (
            "RUN --network=none make\n",
            f"RUN {ADDED} --network=none make\n",
        ),
        (
            "RUN apt-get update \\\n RUN-NOT-AN-INSTRUCTION \\\n# RUN comment\n\n && make\nRUN b\n",
            f"RUN {ADDED} apt-get update \\\n RUN-NOT-AN-INSTRUCTION \\\n# RUN comment\n\n"
            f" && make\nRUN {ADDED} b\n",
        ),
        ("ONBUILD RUN make\nENV RUN=1\n# RUN x\nRUNX y\n", None),
        (
            "# escape=`\nFROM x\nRUN a `\n  RUN b\nRUN c\n",
            f"# escape=`\nFROM x\nRUN {ADDED} a `\n  RUN b\nRUN {ADDED} c\n",
        ),
        (
            "RUN <<EOF\nRUN not me\nEOF\nRUN cat <<-END > f\n\tRUN nor me\n\tEND\nRUN yes\n",
            f"RUN {ADDED} <<EOF\nRUN not me\nEOF\nRUN {ADDED} cat <<-END > f\n\tRUN nor me\n"
            f"\tEND\nRUN {ADDED} yes\n",
        ),
        ("FROM x\r\nRUN a\r\n", f"FROM x\r\nRUN {ADDED} a\r\n"),
    ],
)
def test_run_mounts_go_into_every_run_instruction_only(before, after):
    assert add_run_mounts(before, MOUNTS) == (before if after is None else after)


def test_no_mounts_leave_the_dockerfile_alone():
    assert add_run_mounts("RUN make\n", ()) == "RUN make\n"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ("#9 2.361 jetforge-cache: cached jfdemo 1.0 jf.whl", "cached jfdemo 1.0 jf.whl"),
        ("jetforge-cache: tarball-built opencv-4.10", "tarball-built opencv-4.10"),
        ("STEP 3/3: jetforge-cache: off", "off"),
        ("#7 [3/3] RUN --mount=type=secret,id=jetforge-cache,target=/x jetforge-pip a", None),
        ("Building wheel for jfdemo (pyproject.toml): started", None),
    ],
)  # fmt: skip
def test_helper_reports_are_read_from_any_engine_output(line, event):
    assert parse_cache_event(line) == event


# -- sources --------------------------------------------------------------------------------


def test_sources_are_ordered_local_mirrors_pypi_and_deduplicated():
    sources = order_sources(
        "http://127.0.0.1:7780/p/simple/",
        ["https://m1/simple", "http://127.0.0.1:7780/p/simple", "https://m2/simple/"],
        "https://pypi.org/simple/",
    )
    assert [(s.kind, s.url) for s in sources] == [
        ("local", "http://127.0.0.1:7780/p/simple/"),
        ("mirror", "https://m1/simple/"),
        ("mirror", "https://m2/simple/"),
        ("pypi", "https://pypi.org/simple/"),
    ]
    assert order_sources(None, [], "") == ()


def test_environment_overrides_configured_mirrors_and_pypi():
    assert mirrors_from(("https://a/simple/",), {}) == ("https://a/simple/",)
    env = {"JETFORGE_CACHE_URLS": "https://b/simple/, https://c/simple/"}
    assert mirrors_from(("https://a/simple/",), env) == ("https://b/simple/", "https://c/simple/")
    assert mirrors_from(("https://a/simple/",), {"JETFORGE_CACHE_URLS": ""}) == ()
    assert pypi_from(None, {}) == "https://pypi.org/simple/"
    assert pypi_from("https://corp/simple/", {}) == "https://corp/simple/"
    assert pypi_from("https://corp/simple/", {"JETFORGE_PYPI_URL": "off"}) == ""
    assert pypi_from("", {}) == ""


def test_config_file_sets_mirrors_and_pypi(tmp_path):
    (tmp_path / "jetforge.toml").write_text(
        'cache_urls = ["https://mirror.example/simple/"]\npypi_url = ""\n'
    )
    settings = load_settings(tmp_path, {}, engine_names)
    assert settings.cache_urls == ("https://mirror.example/simple/",)
    assert settings.pypi_url == ""


def test_urls_are_shown_without_credentials():
    assert redact("https://user:tok@mirror.example/simple/") == "https://***@mirror.example/simple/"
    assert Source("https://u:p@m/simple/", "mirror").described == "mirror https://***@m/simple/"


def test_pip_configuration_lists_sources_in_order_and_trusts_plain_http_mirrors():
    sources = (
        Source("http://127.0.0.1:7780/p/simple/", "local"),
        Source("http://mirror.lan:8080/simple/", "mirror"),
        Source("https://pypi.org/simple/", "pypi"),
    )
    assert render_pip_config(sources).splitlines()[1:] == [
        "[global]",
        "index-url = http://127.0.0.1:7780/p/simple/",
        "extra-index-url =",
        "    http://mirror.lan:8080/simple/",
        "    https://pypi.org/simple/",
        "trusted-host = mirror.lan",
    ]
    assert "no-index = true" in render_pip_config(())


def test_helper_configuration_has_upload_keys_only_with_a_local_cache():
    local = ServerState(1, "127.0.0.1", 7780, "http://127.0.0.1:7780/", Path("/s"))
    sources = (Source(local.index_url("plat"), "local"), Source("https://m/simple/", "mirror"))
    text = render_helper_config(sources, "plat", local, ("jetforge", "pw"))
    assert text.splitlines()[1:] == [
        "platform=plat",
        "index_url=http://127.0.0.1:7780/plat/simple/",
        "index_url=https://m/simple/",
        "mirror_url=https://m/simple/",
        "local_url=http://127.0.0.1:7780/plat/",
        "upload_url=http://127.0.0.1:7780/plat/",
        "tarball_url=http://127.0.0.1:7780/plat/tarballs/",
        "user=jetforge",
        "password=pw",
    ]
    assert "password" not in render_helper_config(sources[1:], "plat", None, None)


# -- probes against real sockets ------------------------------------------------------------


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 404

    def do_HEAD(self) -> None:
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Failing(_Answer):
    status = 503


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.HTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_probes_tell_up_from_down_quickly():
    answering, failing = _serve(_Answer), _serve(_Failing)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections, never answers
    sources = [
        Source(f"http://127.0.0.1:{answering.server_address[1]}/simple/", "local"),
        Source(f"http://127.0.0.1:{failing.server_address[1]}/simple/", "mirror"),
        Source(f"http://127.0.0.1:{free_port()}/simple/", "mirror"),
        Source(f"http://127.0.0.1:{silent.getsockname()[1]}/simple/", "mirror"),
        Source("ftp://example/simple/", "mirror"),
    ]
    try:
        probes = probe_sources(sources, {}, timeout=0.5)
    finally:
        for server in (answering, failing):
            server.shutdown()
            server.server_close()
        silent.close()
    assert [(p.up, p.problem) for p in probes] == [
        (True, "HTTP 404"),
        (False, "HTTP 503"),
        (False, "connection refused"),
        (False, "no answer within 0.5 s"),
        (False, "not an http(s) URL"),
    ]


def test_no_cache_configured_changes_nothing(tmp_path):
    setup = prepare_build_cache(
        CachePaths(tmp_path),
        mirrors=(),
        pypi="x",
        build_mode="buildkit",
        secrets=True,
        platform="p",
        env={},
    )
    assert setup.build_extra == setup.run_mounts == setup.warnings == ()


def test_legacy_builder_uses_no_cache_and_says_so_once(tmp_path):
    setup = prepare_build_cache(
        CachePaths(tmp_path), mirrors=("https://m/simple/",), pypi="", build_mode="legacy",
        secrets=False, platform="p", env={},
    )  # fmt: skip
    assert setup.build_extra == setup.run_mounts == ()
    assert len(setup.warnings) == 1
    assert "legacy builder cannot pass build secrets" in setup.warnings[0]


def test_down_sources_are_left_out_and_secrets_are_private(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}/simple/"
    setup = prepare_build_cache(
        CachePaths(tmp_path), mirrors=(closed,), pypi="", build_mode="buildkit",
        secrets=True, platform="p", env={},
    )  # fmt: skip
    assert setup.warnings == (
        f"package source mirror {closed} is down (connection refused); this build leaves it out",
        "no package source answers: pip can install only what the images hold",
    )
    pip_conf = Path(setup.build_extra[1].split("src=")[1])
    assert "no-index = true" in pip_conf.read_text()
    assert closed not in pip_conf.read_text()
    assert oct(pip_conf.stat().st_mode & 0o777) == "0o600"
    assert setup.run_mounts[0] == (
        f"--mount=type=secret,id=jetforge-pip-conf,target={PIP_TARGET},mode=0444"
    )
    off = prepare_build_cache(
        CachePaths(tmp_path), mirrors=(closed,), pypi="", build_mode="buildkit",
        secrets=True, platform="p", env={"JETFORGE_CACHE": "off"},
    )  # fmt: skip
    assert off.build_extra == ()


def test_a_stopped_local_cache_is_reported_without_asking_its_port(tmp_path):
    paths = CachePaths(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    port = free_port()
    paths.state_file.write_text(
        json.dumps({"pid": 0, "host": "127.0.0.1", "port": port,
                    "url": f"http://127.0.0.1:{port}/", "dir": str(tmp_path / "store")})
    )  # fmt: skip
    setup = prepare_build_cache(
        paths, mirrors=(), pypi="", build_mode="buildx", secrets=True, platform="plat", env={}
    )
    assert setup.warnings[0] == (
        f"package source local cache http://127.0.0.1:{port}/plat/simple/ is down (not "
        "running); this build leaves it out: start it with 'jetforge cache serve --background'"
    )
    assert [p.up for p in setup.probes] == [False]


# -- the real server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pypiserver_installed() -> None:
    import importlib.util

    if importlib.util.find_spec("pypiserver") is None:
        if os.environ.get("JETFORGE_REQUIRE_ENGINE") == "1":
            pytest.fail("pypiserver is not installed (scripts/setup installs jetforge[cache])")
        pytest.skip("pypiserver is not installed (pip install 'jetforge[cache]')")


@pytest.fixture
def server(jetforge, cli_env, pypiserver_installed):
    """A real cache server in the background on a free port; stopped afterwards."""
    started = jetforge("cache", "serve", "--background", "--port", "0")
    assert started.code == 0, started.stderr
    paths = CachePaths.under(Path(cli_env["XDG_CACHE_HOME"]) / "jetforge")
    yield started.stdout.strip(), paths
    jetforge("cache", "stop")


def _request(url: str, *, data: bytes | None = None, method: str = "GET", auth: str = "",
             headers: dict[str, str] | None = None) -> int:  # fmt: skip
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _wheel_upload(path: Path) -> tuple[bytes, dict[str, str]]:
    boundary = "jetforgetestboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{path.name}"\r\n\r\n'
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _credentials(paths: CachePaths) -> str:
    return paths.credentials_file.read_text().strip()


def test_serve_status_stop(jetforge, server):
    url, paths = server
    assert url.startswith("http://127.0.0.1:")
    assert oct(paths.credentials_file.stat().st_mode & 0o777) == "0o600"
    again = jetforge("cache", "serve", "--background")
    assert again.code == 0
    assert "already runs" in again.stderr
    status = json.loads(jetforge("cache", "status", "--json").stdout)
    assert status["running"] is True
    assert status["url"] == url
    assert (status["wheels"], status["tarballs"]) == (0, 0)
    text = jetforge("cache", "status").stdout
    assert f"running at {url}" in text
    assert jetforge("cache", "stop").code == 0
    status = json.loads(jetforge("cache", "status", "--json").stdout)
    assert status["running"] is False
    assert "not running" in jetforge("cache", "status").stdout
    assert "was not running" in jetforge("cache", "stop").stderr


@pytest.mark.process
def test_doctor_reports_the_local_cache_up_then_stopped(jetforge, server):
    url, _ = server
    env = {"JETFORGE_PYPI_URL": "", "JETFORGE_CACHE_URLS": ""}
    platform = json.loads(jetforge("platform", "--json").stdout)["tag_postfix"]
    index = f"{url}{platform}/simple/"

    def cache_lines() -> list[str]:
        report = json.loads(jetforge("doctor", "--json", env=env).stdout)
        return [
            f"{c['status']} {c['detail']} {c['remedy']}" for c in report if c["name"] == "cache"
        ]

    assert cache_lines() == [f"ok package source local cache {index} answers "]
    assert jetforge("cache", "stop").code == 0
    assert cache_lines() == [
        f"warning package source local cache {index} is down (not running); builds leave it "
        "out jetforge cache serve --background"
    ]


def _tiny_wheel(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "jfdemo-1.0-py3-none-any.whl"
    files = {
        "jfdemo.py": "def answer():\n    return 42\n",
        "jfdemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: jfdemo\nVersion: 1.0\n",
        "jfdemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("jfdemo-1.0.dist-info/RECORD", "".join(f"{n},,\n" for n in files))
    return path


@pytest.mark.process
def test_uploads_need_the_credential_and_downloads_are_open(server, tmp_path):
    url, paths = server
    wheel = _tiny_wheel(tmp_path / "wheel")
    body, headers = _wheel_upload(wheel)
    platform_url = f"{url}x86_64-test/"
    assert _request(platform_url, data=body, method="POST", headers=headers) == 401
    assert (
        _request(platform_url, data=body, method="POST", headers=headers, auth="jetforge:no") == 403
    )
    assert _request(f"{url}x86_64-test/simple/jfdemo/") == 404
    ok = _request(platform_url, data=body, method="POST", headers=headers, auth=_credentials(paths))
    assert ok == 200
    assert _request(f"{url}x86_64-test/simple/jfdemo/") == 200
    assert _request(f"{url}other-platform/simple/jfdemo/") == 404  # platforms are separate
    tarball = f"{url}x86_64-test/tarballs/thing-1.0.tar.gz"
    assert _request(tarball, data=b"data", method="PUT") == 401
    assert _request(tarball, data=b"data", method="PUT", auth="jetforge:no") == 403
    assert _request(tarball, data=b"data", method="PUT", auth=_credentials(paths)) == 201
    assert _request(tarball, data=b"data", method="PUT", auth=_credentials(paths)) == 409
    assert _request(tarball) == 200
    downloaded = tmp_path / "downloaded"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--index-url",
         f"{url}x86_64-test/simple/", "--dest", str(downloaded), "jfdemo==1.0"],
        capture_output=True, text=True, env={**os.environ, "PIP_FIND_LINKS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (downloaded / wheel.name).read_bytes() == wheel.read_bytes()


def test_busy_port_is_a_clear_failure(jetforge, pypiserver_installed):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        result = jetforge("cache", "serve", "--background", "--port", port)
    assert result.code == 1
    assert "the cache server exited" in result.stderr
    assert "Address already in use" in result.stderr


def test_export_import_round_trip_with_checked_hashes(jetforge, server, tmp_path, cli_env):
    url, _paths = server
    store = Path(json.loads(jetforge("cache", "status", "--json").stdout)["store"])
    (store / "wheels" / "plat").mkdir(parents=True)
    (store / "wheels" / "plat" / "jfdemo-1.0-py3-none-any.whl").write_bytes(b"wheel")
    (store / "tarballs" / "plat").mkdir(parents=True)
    (store / "tarballs" / "plat" / "thing-1.0.tar.gz").write_bytes(b"tarball")
    bundle = tmp_path / "bundle.tar.gz"
    exported = jetforge("cache", "export", str(bundle))
    assert exported.code == 0, exported.stderr
    assert "exported 1 wheels and 1 tarballs" in exported.stderr
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["format"] == "jetforge-cache-bundle"
    assert {f["path"] for f in manifest["files"]} == {
        "wheels/plat/jfdemo-1.0-py3-none-any.whl",
        "tarballs/plat/thing-1.0.tar.gz",
    }
    other = tmp_path / "other-store"
    imported = jetforge("cache", "import", str(bundle), "--dir", str(other))
    assert imported.code == 0, imported.stderr
    assert "imported 1 wheels and 1 tarballs" in imported.stderr
    assert (other / "wheels/plat/jfdemo-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    again = jetforge("cache", "import", str(bundle), "--dir", str(other))
    assert "imported 0 wheels and 0 tarballs" in again.stderr
    assert "(2 already there)" in again.stderr
    # Into the running server's store: served at once.
    (store / "wheels/plat/jfdemo-1.0-py3-none-any.whl").unlink()
    assert jetforge("cache", "import", str(bundle)).code == 0
    assert _request(f"{url}plat/simple/jfdemo/") == 200


def test_an_unwritable_bundle_is_one_error_line_and_leaves_nothing(jetforge, tmp_path):
    source = tmp_path / "store"
    (source / "wheels" / "plat").mkdir(parents=True)
    (source / "wheels" / "plat" / "a-1.0-py3-none-any.whl").write_bytes(b"a")
    full = tmp_path / "full"
    full.mkdir()
    (full / "bundle.tar").mkdir()  # the file's name is taken by a directory
    result = jetforge("cache", "export", str(full / "bundle.tar"), "--dir", str(source))
    assert result.code == 2  # refused before the store is read
    assert result.stderr.splitlines()[0] == (
        f"jetforge: error: cannot write the bundle {full / 'bundle.tar'}: is a directory "
        "(name a file)"
    )
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in full.iterdir()) == ["bundle.tar"]
    missing = jetforge("cache", "export", str(tmp_path / "no" / "b.tar"), "--dir", str(source))
    assert missing.code == 2
    assert "cannot write the bundle" in missing.stderr
    assert "its directory is missing" in missing.stderr
    assert not (tmp_path / "no").exists()


def test_a_bundle_that_does_not_match_its_manifest_imports_nothing(jetforge, tmp_path):
    source = tmp_path / "store"
    (source / "wheels" / "plat").mkdir(parents=True)
    (source / "wheels" / "plat" / "a-1.0-py3-none-any.whl").write_bytes(b"a")
    (source / "wheels" / "plat" / "b-1.0-py3-none-any.whl").write_bytes(b"b")
    bundle = tmp_path / "bundle.tar"
    assert jetforge("cache", "export", str(bundle), "--dir", str(source)).code == 0
    with tarfile.open(bundle) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(tampered, "w") as tar:
        for member, data in members:
            if member.name.endswith("b-1.0-py3-none-any.whl"):
                data = b"B"
            tar.addfile(member, io.BytesIO(data))
    target = tmp_path / "target"
    result = jetforge("cache", "import", str(tampered), "--dir", str(target))
    assert result.code == 1
    assert "does not match its manifest" in result.stderr
    assert not list(target.rglob("*.whl"))
    assert jetforge("cache", "import", str(tmp_path / "nothing.tar")).code == 2


@pytest.mark.process
def test_foreground_server_stops_on_ctrl_c(jetforge, cli_env, pypiserver_installed):
    paths = CachePaths.under(Path(cli_env["XDG_CACHE_HOME"]) / "jetforge")
    process = subprocess.Popen(
        [sys.executable, "-m", "jetforge", "cache", "serve", "--port", "0"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(200):
            status = json.loads(jetforge("cache", "status", "--json").stdout)
            if status["running"]:
                break
            time.sleep(0.1)
        assert status["running"], "the foreground server did not come up"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does to the terminal's group
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Ctrl-C stops it" in output
    assert "jetforge cache stopped" in output
    assert json.loads(paths.state_file.read_text())["pid"] == 0
    assert json.loads(jetforge("cache", "status", "--json").stdout)["running"] is False
