"""Callbacks under faults: a store that raises, receivers that dribble or hang, a dispatcher
that dies with deliveries leased. Each fault is injected here, on loopback, bounded in time."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from segue.callbacks import PENDING, Callbacks
from segue.services import Services
from segue.tasks.schema import DeliveryRow
from tests.conftest import make_settings
from tests.lifecycle.conftest import FAST
from tests.lifecycle.support import Receiver, wait_until


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = Services.build(make_settings(tmp_path / "data", **FAST))
    yield built
    built.db.dispose()


def add_delivery(callbacks: Callbacks, url: str, status: str = "succeeded",
                 max_attempts: int = 1) -> str:
    """A due delivery for a task of its own, as a status change would record it."""
    now = time.time()
    row = DeliveryRow(id="msg_" + secrets.token_hex(12), task_id="cgt-" + secrets.token_hex(6),
                      key_id="k", url=url, status=status,
                      payload={"id": "cgt-x", "status": status}, state=PENDING, attempts=0,
                      max_attempts=max_attempts, next_attempt_at=now, created_at=now,
                      updated_at=now)
    assert callbacks.store.add(row)
    return row.id


def dispatcher(callbacks: Callbacks) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=callbacks.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def stop_dispatcher(callbacks: Callbacks, stop: threading.Event,
                    thread: threading.Thread) -> None:
    stop.set()
    callbacks.wake.set()
    thread.join(10)


def state_of(callbacks: Callbacks, delivery_id: str) -> DeliveryRow:
    with callbacks.store._tx() as s:
        row = s.get(DeliveryRow, delivery_id)
        assert row is not None
        return row


def test_delivery_resumes_after_a_store_error_in_claim(services: Services,
                                                       receiver: Receiver) -> None:
    callbacks = services.callbacks
    claim_due, failures = callbacks.store.claim_due, []

    def claim_once_failing(*args: object, **kwargs: object) -> list[DeliveryRow]:
        if not failures:  # the database is away for one pass
            failures.append(1)
            raise OperationalError("SELECT …", {}, Exception("server closed the connection"))
        return claim_due(*args, **kwargs)  # type: ignore[arg-type]

    callbacks.store.claim_due = claim_once_failing  # type: ignore[method-assign]
    delivery = add_delivery(callbacks, receiver.url)
    stop, thread = dispatcher(callbacks)
    try:
        wait_until(lambda: failures, timeout=5, what="the injected store error")
        wait_until(lambda: state_of(callbacks, delivery).state == "delivered", timeout=8,
                   what="the delivery after the store came back")
    finally:
        stop_dispatcher(callbacks, stop, thread)
    assert len(receiver.received) == 1
