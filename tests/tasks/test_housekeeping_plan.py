"""Housekeeping runs in every process once a minute, so each of its reads must go through an
index rather than the task table: with hundreds of worker processes and a week of records,
a scan per process per minute was the heaviest load on the database
(``benchmarks/scale.py``). The look for lapsed files reads ``ix_tasks_lapsed_files``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert

from segue.tasks.db import make_engine, migrate
from segue.tasks.schema import TaskRow
from segue.tasks.store import TaskStore
from tests.tasks.plans import plan, selects


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(TaskRow), [dict(
            id=f"cgt-{i:05d}", key_id="k", model="m", status="succeeded", service_tier="default",
            request={}, seed=1, resolution="720p", ratio="16:9", duration=5, frames=121,
            progress=100.0, created_at=now - 1000 + i, updated_at=now, expires_at=now + 3600,
            attempts=1, video_key=f"videos/{i}.mp4" if i % 4 else None,
            links_expire_at=now - 100 if i % 50 == 1 else now + 3600,
        ) for i in range(2000)])
    yield engine
    engine.dispose()


def test_lapsed_files_read_the_partial_index(engine: Engine) -> None:
    with selects(engine, "links_expire_at <") as seen:
        lapsed = TaskStore(engine).lapsed_files()
    assert sorted(r.id for r in lapsed) == [f"cgt-{i:05d}" for i in range(1, 2000, 50)]
    statement, params = seen[0]
    found = plan(engine, statement, params)
    assert "ix_tasks_lapsed_files" in found, found


def test_the_sweep_reads_a_range_of_the_queue_index(engine: Engine) -> None:
    """Finished tasks older than the record lifetime: a range of ``ix_tasks_queue`` (status,
    tier, created_at), not every finished task's entry."""
    with selects(engine, "created_at <=") as seen:
        swept = TaskStore(engine).sweep(record_ttl=500, cancelled_ttl=500)
    assert 500 <= len(swept) <= 502  # created from 1000 s ago, one a second
    if engine.dialect.name != "postgresql":
        return  # SQLite's plan for a table this small follows its statistics, not the query
    statement, params = seen[0]
    found = plan(engine, statement, params)
    conds = [line for line in found.splitlines() if "Index Cond" in line]
    assert any("created_at <=" in line and "service_tier" in line for line in conds), found
