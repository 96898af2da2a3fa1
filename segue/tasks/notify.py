"""Prompt wake-ups on PostgreSQL: ``NOTIFY`` when a task becomes claimable, ``LISTEN`` in workers.

The notification is sent inside the transaction that queues the task, so PostgreSQL
delivers it only once that transaction has committed: a woken worker always finds the
row. Notifications are a shortcut, never the only path: a worker still polls, every
``listen_poll_interval`` seconds while its process listens (for what no notification
announces: a lapsed lease, a flex task) and every ``poll_interval`` while it does not, so a
notification lost (a listener reconnecting, a database fail-over) delays a task by one
short poll at most. On SQLite the in-process
workers are woken directly (``Services.wake``).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import URL, func, select
from sqlalchemy.orm import Session

log = logging.getLogger("segue.notify")

CHANNEL = "segue_tasks"
RECONNECT_DELAY = 1.0  # seconds between attempts while the database is unreachable


def notify(session: Session) -> None:
    """Announce, at commit, that a task can be claimed."""
    session.execute(select(func.pg_notify(CHANNEL, "")))


def conninfo(url: URL) -> str:
    """libpq's connection string for ``url``, its query (``options=-c ...``) included.

    Not the URL rendered back to text: SQLAlchemy writes a space in a query value as ``+``,
    which libpq does not read as a space, so ``options=-c statement_timeout=...`` (which
    ``make_engine`` adds) reached the server as one unknown setting and every connection
    was refused.
    """
    from psycopg.conninfo import make_conninfo

    params: dict[str, str | int | None] = {
        "host": url.host, "port": url.port, "dbname": url.database, "user": url.username,
        "password": url.password}
    for name, value in url.query.items():
        params[name] = value if isinstance(value, str) else value[-1]
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


class Listener:
    """Sets ``wake`` on every notification, from its own connection; reconnects on failure.

    After each (re)connection it sets ``wake`` once too, since whatever was queued while
    it was not listening went unannounced.
    """

    def __init__(self, url: URL, wake: threading.Event, stop: threading.Event) -> None:
        self._conninfo = conninfo(url)
        self._wake, self._stop = wake, stop
        self.listening = threading.Event()  # for tests and readiness: LISTEN is in effect

    def run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True,
                                     application_name="segue-listener") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake.set()
                    while not self._stop.is_set():
                        # a bounded wait, so that a stop is seen within a second
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error as exc:
                log.warning("task notifications interrupted; polling meanwhile",
                            extra={"reason": str(exc)})
            finally:
                self.listening.clear()
                self._wake.set()  # idle workers go back to the short poll now, not after it
            self._stop.wait(RECONNECT_DELAY)
