"""Key look-ups remembered per process, and reads that take no lock (SQLite in a temp dir).

Two engines on one database file stand for two processes (``segue serve`` and
``segue keys``): each has its own connections and its own KeyStore memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from segue.errors import AuthenticationError
from segue.keys import KeyStore
from segue.tasks.db import make_engine, migrate
from segue.tasks.store import TaskStore
from tests.tasks.test_store import task


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    url = f"sqlite:///{tmp_path / 'segue.db'}"
    server, admin = make_engine(url), make_engine(url)
    migrate(server)
    yield server, admin
    server.dispose()
    admin.dispose()


def test_a_revoked_key_is_refused_within_the_ttl(engines: tuple[Engine, Engine]) -> None:
    server, admin = KeyStore(engines[0], [], ttl=0.5), KeyStore(engines[1], [])
    key, row = admin.create("alice")
    assert server.authenticate(key).key_id == row.id
    admin.revoke(row.id)
    revoked_at = time.monotonic()
    deadline = revoked_at + 0.5 + 2.0  # the TTL, and slack for a slow machine
    while True:
        try:
            server.authenticate(key)
        except AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key is still accepted"
        time.sleep(0.05)
    assert time.monotonic() - revoked_at >= 0.0
    with pytest.raises(AuthenticationError):
        server.authenticate(key)  # and stays refused


def test_a_new_key_works_at_once_and_closes_an_open_server(
        engines: tuple[Engine, Engine]) -> None:
    server, admin = KeyStore(engines[0], [], ttl=60), KeyStore(engines[1], [])
    assert server.is_open() and server.authenticate(None).key_id == "public"
    key, row = admin.create("first")
    with pytest.raises(AuthenticationError):
        server.authenticate(None)  # closed at once, not after the TTL
    with pytest.raises(AuthenticationError):
        server.authenticate(key + "x")  # a miss ...
    second, row2 = admin.create("second")
    assert server.authenticate(second).key_id == row2.id  # ... is never remembered
    assert server.authenticate(key).key_id == row.id


def test_a_remembered_key_needs_no_query(engines: tuple[Engine, Engine]) -> None:
    server, admin = KeyStore(engines[0], [], ttl=60), KeyStore(engines[1], [])
    key, row = admin.create("alice")
    assert server.remembered(key) is None  # not looked up yet
    server.authenticate(key)
    assert server.remembered(key) == server.authenticate(key)
    assert server.remembered("sk-unknown") is None
    assert KeyStore(engines[0], ["env-key"]).remembered("env-key") is not None


def test_reads_do_not_wait_for_a_writer(engines: tuple[Engine, Engine]) -> None:
    """A poll reads its snapshot while another connection holds SQLite's write lock."""
    store = TaskStore(engines[0])
    row = store.create(task())
    locked, release = threading.Event(), threading.Event()

    def writer() -> None:
        with engines[1].begin():  # a writer's BEGIN IMMEDIATE (see tasks/db.py)
            locked.set()
            release.wait(60)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert locked.wait(30)
        result: list[object] = []
        reader = threading.Thread(target=lambda: result.append(store.get(row.id).status))
        reader.start()
        reader.join(10)  # far below the 30 s busy timeout a locking read would wait
        assert result == ["queued"]
        assert store.list_page("k")[0] == 1 and store.counts() == {"queued": 1}
    finally:
        release.set()
        thread.join(30)


def test_writers_of_one_process_queue_instead_of_timing_out(tmp_path: Path) -> None:
    """16 threads creating at once: none is left to SQLite's busy handler, none fails.

    The busy timeout is cut to 1 ms so that a writer that had to wait for SQLite's lock
    would fail at once; writers of one process must wait for each other in order instead.
    """
    engine = make_engine(f"sqlite:///{tmp_path / 'segue.db'}")
    migrate(engine)

    @event.listens_for(engine, "connect")
    def _impatient(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.execute("PRAGMA busy_timeout=1")

    engine.dispose()  # new connections, with the short timeout
    store = TaskStore(engine)
    failures: list[BaseException] = []

    def create_many() -> None:
        try:
            for _ in range(15):
                store.create(task())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=create_many) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert store.counts() == {"queued": 16 * 15}
    engine.dispose()
