"""The task store on SQLite (temp dir) and PostgreSQL (the real service, when reachable)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from segue.domain import TaskStatus, new_task_id
from segue.errors import NotFound, OperationDenied, TooManyRequests
from segue.storage import LocalStore
from segue.tasks.db import make_engine, migrate
from segue.tasks.schema import CreateRow, TaskInputRow, TaskRow
from segue.tasks.store import CreateLimits, TaskStore
from segue.tasks.view import task_object


@pytest.fixture
def store(db_url: str) -> Iterator[TaskStore]:
    engine = make_engine(db_url)
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


def test_higher_priority_is_claimed_first_then_oldest(store: TaskStore) -> None:
    t0 = time.time()
    old_low = store.create(task(at=t0 - 30))  # priority 0 (the default)
    new_high = store.create(task(at=t0 - 10, priority=50))
    old_high = store.create(task(at=t0 - 20, priority=50))
    negative = store.create(task(at=t0 - 40, priority=-5))
    flex_high = store.create(task(model="other", tier="flex", at=t0 - 50, priority=100))
    # the tier rule comes first: a flex task waits behind default tasks, whatever its priority
    order = [store.claim("w", 60).id for _ in range(5)]
    assert order == [old_high.id, new_high.id, old_low.id, negative.id, flex_high.id]


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


def test_the_create_ledger_outlives_deleted_tasks(store: TaskStore) -> None:
    limits = CreateLimits(rate=2, window=60, tier_models=("m",), max_queued=10)
    for _ in range(2):
        row = store.create(task(status="succeeded"), limits)
        assert store.delete(row.id, "k")[0] == "delete"
    with pytest.raises(TooManyRequests):
        store.create(task(), limits)
    later = time.time() + 61  # the window has slid past both creates
    assert store.create(task(at=later), limits).status == "queued"
    store.prune_ledger(60, now=later + 61)
    with store._tx() as s:
        assert s.scalar(select(func.count()).select_from(CreateRow)) == 0


def test_links_never_expire_before_their_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    objects = LocalStore(tmp_path / "objects", b"s" * 32, "http://testserver/")
    row = task(status="succeeded", video_key="v.mp4", links_expire_at=1_900_000_000.9)
    url = task_object(row, objects)["content"]["video_url"]
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert expires >= row.links_expire_at
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    assert objects.verify("v.mp4", expires, signature, now=row.links_expire_at)


def test_the_ledger_migration_counts_the_last_days_tasks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A store upgraded while tasks are in the window keeps counting them."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from segue.tasks.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config()
    before_ledger = ScriptDirectory.from_config(cfg).get_revision("0004").down_revision
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, before_ledger)
    with engine.begin() as conn:  # the rows as the older release wrote them
        for row in (task(), task(at=time.time() - 2 * 86_400)):
            values = {c.name: getattr(row, c.name) for c in TaskRow.__table__.columns}
            conn.execute(TaskRow.__table__.insert().values(  # unset columns take their defaults
                {name: value for name, value in values.items() if value is not None}))
    migrate(engine)
    store = TaskStore(engine)
    with pytest.raises(TooManyRequests):
        store.create(task(), CreateLimits(rate=1, window=60, tier_models=("m",), max_queued=9))
    engine.dispose()


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


IMAGES = [{"url": "data:image/png;base64," + "A" * 50_000, "role": "first_frame"},
          {"url": "https://images.example.com/last.png", "role": "last_frame"}]


def test_input_media_live_apart_and_go_with_their_task(store: TaskStore) -> None:
    """Polls read the task row alone; the worker gets the request whole; deletes cascade."""
    request = {"prompt": "p", "images": IMAGES, "media": []}
    swept = store.create(task(request=dict(request), status="failed", at=time.time() - 7200))
    deleted = store.create(task(request=dict(request), status="failed"))
    kept = store.create(task(request=dict(request)))
    assert store.get(kept.id).request == {"prompt": "p"}  # no megabytes on the poll path
    assert store.full_request(store.get(kept.id)) == request
    store.delete(deleted.id, "k")
    assert [r.id for r in store.sweep(record_ttl=3600, cancelled_ttl=3600)] == [swept.id]
    with store.engine.connect() as conn:
        left = conn.execute(select(TaskInputRow.task_id)).scalars().all()
    assert left == [kept.id]


def test_the_inputs_migration_moves_media_out_and_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from segue.tasks.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    columns = [c for c in TaskRow.__table__.columns]
    old = {"prompt": "p", "seed": 3, "images": IMAGES, "media": [{"url": "u", "role": "r"}]}
    rows = [task(request=old), task(request={"prompt": "no media yet"})]
    with engine.begin() as conn:  # the rows as the older release wrote them
        for row in rows:
            values = {c.name: getattr(row, c.name) for c in columns}
            conn.execute(TaskRow.__table__.insert().values(
                {name: value for name, value in values.items() if value is not None}))
    migrate(engine)
    store = TaskStore(engine)
    assert store.get(rows[0].id).request == {"prompt": "p", "seed": 3}
    assert store.full_request(store.get(rows[0].id)) == old
    assert store.full_request(store.get(rows[1].id)) == {
        "prompt": "no media yet", "images": [], "media": []}
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with engine.connect() as conn:
        back = conn.execute(select(TaskRow.__table__.c.request)
                            .where(TaskRow.__table__.c.id == rows[0].id)).scalar_one()
    assert back == old
    engine.dispose()


def test_the_poll_read_decodes_every_column_as_the_orm_does(store: TaskStore) -> None:
    """``get`` reads on the driver's cursor (``RowReader``); its values are the ORM's."""
    row = store.create(task(request={"prompt": "ünïcode", "nested": {"a": [1, 2.5, None]}},
                            eta=12.25, error_message=None, priority=-3))
    read = store.get(row.id)
    with store._read() as s:
        orm = s.get(TaskRow, row.id)
        assert orm is not None
        for column in TaskRow.__table__.columns:
            assert getattr(read, column.name) == getattr(orm, column.name), column.name
            assert type(getattr(read, column.name)) is type(getattr(orm, column.name))
    with store.engine.connect() as conn:  # JSON is decoded as json.loads decodes its text
        text = conn.exec_driver_sql("SELECT CAST(request AS TEXT) FROM tasks WHERE id = "
                                    f"'{row.id}'").scalar_one()
    assert read.request == json.loads(text)
    with pytest.raises(NotFound):
        store.get(row.id + "x")


def test_the_poll_read_sees_every_later_write_from_any_thread(store: TaskStore) -> None:
    """On SQLite each reading thread keeps its connection (``RowReader``): it must still read
    each write committed after it was opened, by another connection of this thread or of
    another thread, never an old snapshot; and no two threads share a connection."""
    row = store.create(task())
    assert store.get(row.id).status == "queued"  # this thread's connection is held now
    claimed = store.claim("w1", 60)
    assert claimed is not None and claimed.id == row.id
    assert store.get(row.id).status == "running"

    seen: dict[str, object] = {}

    def elsewhere() -> None:
        seen["status"] = store.get(row.id).status
        seen["conn"] = getattr(store._get._held, "connection", None)
        assert store.heartbeat(row.id, "w1", 60, progress=40.0, eta=3.0)  # written there

    other = threading.Thread(target=elsewhere)
    other.start()
    other.join()
    assert seen["status"] == "running"
    assert (store.get(row.id).progress, store.get(row.id).eta) == (40.0, 3.0)
    assert store.finish(row.id, "w1", TaskStatus.SUCCEEDED, tokens=7) is not None
    assert (store.get(row.id).status, store.get(row.id).tokens) == ("succeeded", 7)
    store.delete(row.id, "k")
    with pytest.raises(NotFound):
        store.get(row.id)
    if store._get._held is not None:  # SQLite: one connection per reading thread
        assert seen["conn"] is not None and seen["conn"] is not store._get._held.connection


def test_a_thread_that_ended_leaves_no_connection_open(store: TaskStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The API thread pool's idle threads end after a few seconds: the connections they held
    for polls are closed with them, not whenever the garbage collector gets to them."""
    if store._get._held is None:
        pytest.skip("connections are held per thread on SQLite only")
    row = store.create(task())
    folder = Path(store.engine.url.database or "").resolve().parent

    def open_files() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if _resolves_under(fd, folder))

    before = open_files()
    threads = [threading.Thread(target=store.get, args=(row.id,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert open_files() <= before  # (a thread may have taken the pool's idle connection)


def _resolves_under(link: Path, folder: Path) -> bool:
    try:
        return link.resolve().is_relative_to(folder)
    except OSError:  # closed since it was listed
        return False


def test_the_version_changes_with_every_commit_and_only_then(store: TaskStore) -> None:
    """``TaskStore.version``: what ``Answers`` keeps poll answers by. Any commit changes it,
    by this thread, another thread or another connection; reads do not. PostgreSQL: None."""
    row = store.create(task())
    if store._get._held is None:
        assert store.version() is None
        return
    first = store.version()
    store.get(row.id)
    assert store.version() == first  # a read commits nothing
    claimed = store.claim("w1", 60)
    assert claimed is not None
    second = store.version()
    assert second != first
    thread = threading.Thread(target=store.heartbeat, args=(row.id, "w1", 60),
                              kwargs={"progress": 50.0})
    thread.start()
    thread.join()
    third = store.version()
    assert third != second
    with store.engine.begin() as conn:  # any other connection, outside the store's methods
        conn.exec_driver_sql("UPDATE tasks SET eta = 1 WHERE id = ?", (row.id,))
    assert store.version() != third
