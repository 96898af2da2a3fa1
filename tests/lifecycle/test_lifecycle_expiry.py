"""Expiry: a task still queued or running past created_at + execution_expires_after ends
``expired`` (a running render is stopped), and its callback fires.

The API accepts 3600..259200 s, so the tests move the deadline in the store instead.
"""

from __future__ import annotations

import time

from sqlalchemy import update

from segue.tasks.schema import TaskRow
from tests.lifecycle.support import SlowEngine, create, use_engine, wait_until


def _expire_now(server, task_id: str) -> None:  # type: ignore[no-untyped-def]
    with server.services.db.begin() as conn:
        conn.execute(update(TaskRow).where(TaskRow.id == task_id)
                     .values(expires_at=time.time() - 0.01))


def test_a_queued_task_expires_and_its_callback_fires(launch, receiver) -> None:
    server = launch(workers=0)
    task_id = create(server, callback_url=receiver.url, execution_expires_after=3600)
    with server.client() as c:
        assert c.get(f"/api/v3/contents/generations/tasks/{task_id}").json()[
            "execution_expires_after"] == 3600
    _expire_now(server, task_id)

    task = server.wait(task_id, timeout=10)
    assert task["status"] == "expired"
    assert task["error"]["code"] == "TaskExpired"
    assert "content" not in task
    wait_until(lambda: receiver.of(task_id, "expired"), what="the expired callback")
    assert [r.status for r in receiver.of(task_id)] == ["queued", "expired"]
    assert receiver.of(task_id, "expired")[0].json["error"]["code"] == "TaskExpired"


def test_a_running_render_is_stopped_by_expiry(launch, receiver) -> None:
    server = launch(workers=1)
    engine = SlowEngine(delay=0.1)  # 49 frames: about 5 s, unless stopped
    use_engine(server, engine)
    task_id = create(server, callback_url=receiver.url)

    def running() -> bool:
        return server.services.tasks.get(task_id).status == "running" and engine.yielded > 2

    wait_until(running, what="the render to start")
    stopped_at = time.monotonic()
    _expire_now(server, task_id)

    task = server.wait(task_id, timeout=10)
    assert task["status"] == "expired" and task["error"]["code"] == "TaskExpired"
    assert engine.stopped.wait(5)
    assert time.monotonic() - stopped_at < 3.5  # the lease heartbeat noticed within ~1 s
    assert engine.yielded < 49  # the render did not run to its end
    wait_until(lambda: receiver.of(task_id, "expired"), what="the expired callback")
    assert [r.status for r in receiver.of(task_id)] == ["queued", "running", "expired"]
    row = server.services.tasks.get(task_id)
    videos = server.settings.data_dir / "objects" / "videos"
    assert row.video_key is None and not list(videos.glob(f"{task_id}*"))
