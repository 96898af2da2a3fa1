"""A worker's lease under store errors: renewals are retried while the lease lasts, and the
render stops before the lease can lapse. The errors are injected into the task store."""

from __future__ import annotations

import threading
import time

from sqlalchemy.exc import OperationalError

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
    server = launch(workers=2, lease_ttl=2)
    engine = SlowEngine(delay=0.1)  # 49 frames: about 5 s
    use_engine(server, engine)
    flaky = FlakyHeartbeat(server.services.tasks)
    task_id = create(server)
    wait_until(lambda: flaky.renewals >= 1, timeout=20, what="the first renewal")
    flaky.failing.set()
    time.sleep(1.2)  # shorter than the 2 s lease
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
