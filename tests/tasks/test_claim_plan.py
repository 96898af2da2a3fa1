"""The claim reads queued rows through an index in claim order, on both databases: no sort
of the queue per claim, so claims stay fast as the queue grows (``benchmarks/claims.py``
measures it). ``ix_tasks_claim`` holds queued rows only, in claim order."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, insert, text

from segue.tasks.db import make_engine, migrate
from segue.tasks.schema import TaskRow
from segue.tasks.store import TaskStore


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(TaskRow), [dict(
            id=f"cgt-{i:05d}", key_id="k", model="m", status="queued" if i % 3 else "succeeded",
            service_tier="flex" if i % 7 == 0 else "default", request={}, seed=1,
            resolution="720p", ratio="16:9", duration=5, frames=121, progress=0.0,
            created_at=now - 1000 + i, updated_at=now, expires_at=now + 3600, attempts=0,
        ) for i in range(600)])
    yield engine
    engine.dispose()


def _queued_reads(engine: Engine) -> list[tuple[str, object]]:
    """The statements a claim sends that read queued rows."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "'queued'" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert TaskStore(engine).claim("w", 60) is not None
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def test_the_claim_walks_an_index_without_sorting(engine: Engine) -> None:
    reads = _queued_reads(engine)
    assert reads
    statement, params = reads[0]
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "postgresql":
            # with a sequential scan and a sort ruled out, only a usable index avoids "Sort"
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_sort = off")
            cursor.execute("ANALYZE tasks")
            cursor.execute("EXPLAIN " + statement, params)
        else:
            conn.execute(text("ANALYZE"))
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
        plan = "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
    assert "ix_tasks_claim" in plan or "ix_tasks_queue" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan.upper(), plan
