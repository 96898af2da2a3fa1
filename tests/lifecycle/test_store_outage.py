"""The database away: requests are answered 503 with Retry-After in their surface's envelope,
within a bounded time, and work again once it is back. The faults are real: SQLite's write
lock held by another connection; PostgreSQL reached through a loopback proxy that is cut."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segue.tasks import db
from tests.conftest import KEY, make_settings, start_server
from tests.lifecycle.conftest import FAST
from tests.lifecycle.support import TASKS, body, create

VIDEOS = "/v1/videos"


def assert_unavailable(response: httpx.Response, openai: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(db.STORE_RETRY_AFTER)
    error = response.json()["error"]
    assert "unavailable" in error["message"]
    assert "5432" not in error["message"]  # no address of the database is shown
    if openai:  # OpenAI's envelope names the kind of error in ``type``
        assert error["type"] == "server_error" and error["param"] is None
    else:  # Ark's carries the error class's name
        assert error["type"] == "ServiceUnavailable" and error["param"] == ""


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "DATABASE_TIMEOUT", 0.5)


def test_sqlite_locked_past_the_timeout_is_503_then_works(tmp_path: Path, short_waits) -> None:
    server = start_server(make_settings(tmp_path / "data", **FAST), workers=0)
    try:
        task_id = create(server)
        holder = sqlite3.connect(tmp_path / "data" / "segue.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with server.client() as c:
                c.timeout = httpx.Timeout(10)
                started = time.monotonic()
                refused = c.post(TASKS, json=body(), headers={"Idempotency-Key": "order-1"})
                assert_unavailable(refused)
                assert refused.headers["x-should-retry"] == "true"
                assert time.monotonic() - started < 5
                # readers do not wait for the writer (WAL), nor does the readiness check
                assert c.get(f"{TASKS}/{task_id}").status_code == 200
                assert c.get("/readyz").json() == {"status": "ready"}
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        create(server)
    finally:
        server.stop()


class Proxy:
    """A TCP proxy on loopback to the PostgreSQL service, which the test can cut and mend."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.flowing = threading.Event()  # cleared: a frozen server, its bytes accepted
        self.flowing.set()
        self.mend()

    def mend(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """The database goes away: no new connection, and the open ones are dropped."""
        with contextlib.suppress(OSError):  # wakes the accepting thread (close alone would not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy(("127.0.0.1", 5432))
    yield p
    p.cut()


@pytest.mark.postgres
def test_postgres_down_is_503_in_each_envelope_then_works(tmp_path: Path, pg_url: str,
                                                           proxy: Proxy) -> None:
    url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    server = start_server(make_settings(tmp_path / "data", database_url=url, **FAST),
                          workers=0)
    try:
        task_id = create(server)
        proxy.cut()
        with server.client() as c:
            c.timeout = httpx.Timeout(20)
            started = time.monotonic()
            assert_unavailable(c.get(f"{TASKS}/{task_id}"))
            refused = c.post(TASKS, json=body())
            assert_unavailable(refused)
            assert refused.headers["x-should-retry"] == "false"  # a retry could duplicate it
            keyed = c.post(TASKS, json=body(), headers={"Idempotency-Key": "order-1"})
            assert_unavailable(keyed)
            assert keyed.headers["x-should-retry"] == "true"  # the SDK may retry this one
            assert_unavailable(c.get(f"{VIDEOS}/{task_id}"), openai=True)
            ready = httpx.get(f"{server.url}/readyz", timeout=20)
            assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
            assert "127.0.0.1" not in ready.text and str(proxy.port) not in ready.text
            assert time.monotonic() - started < 4 * (db.CONNECT_TIMEOUT + 1)
        proxy.mend()
        with server.client() as c:
            assert c.get(f"{TASKS}/{task_id}").json()["status"] == "queued"
        with server.client(KEY) as c:
            assert c.post(TASKS, json=body()).status_code == 200
    finally:
        server.stop()


@pytest.mark.postgres
def test_a_frozen_postgres_is_503_in_bounded_time_then_works(
        tmp_path: Path, pg_url: str, proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen, not down: connections open and bytes accepted, nothing answered (a stopped
    or swapping server). Only the connection watchdog can end the wait."""
    monkeypatch.setattr(db, "DATABASE_TIMEOUT", 1.0)
    monkeypatch.setattr(db, "CONNECT_TIMEOUT", 2)  # libpq's least
    monkeypatch.setattr(db, "WATCHDOG_MARGIN", 1.0)
    url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    server = start_server(make_settings(tmp_path / "data", database_url=url, **FAST),
                          workers=1)
    try:
        task_id = create(server)
        server.wait(task_id)
        proxy.flowing.clear()
        with server.client() as c:
            c.timeout = httpx.Timeout(60)
            started = time.monotonic()
            assert_unavailable(c.get(f"{TASKS}/{task_id}"))
            assert_unavailable(c.post(TASKS, json=body()))
            ready = httpx.get(f"{server.url}/readyz", timeout=60)
            assert ready.status_code == 503
            assert time.monotonic() - started < 3 * 8
        proxy.flowing.set()
        with server.client() as c:
            assert wait_ok(lambda: c.get(f"{TASKS}/{task_id}").status_code == 200)
            assert c.post(TASKS, json=body()).status_code == 200
    finally:
        proxy.flowing.set()
        server.stop()


def wait_ok(check, timeout: float = 20) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
