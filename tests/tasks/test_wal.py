"""SQLite's WAL is checkpointed by a background thread, not by the writer that crosses the
threshold (which held the write lock through the copy)."""

from __future__ import annotations

import time
from pathlib import Path

from segue.services import Services
from segue.tasks.db import WAL_BACKSTOP_PAGES, make_engine, migrate
from segue.tasks.store import TaskStore
from segue.worker import Background
from tests.conftest import make_settings
from tests.tasks.test_store import task

BIG = {"prompt": "x" * 200_000}  # a request as large as a small data URL


def db_bytes(tmp: Path) -> int:
    """The database file's size: pages reach it only through a checkpoint (until then they
    are in the WAL), so it shows checkpoints without making one."""
    return (tmp / "segue.db").stat().st_size


def test_writers_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'segue.db'}")
    migrate(engine)
    store = TaskStore(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_BACKSTOP_PAGES
    store.checkpoint()
    before = db_bytes(tmp_path)
    for _ in range(20):  # ~4 MB: past SQLite's default threshold of 1000 pages
        store.create(task(request=BIG))
    assert db_bytes(tmp_path) == before  # no writer copied the WAL into the database
    assert (tmp_path / "segue.db-wal").stat().st_size > 3_500_000
    store.checkpoint()
    assert db_bytes(tmp_path) > before + 3_500_000
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM tasks").scalar() == 20
    engine.dispose()


def test_a_server_process_checkpoints_in_the_background(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = Services.build(make_settings(data))
    before = db_bytes(data)
    background = Background(services)
    background.start()
    try:
        for _ in range(10):
            services.tasks.create(task(request=BIG))
        deadline = time.monotonic() + 10  # it comes within about CHECKPOINT_INTERVAL
        while db_bytes(data) < before + 1_500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db_bytes(data) > before + 1_500_000
    finally:
        background.stop()
        services.db.dispose()
