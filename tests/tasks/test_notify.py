"""The notification listener connects with the same settings as the engine's connections:
a plain PostgreSQL URL (``make_engine`` adds ``options=-c statement_timeout=...``) and one
that already sets options (a schema's search path) both listen and are woken."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import text

from segue.tasks.db import make_engine
from segue.tasks.notify import CHANNEL, Listener, conninfo
from tests.conftest import PG_URL

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("schema_url", [False, True], ids=["plain URL", "URL with options"])
def test_listener_connects_and_wakes(pg_url: str, schema_url: bool) -> None:
    engine = make_engine(pg_url if schema_url else PG_URL)
    wake, stop = threading.Event(), threading.Event()
    listener = Listener(engine.url, wake, stop)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        assert listener.listening.wait(15), "the listener never got to LISTEN"
        wake.clear()
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        assert wake.wait(10)
    finally:
        stop.set()
        thread.join(10)
        engine.dispose()


def test_conninfo_keeps_the_engine_settings(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with psycopg.connect(conninfo(engine.url)) as conn:
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        path = conn.execute("SHOW search_path").fetchone()
    engine.dispose()
    assert timeout == ("30s",)
    assert path is not None and path[0] == pg_url.rsplit("%3D", 1)[1]
