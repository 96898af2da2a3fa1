"""Bounds how long a PostgreSQL connection may be held, for a server that is frozen.

A server that is down refuses connections and a slow statement is cut by the server's own
``statement_timeout``. A server that is frozen (stopped, swapping, a network path that holds
packets) does neither: its kernel still accepts the bytes, so libpq waits for an answer
forever, and with it the request, the worker or the readiness check that asked. libpq has no
read timeout, so this module keeps one: each connection checked out of the pool is armed
with a deadline, and a thread shuts down the socket of any connection still checked out past
it. The driver then fails as on a lost connection (``OperationalError``), which the store
answers 503, and the pool replaces the connection.

The liveness ping the pool would make at check-out (``pool_pre_ping``) is made here too,
under a shorter deadline, so that a stale connection is replaced rather than a request
failed, and a frozen server is noticed within the connect timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

log = logging.getLogger("segue.tasks")
UNWATCHED = "segue_unwatched"  # in a connection's ``info``: held as long as it needs (a migration)


class Watchdog:
    """Cuts connections of ``engine`` held past ``limit`` seconds (a ping past ``ping``)."""

    def __init__(self, engine: Engine, limit: float, ping: float) -> None:
        self.engine = engine
        self.limit = limit
        self.ping_limit = ping
        self._armed: dict[int, tuple[float, Any, Any]] = {}  # id -> (deadline, conn, record)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        self._arm(record, dbapi_conn, self.ping_limit)
        try:
            self.engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            self._disarm(record)
            # the pool discards this connection and checks out (or makes) another
            raise DisconnectionError("the connection did not answer a ping") from exc
        self._arm(record, dbapi_conn, self.limit)

    def _checkin(self, _dbapi_conn: Any, record: Any) -> None:
        self._disarm(record)
        record.info.pop(UNWATCHED, None)

    def _arm(self, record: Any, dbapi_conn: Any, seconds: float) -> None:
        with self._lock:
            self._armed[id(record)] = (time.monotonic() + seconds, dbapi_conn, record)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                name="db-watchdog")
                self._thread.start()

    def _disarm(self, record: Any) -> None:
        with self._lock:
            self._armed.pop(id(record), None)

    def _watch(self) -> None:
        tick = min(1.0, self.ping_limit / 4)
        while True:
            time.sleep(tick)
            now = time.monotonic()
            with self._lock:
                lapsed = [key for key, (deadline, _, record) in self._armed.items()
                          if deadline <= now and not record.info.get(UNWATCHED)]
                cut = [self._armed.pop(key)[1] for key in lapsed]
            for dbapi_conn in cut:
                log.warning("database connection held past its deadline: cut")
                _shut(dbapi_conn)


def _shut(dbapi_conn: Any) -> None:
    """Shut the connection's socket down under the driver, which then fails what waits on it
    as a lost connection (closing the descriptor itself could hand its number to another)."""
    with contextlib.suppress(Exception):
        fd = dbapi_conn.pgconn.socket  # psycopg 3
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
