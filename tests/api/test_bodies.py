"""Request bodies on a real server: a chunked body is counted as it arrives and stopped at
SEGUE_MAX_BODY_BYTES (413), and a missing or wrong key is answered 401 before any of the
body is read; either way the answer comes while the client is still sending, and the
server's memory does not grow with what is sent."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import KEY, TASKS, LiveServer, make_settings, start_server

LIMIT = 1 << 20  # 1 MiB
TOTAL = 20 << 20  # what a client offers to send: 20 MiB
CHUNK = b"a" * 65536
OPEN_JSON = b'{"model": "segue-flow", "content": [{"type": "text", "text": "'  # never closed


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("bodies") / "data",
                                        max_body_bytes=LIMIT), workers=0)
    yield server
    server.stop()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Stream:
    """One chunked POST over a raw socket: a thread sends chunks (up to ``TOTAL`` bytes)
    while the caller reads the answer; it records how much had been sent when the answer
    came, and the process's largest resident size meanwhile."""

    def __init__(self, url: str, path: str, headers: dict[str, str], head: bytes = b"") -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}",
                 "Content-Type: application/json", "Transfer-Encoding: chunked",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.head = head
        self.sent = 0
        self.sent_at_answer = -1
        self.answered = threading.Event()
        self.peak = self.baseline = _rss()
        self.sender = threading.Thread(target=self._send, daemon=True)

    def _chunk(self, data: bytes) -> None:
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        self.sent += len(data)

    def _send(self) -> None:
        try:
            if self.head:
                self._chunk(self.head)
            while self.sent < TOTAL and not self.answered.is_set():
                self._chunk(CHUNK)
                self.peak = max(self.peak, _rss())
                time.sleep(0.001)
            if not self.answered.is_set():
                self.sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection after answering

    def answer(self) -> tuple[int, dict[str, str], dict]:
        self.sender.start()
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        self.sent_at_answer = self.sent
        self.answered.set()
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in header_lines)}
        while len(body) < int(headers["content-length"]):
            body += self._recv()
        self.sender.join(30)
        self.peak = max(self.peak, _rss())
        self.sock.close()
        return int(status_line.split()[1]), headers, json.loads(body)

    def _recv(self) -> bytes:
        piece = self.sock.recv(65536)
        if not piece:
            raise AssertionError("the server closed the connection without an answer")
        return piece


def _check_early(stream: Stream) -> None:
    assert 0 <= stream.sent_at_answer < TOTAL // 2, stream.sent_at_answer
    growth = stream.peak - stream.baseline
    assert growth < 8 << 20, f"resident size grew by {growth / 2**20:.1f} MiB"


@pytest.mark.parametrize("path, headers, where", [
    (TASKS, {}, "ark"),
    (TASKS, {"Authorization": "Bearer wrong"}, "ark"),
    ("/byteplus/v1/generateFrame2VideoTask", {}, "pixazo"),
    ("/byteplus/v1/generateFrame2VideoTask", {"Ocp-Apim-Subscription-Key": "wrong"}, "pixazo"),
    ("/bytedance-polling/getVideoResult", {}, "pixazo"),
    ("/v1/videos", {"Authorization": "Bearer wrong"}, "openai"),
])
def test_no_key_is_answered_before_the_body(live: LiveServer, path: str,
                                            headers: dict[str, str], where: str) -> None:
    stream = Stream(live.url, path, headers)
    status, answer_headers, body = stream.answer()
    _check_early(stream)
    assert status == 401
    assert answer_headers["connection"] == "close"
    # each surface's envelope: Pixazo's {"error": message, "code"}, Ark's and OpenAI's
    # {"error": {"code", "message", ...}}
    code = body["code"] if where == "pixazo" else body["error"]["code"]
    assert code == "AuthenticationError", body


@pytest.mark.parametrize("path, headers", [
    (TASKS, {"Authorization": f"Bearer {KEY}"}),
    ("/byteplus/v1/generateFrame2VideoTask", {"Ocp-Apim-Subscription-Key": KEY}),
    ("/v1/videos", {"Authorization": f"Bearer {KEY}"}),
    ("/healthz", {}),  # a route that reads no body, and needs no key
])
def test_a_chunked_body_stops_at_the_limit(live: LiveServer, path: str,
                                           headers: dict[str, str]) -> None:
    stream = Stream(live.url, path, headers, head=OPEN_JSON)
    status, answer_headers, body = stream.answer()
    _check_early(stream)
    if path == "/healthz":  # answered (GET only) without reading: the rest is never read
        assert status == 405
    else:
        assert status == 413, body
        pixazo = path.startswith("/byteplus/")
        error = body if pixazo else body["error"]
        assert error["code"] == "InvalidParameter.RequestTooLarge", body
        assert f"more than {LIMIT} bytes" in (error["error"] if pixazo else error["message"])
    assert answer_headers["connection"] == "close"


def test_a_chunked_body_under_the_limit_is_read(live: LiveServer) -> None:
    """The counting passes a body within the limit through whole."""
    body = json.dumps({"task_id": "cgt-missing"}).encode()
    parts = urlsplit(live.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /bytedance-polling/getVideoResult HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                     b"Ocp-Apim-Subscription-Key: " + KEY.encode() + b"\r\n\r\n")
        for i in range(0, len(body), 5):
            part = body[i:i + 5]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 404"), answer
    assert "connection: close" not in answer.lower()


def test_content_length_over_the_limit_is_refused_unread(live: LiveServer) -> None:
    with live.client() as c:
        r = c.post(TASKS, content=b"x" * (LIMIT + 1),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "InvalidParameter.RequestTooLarge"
    assert f"{LIMIT + 1} bytes" in r.json()["error"]["message"]


def test_the_store_unavailable_while_the_key_is_checked_is_a_503(
        live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key of a request with a body is looked up before the framework's error handling:
    a store that cannot answer (``ServiceUnavailable``, as ``SqlStore`` raises it) is its
    503 in the surface's envelope, not a 500."""
    from segue.errors import ServiceUnavailable

    def unavailable(key: str | None) -> None:
        raise ServiceUnavailable("The task store is unavailable; retry shortly.", retry_after=5)

    monkeypatch.setattr(live.services.keys, "authenticate", unavailable)
    with live.client(key="not-remembered") as c:
        r = c.post(TASKS, json={"model": "segue-blend"})
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "5"
    assert r.json()["error"]["code"] == "ServerOverloaded"
