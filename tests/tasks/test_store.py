"""The task store on SQLite (temp dir) and PostgreSQL (the real service, when reachable)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from segue.domain import TaskStatus, new_task_id
from segue.errors import NotFound, OperationDenied
from segue.tasks.db import make_engine, migrate
from segue.tasks.schema import TaskRow
from segue.tasks.store import TaskStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[TaskStore]:  # type: ignore[no-untyped-def]
    url = (f"sqlite:///{tmp_path / 'segue.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    migrate(engine)
    yield TaskStore(engine)
    engine.dispose()


def task(model: str = "m", tier: str = "default", key: str = "k", at: float | None = None,
         **extra: object) -> TaskRow:
    now = at or time.time()
    values: dict[str, object] = dict(
        id=new_task_id() + uuid.uuid4().hex[:4], key_id=key, model=model, status="queued",
        service_tier=tier, request={}, seed=1, resolution="720p", ratio="16:9", duration=5,
        frames=121, progress=0.0, created_at=now, updated_at=now, expires_at=now + 3600,
        attempts=0,
    )
    values.update(extra)
    return TaskRow(**values)


def test_create_then_get_and_owner_isolation(store: TaskStore) -> None:
    row = store.create(task())
    assert store.get(row.id, "k").status == "queued"
    with pytest.raises(NotFound):
        store.get(row.id, "someone-else")


def test_claim_order_default_before_flex_of_the_same_model(store: TaskStore) -> None:
    t0 = time.time()
    flex = store.create(task(tier="flex", at=t0 - 10))
    default = store.create(task(at=t0 - 5))
    other_flex = store.create(task(model="other", tier="flex", at=t0 - 8))
    # the older flex task waits while a default task of its model is queued
    assert store.claim("w", 60).id == default.id
    # then flex tasks run oldest first
    assert [store.claim("w", 60).id for _ in range(2)] == [flex.id, other_flex.id]
    assert store.claim("w", 60) is None


def test_flex_of_another_model_is_not_held_back(store: TaskStore) -> None:
    t0 = time.time()
    other_flex = store.create(task(model="other", tier="flex", at=t0 - 10))
    flex = store.create(task(tier="flex", at=t0 - 9))
    default = store.create(task(at=t0 - 5))
    assert [store.claim("w", 60).id for _ in range(3)] == [default.id, other_flex.id, flex.id]


def test_two_workers_never_claim_one_task(store: TaskStore) -> None:
    rows = [store.create(task()) for _ in range(20)]
    claims: dict[str, list[str]] = {}
    lock = threading.Lock()

    def work(name: str) -> None:
        while (row := store.claim(name, 60)) is not None:
            with lock:
                claims.setdefault(row.id, []).append(name)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims) == sorted(r.id for r in rows)
    assert all(len(names) == 1 for names in claims.values())


def test_lapsed_lease_is_taken_over_and_gives_up_after_three(store: TaskStore) -> None:
    row = store.create(task())
    now = time.time()
    for attempt in range(1, 4):
        claimed = store.claim(f"w{attempt}", 1, now=now)
        assert claimed is not None and claimed.id == row.id and claimed.attempts == attempt
        assert store.claim("x", 1, now=now) is None  # lease held
        now += 2  # the worker died: its lease lapses
    assert store.claim("w4", 1, now=now) is None
    failed = store.get(row.id)
    assert failed.status == "failed" and "interrupted 3 times" in (failed.error_message or "")


def test_finish_only_by_the_lease_holder(store: TaskStore) -> None:
    row = store.create(task())
    store.claim("w1", 60)
    assert store.finish(row.id, "w2", TaskStatus.SUCCEEDED) is None
    done = store.finish(row.id, "w1", TaskStatus.SUCCEEDED, tokens=5)
    assert done is not None and done.status == "succeeded" and done.tokens == 5
    assert store.finish(row.id, "w1", TaskStatus.FAILED) is None  # final stays final


def test_delete_rules(store: TaskStore) -> None:
    queued = store.create(task())
    assert store.delete(queued.id, "k")[0] == "cancel"
    assert store.get(queued.id).status == "cancelled"
    with pytest.raises(OperationDenied):
        store.delete(queued.id, "k")  # cancelled: refused
    running = store.create(task())
    store.claim("w", 60)
    with pytest.raises(OperationDenied) as err:
        store.delete(running.id, "k")
    assert err.value.code == "OperationDenied.TaskStatus" and "running" in err.value.message
    store.finish(running.id, "w", TaskStatus.FAILED, error_code="X", error_message="y")
    assert store.delete(running.id, "k")[0] == "delete"
    with pytest.raises(NotFound):
        store.get(running.id)


def test_expire_and_sweep(store: TaskStore) -> None:
    old = store.create(task(at=time.time() - 7200))
    fresh = store.create(task())
    expired = store.expire_overdue()
    assert [r.id for r in expired] == [old.id]
    assert store.get(old.id).status == "expired" and store.get(fresh.id).status == "queued"
    assert store.claim("w", 60).id == fresh.id
    swept = store.sweep(record_ttl=3600, cancelled_ttl=3600)
    assert [r.id for r in swept] == [old.id]


def test_list_filters_and_paging(store: TaskStore) -> None:
    t0 = time.time()
    ids = [store.create(task(model="a" if i % 2 else "b", at=t0 - i)).id for i in range(7)]
    total, rows = store.list_page("k", page_num=1, page_size=3)
    assert total == 7 and [r.id for r in rows] == ids[:3]  # newest first
    total, rows = store.list_page("k", page_num=3, page_size=3)
    assert [r.id for r in rows] == ids[6:]
    total, rows = store.list_page("k", model="a")
    assert total == 3
    total, rows = store.list_page("k", task_ids=ids[:2])
    assert total == 2
    assert store.list_page("other")[0] == 0


def test_cursor_pages_in_both_orders_and_with_equal_times(store: TaskStore) -> None:
    t0 = time.time()
    # two pairs created in the same instant: the id breaks the tie, so no page repeats or skips
    rows = [store.create(task(at=t0 - (i // 2))) for i in range(6)]
    newest = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    store.create(task(key="other", at=t0))
    seen, after, more = [], None, True
    while more:
        page, more = store.list_after("k", after=after, limit=4)
        seen += [r.id for r in page]
        after = page[-1].id
    assert seen == [r.id for r in newest]
    page, more = store.list_after("k", after=newest[-3].id, limit=10, newest_first=False)
    assert [r.id for r in page] == [r.id for r in newest[-4::-1]] and not more
    with pytest.raises(NotFound):
        store.list_after("other", after=newest[0].id)
