"""The loopback server base, on what the tests of the fetch guard and the benches lean on."""

from __future__ import annotations

import logging
import socket
import time
import urllib.request

import pytest

from glaze_pipeline_tests.helpers import RoutedSite, html


def test_a_connection_is_counted_even_when_no_request_follows() -> None:
    """The canaries prove "never reached" by `connections == 0`: a bare connect must count."""
    with RoutedSite("127.0.0.2") as site:
        site.routes[("*", "/")] = lambda n: html("hi")
        with socket.create_connection(site.address):
            pass  # connect, send nothing, hang up
        # Accepts are served in order, so once this answer is back the bare connection was accepted too.
        with urllib.request.urlopen(f"{site.base_url}/", timeout=5) as response:
            assert response.status == 200
        assert site.connections == 2
        assert [(h.site, h.path, h.status) for h in site.log] == [("127.0.0.2", "/", 200)]


def test_a_client_that_hangs_up_mid_answer_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """Crawlers drop connections all the time (size caps, timeouts); the server must not print tracebacks."""
    caplog.set_level(logging.WARNING)
    with RoutedSite() as site:
        site.routes[("*", "/drip")] = lambda n: (200, {}, (b"x" * 65_536 for _ in range(10_000)))  # 640 MB
        with socket.create_connection(site.address) as client:
            client.sendall(b"GET /drip HTTP/1.1\r\nHost: a.example\r\n\r\n")
            assert client.recv(1024).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 10
        while site.log[0].status == 0 and not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)  # until the answer gave up, quietly or not
        assert [r.getMessage() for r in caplog.records] == []
        assert site.log[0].status == 200
