"""The claim reads queued rows through an index in claim order, on both databases: no sort
of the queue per claim, so claims stay fast as the queue grows (``benchmarks/claims.py``
measures it). ``ix_tasks_claim`` holds queued rows only, in claim order."""

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
            id=f"cgt-{i:05d}", key_id="k", model="m", status="queued" if i % 3 else "succeeded",
            service_tier="flex" if i % 7 == 0 else "default", request={}, seed=1,
            resolution="720p", ratio="16:9", duration=5, frames=121, progress=0.0,
            created_at=now - 1000 + i, updated_at=now, expires_at=now + 3600, attempts=0,
        ) for i in range(600)])
    yield engine
    engine.dispose()


def _queued_reads(engine: Engine) -> list[tuple[str, object]]:
    """The statements a claim sends that read queued rows."""
    with selects(engine, "'queued'") as seen:
        assert TaskStore(engine).claim("w", 60) is not None
    return seen


def test_the_claim_walks_an_index_without_sorting(engine: Engine) -> None:
    reads = _queued_reads(engine)
    assert reads
    statement, params = reads[0]
    found = plan(engine, statement, params, no_sort=True)
    assert "ix_tasks_claim" in found or "ix_tasks_queue" in found, found
    assert "Sort" not in found and "TEMP B-TREE" not in found.upper(), found
