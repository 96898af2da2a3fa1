"""A status change and its callback deliveries commit together (an outbox), on every path
that changes a status, including a task given up after its workers died."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from segue.services import Services
from segue.tasks.schema import TaskRow
from segue.worker import Worker
from tests.conftest import make_settings
from tests.lifecycle.conftest import FAST
from tests.lifecycle.support import create, deliveries, wait_until
from tests.tasks.test_store import task

FAULT = "the disk went away"


def finished(server, status: str) -> float:  # type: ignore[no-untyped-def]
    return server.services.metrics.finished.labels("segue-blend", status)._value.get()


def test_a_task_given_up_after_three_dead_workers_sends_its_failed_callback(
        launch, receiver) -> None:
    server = launch(workers=0)
    task_id = create(server, callback_url=receiver.url)
    wait_until(lambda: receiver.of(task_id, "queued"), what="the queued callback")
    with server.services.tasks._tx() as s:  # its third worker died holding it
        row = s.get(TaskRow, task_id)
        row.status, row.worker_id, row.attempts = "running", "dead-3", 3
        row.lease_until = time.time() - 1

    assert Worker(server.services, models=["segue-blend"]).run_once() is False  # gave it up
    assert server.services.tasks.get(task_id).status == "failed"
    got = wait_until(lambda: receiver.of(task_id, "failed"), timeout=10,
                     what="the failed callback")
    assert got[0].json["error"]["code"] == "InternalServiceError"  # type: ignore[index]
    assert "interrupted 3 times" in got[0].json["error"]["message"]  # type: ignore[index]
    assert finished(server, "failed") == 1


def test_a_fault_while_writing_the_delivery_leaves_no_final_status_without_it(
        launch, receiver, caplog: pytest.LogCaptureFixture) -> None:
    """The crash window: the final status committed, its delivery not (a "database is
    locked" on the insert, a crash). A trigger makes the insert fail, as the database would."""
    server = launch(workers=1, lease_ttl=1)
    with server.services.db.begin() as conn:
        conn.execute(text(
            "CREATE TRIGGER lose_final BEFORE INSERT ON callback_deliveries "
            f"WHEN NEW.status = 'succeeded' BEGIN SELECT RAISE(ABORT, '{FAULT}'); END"))
    with caplog.at_level(logging.ERROR):
        task_id = create(server, callback_url=receiver.url)
        wait_until(lambda: any(FAULT in (r.exc_text or "") or FAULT in r.getMessage()
                               for r in caplog.records), timeout=30, what="the injected fault")
    status = server.services.tasks.get(task_id).status
    sent = [d.status for d in deliveries(server, task_id)]
    assert status != "succeeded" or "succeeded" in sent, "a final status without its callback"

    with server.services.db.begin() as conn:
        conn.execute(text("DROP TRIGGER lose_final"))
    assert server.wait(task_id)["status"] == "succeeded"  # taken up again, once
    wait_until(lambda: receiver.of(task_id, "succeeded"), timeout=15,
               what="the succeeded callback")
    assert finished(server, "succeeded") == 1


class Crash(Exception):
    pass


@pytest.fixture
def services(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    built = Services.build(make_settings(tmp_path / "data", database_url=db_url, **FAST))
    yield built
    built.db.dispose()


def test_each_status_change_commits_with_its_delivery_or_not_at_all(
        services: Services) -> None:
    """On SQLite and PostgreSQL: a crash after the delivery is written, before the commit,
    undoes both; without it both are there."""
    tasks, crash = services.tasks, {"at": ""}

    def crash_after_outbox(session: Session, row: TaskRow) -> None:
        if row.status == crash["at"]:
            raise Crash(row.status)

    tasks.changes.writers.append(crash_after_outbox)
    url = "http://127.0.0.1:9/hook"

    crash["at"] = "queued"
    with pytest.raises(Crash):
        tasks.create(task(callback_url=url, id="cgt-crashed"))
    assert services.callbacks.store.for_task("cgt-crashed") == []

    crash["at"] = ""
    row = tasks.create(task(callback_url=url))
    crash["at"] = "running"
    with pytest.raises(Crash):
        tasks.claim("w1", 60)
    assert tasks.get(row.id).status == "queued"
    assert [d.status for d in services.callbacks.store.for_task(row.id)] == ["queued"]

    crash["at"] = ""
    assert tasks.claim("w1", 60) is not None
    crash["at"] = "succeeded"
    with pytest.raises(Crash):
        tasks.finish(row.id, "w1", "succeeded", video_key="videos/x.mp4")
    assert tasks.get(row.id).status == "running"
    assert [d.status for d in services.callbacks.store.for_task(row.id)] == ["queued", "running"]

    crash["at"] = ""
    done = tasks.finish(row.id, "w1", "succeeded", video_key="videos/x.mp4")
    assert done is not None and tasks.get(row.id).status == "succeeded"
    got = services.callbacks.store.for_task(row.id)
    assert [d.status for d in got] == ["queued", "running", "succeeded"]
    assert got[-1].max_attempts == 1 + services.settings.callback_retries
