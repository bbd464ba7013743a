"""Package sources with credentials in their URL are probed with those credentials."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator

import pytest

from jetforge.cache.sources import Source, probe_sources


class _AuthIndex(http.server.BaseHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(b"reader:p@ss word").decode()

    def do_HEAD(self) -> None:
        ok = self.headers.get("Authorization") == self.expected
        self.send_response(200 if ok else 401)
        if not ok:
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthIndex)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_mirror_with_user_and_password_in_its_url_is_up(index):
    url = f"http://reader:p%40ss%20word@127.0.0.1:{index}/simple/"
    (probe,) = probe_sources([Source(url, "mirror")], {})
    assert probe.up, probe.problem


def test_wrong_credentials_still_answer_as_an_http_status(index):
    (probe,) = probe_sources(
        [Source(f"http://reader:wrong@127.0.0.1:{index}/simple/", "mirror")], {}
    )
    assert probe.problem == "HTTP 401"
