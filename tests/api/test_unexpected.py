"""An exception no handler knew: one 500 in the surface's envelope, logged once with the
request's id, counted and logged as a request, and the connection kept for the next one."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import httpx
import pytest

from segue import logs
from tests.conftest import KEY, LiveServer

TASKS = "/api/v3/contents/generations/tasks"


class Recorder(logging.Handler):
    """Keeps each record with the request id in force when it was logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.getMessage(), logs.request_id.get()))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length, read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_an_unexpected_error_is_one_500_logged_once_and_the_connection_stays(
        server: LiveServer, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug that nothing above knew")

    monkeypatch.setattr(server.services.tasks, "list_page", broken)
    host, port = server.url.removeprefix("http://").split(":")
    request = (f"GET {TASKS} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n\r\n"
               ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        head = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 500")
        assert b"connection: close" not in head.lower()
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert _read_response(sock).startswith(b"HTTP/1.1 200")  # the same connection

    with server.client() as c:
        answer = c.get(TASKS)
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["code"] == "InternalServiceError" and "bug" not in error["message"]
    rid = answer.headers["X-Request-Id"]

    mine = [line for line in recorder.lines if line[2] == rid]
    assert [line[:2] for line in mine if line[1] == "unexpected error"] == [
        ("segue.api", "unexpected error")]  # logged once, with the request's id
    assert ("segue.http", "request", rid) in mine  # and in the request log
    assert not [line for line in recorder.lines if "Exception in ASGI" in line[1]]
    metrics = httpx.get(server.url + "/metrics").text
    assert (f'segue_http_requests_total{{method="GET",route="{TASKS}",status="500"}} 2.0'
            in metrics)
