"""A worker's lease under store errors: renewals are retried while the lease lasts, and the
render stops before the lease can lapse. The errors are injected into the task store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy.exc import OperationalError

from segue.domain import TaskStatus
from segue.errors import ServiceUnavailable
from segue.tasks.schema import TaskRow
from segue.tasks.store import TaskStore
from tests.lifecycle.support import SlowEngine, create, use_engine, wait_until


class FlakyHeartbeat:
    """Wraps ``TaskStore.heartbeat``: raises as a database that went away would while
    ``failing`` is set, else renews."""

    def __init__(self, tasks: TaskStore) -> None:
        self._heartbeat = tasks.heartbeat
        self.failing = threading.Event()
        self.errors = 0
        self.renewals = 0
        tasks.heartbeat = self  # type: ignore[method-assign]

    def __call__(self, *args: object, **kwargs: object) -> bool:
        if self.failing.is_set():
            self.errors += 1
            raise OperationalError("UPDATE tasks …", {}, Exception("connection refused"))
        self.renewals += 1
        return self._heartbeat(*args, **kwargs)  # type: ignore[arg-type]


def test_a_store_blip_shorter_than_the_lease_stops_nothing(launch) -> None:
    server = launch(workers=2, lease_ttl=3)
    engine = SlowEngine(delay=0.15)  # 49 frames: about 7 s, longer than the lease
    use_engine(server, engine)
    flaky = FlakyHeartbeat(server.services.tasks)
    task_id = create(server)
    wait_until(lambda: flaky.renewals >= 1, timeout=20, what="the first renewal")
    flaky.failing.set()
    time.sleep(1.5)  # well within the 3 s lease
    flaky.failing.clear()
    body = server.wait(task_id)
    assert flaky.errors >= 1
    assert body["status"] == "succeeded"
    row = server.services.tasks.get(task_id)
    assert row.attempts == 1  # renewed again after the blip: never taken over
    assert not engine.stopped.is_set()
    assert server.services.metrics.taken_over.labels("segue-blend")._value.get() == 0


def test_a_lease_that_cannot_be_renewed_stops_the_render_before_it_lapses(launch) -> None:
    server = launch(workers=1, lease_ttl=2)
    engine = SlowEngine(delay=0.1)
    use_engine(server, engine)
    flaky = FlakyHeartbeat(server.services.tasks)
    task_id = create(server)
    wait_until(lambda: flaky.renewals >= 1, timeout=20, what="the first renewal")
    flaky.failing.set()
    outage = time.monotonic()
    stopped = engine.stopped.wait(4)  # the render alone would go on about 4 s more
    stopped_after = time.monotonic() - outage
    flaky.failing.clear()
    assert stopped, "the render went on without a lease"
    assert stopped_after < 2.5  # within the lease (2 s) and one frame
    body = server.wait(task_id)  # taken up again once the lease lapsed
    assert body["status"] == "succeeded"
    assert server.services.tasks.get(task_id).attempts == 2


def test_a_late_worker_neither_overwrites_nor_orphans_the_video(launch, tmp_path: Path) -> None:
    """The worker freezes while putting its video; meanwhile another worker takes the task
    over and finishes it. Resumed, the late worker must leave the stored video as it is."""
    server = launch(workers=1)
    services = server.services
    objects, put, finish = services.objects, services.objects.put, services.tasks.finish
    task: dict[str, str] = {}
    refused: list[str] = []
    theirs = tmp_path / "theirs.mp4"
    theirs.write_bytes(b"the other worker's video")

    def put_after_a_freeze(key: str, source: Path, content_type: str) -> None:
        if "theirs" not in task:  # frozen here, while the other worker did all of this:
            task_id = task["id"]
            with services.tasks._tx() as s:
                s.get(TaskRow, task_id).worker_id = "other"  # type: ignore[union-attr]
            task["theirs"] = f"videos/{task_id}.mp4"
            put(task["theirs"], theirs, "video/mp4")
            assert finish(task_id, "other", TaskStatus.SUCCEEDED, video_key=task["theirs"],
                          links_expire_at=time.time() + 3600) is not None
        put(key, source, content_type)

    def finish_and_note(task_id: str, worker_id: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        done = finish(task_id, worker_id, *args, **kwargs)  # type: ignore[arg-type]
        if done is None:
            refused.append(worker_id)
        return done

    objects.put = put_after_a_freeze  # type: ignore[method-assign]
    services.tasks.finish = finish_and_note  # type: ignore[method-assign]
    task["id"] = create(server)
    wait_until(lambda: refused, timeout=30, what="the late worker's refused finish")

    def stored() -> dict[str, bytes]:
        root = objects.root  # type: ignore[attr-defined]
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*") if p.is_file()}

    expected = {task["theirs"]: b"the other worker's video"}
    wait_until(lambda: stored() == expected, timeout=5,
               what=f"only the finished task's video to be stored (got {list(stored())})")
    row = services.tasks.get(task["id"])
    assert (row.status, row.worker_id, row.video_key) == ("succeeded", "other", task["theirs"])


def test_a_store_blip_at_the_finish_does_not_throw_the_render_away(launch) -> None:
    server = launch(workers=2, lease_ttl=3)
    tasks = server.services.tasks
    finish, failures = tasks.finish, []

    def finish_after_a_blip(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if len(failures) < 2:  # the database is away for the first two tries
            failures.append(1)
            raise ServiceUnavailable("The task store is unavailable for the moment.")
        return finish(*args, **kwargs)  # type: ignore[arg-type]

    tasks.finish = finish_after_a_blip  # type: ignore[method-assign]
    task_id = create(server)
    assert server.wait(task_id)["status"] == "succeeded"
    assert len(failures) == 2
    assert tasks.get(task_id).attempts == 1  # finished by its first worker, rendered once
