"""Callbacks under faults: a store that raises, receivers that dribble or hang, a dispatcher
that dies with deliveries leased. Each fault is injected here, on loopback, bounded in time."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from segue.callbacks import PENDING, Callbacks
from segue.services import Services
from segue.settings import Settings
from segue.tasks.schema import DeliveryRow
from tests.conftest import make_settings
from tests.lifecycle.conftest import FAST
from tests.lifecycle.support import Receiver, wait_until


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Iterator[Services]:
    """On SQLite and on PostgreSQL: their claims of due deliveries lock differently."""
    built = Services.build(make_settings(tmp_path / "data", database_url=db_url, **FAST))
    yield built
    built.db.dispose()


def add_delivery(callbacks: Callbacks, url: str, status: str = "succeeded",
                 max_attempts: int = 1) -> str:
    """A due delivery for a task of its own, as a status change would record it."""
    now, task_id = time.time(), "cgt-" + secrets.token_hex(6)
    row = DeliveryRow(id="msg_" + secrets.token_hex(12), task_id=task_id,
                      key_id="k", url=url, status=status,
                      payload={"id": task_id, "status": status}, state=PENDING, attempts=0,
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


class Dribbler:
    """A receiver that starts its answer and then sends one header byte every ``every`` s,
    for at most ``seconds``: each read arrives in time, the answer never ends."""

    def __init__(self, every: float = 0.1, seconds: float = 20.0) -> None:
        self.every, self.seconds = every, seconds
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.lock = threading.Lock()
        self.open = 0
        self.most_open = 0
        self.held: list[float] = []  # how long each exchange lasted, by its end
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._dribble, args=(conn,), daemon=True).start()

    def _dribble(self, conn: socket.socket) -> None:
        started = time.monotonic()
        with self.lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while time.monotonic() - started < self.seconds and not self._closed.is_set():
                conn.sendall(b"a")
                time.sleep(self.every)
        except OSError:
            pass  # the sender hung up: what the deadline is for
        finally:
            conn.close()
            with self.lock:
                self.open -= 1
                self.held.append(time.monotonic() - started)

    def close(self) -> None:
        self._closed.set()
        self.server.close()


@pytest.fixture
def dribbler() -> Iterator[Dribbler]:
    d = Dribbler()
    yield d
    d.close()


def test_one_deadline_bounds_a_dribbling_receiver_and_no_send_overlaps(
        services: Services, dribbler: Dribbler) -> None:
    services.settings.callback_timeout = 1.0
    other = Callbacks(services.db, services.settings, services.objects, services.metrics)
    delivery = add_delivery(services.callbacks, dribbler.url, max_attempts=3)
    started = time.monotonic()
    running = [dispatcher(services.callbacks), dispatcher(other)]  # two processes, one store
    try:
        wait_until(lambda: state_of(other, delivery).state == "failed", timeout=8,
                   what="three bounded attempts")
    finally:
        for callbacks, (stop, thread) in zip((services.callbacks, other), running, strict=True):
            stop_dispatcher(callbacks, stop, thread)
    row = state_of(other, delivery)
    assert row.attempts == 3 and row.last_error == "no answer within 1 s"
    assert time.monotonic() - started < 3 * 1.5 + 2 * 0.3 * 1.25 + 1  # not 3 x 20 s
    wait_until(lambda: len(dribbler.held) == 3, timeout=2, what="the receiver to see 3 ends")
    assert max(dribbler.held) < 2.5, dribbler.held  # 1 s, and a loaded machine's delays
    assert dribbler.most_open == 1  # no attempt began while another was open


def test_a_delivery_stays_leased_while_it_is_sent(services: Services,
                                                  dribbler: Dribbler) -> None:
    """... and the dispatcher waits meanwhile, rather than asking the store again and again
    for the row it is sending (it did, about 50 times a second)."""
    services.settings.callback_timeout = 3.0  # the exchange lasts 3 s
    callbacks = services.callbacks
    delivery = add_delivery(callbacks, dribbler.url)
    claim_due, claims = callbacks.store.claim_due, []

    def counted(*args: object, **kwargs: object) -> list[DeliveryRow]:
        claims.append(time.monotonic())
        return claim_due(*args, **kwargs)  # type: ignore[arg-type]

    callbacks.store.claim_due = counted  # type: ignore[method-assign]
    stop, thread = dispatcher(callbacks)
    try:
        wait_until(lambda: dribbler.open, timeout=5, what="the send to begin")
        first = state_of(callbacks, delivery).lease_until
        time.sleep(2.2)
        assert dribbler.open == 1
        renewed = state_of(callbacks, delivery).lease_until
        assert first is not None and renewed is not None and renewed >= first + 1.0
        # another process finds nothing to claim while the send is open
        other = Callbacks(services.db, services.settings, services.objects, services.metrics)
        assert other.store.claim_due(10, 8) == []
        wait_until(lambda: state_of(callbacks, delivery).state == "failed", timeout=5)
    finally:
        stop_dispatcher(callbacks, stop, thread)
    assert state_of(callbacks, delivery).lease_until is None
    assert len(claims) <= 3 * 3 + 2, f"{len(claims)} claims while one send was open"


def test_a_slow_receiver_leaves_senders_for_the_others(services: Services) -> None:
    services.settings.callback_timeout = 5.0
    slow = Receiver({"succeeded": ["hang"]}, hang_seconds=3.0)
    quick = Receiver()
    callbacks = services.callbacks
    try:
        for _ in range(10):  # due first, each held 3 s
            add_delivery(callbacks, slow.url)
        time.sleep(0.01)
        fine = [add_delivery(callbacks, quick.url) for _ in range(3)]
        stop, thread = dispatcher(callbacks)
        try:
            started = time.monotonic()
            wait_until(lambda: all(state_of(callbacks, d).state == "delivered" for d in fine),
                       timeout=10, what="the quick receiver's deliveries")
            waited = time.monotonic() - started
            assert waited < 2.8, f"the quick receiver waited {waited:.1f} s"  # not the 3 s
            assert len(slow.received) == 4  # its share of the pool
        finally:
            stop_dispatcher(callbacks, stop, thread)
    finally:
        slow.close()
        quick.close()


def test_the_default_retry_schedule_spans_hours(services: Services) -> None:
    settings = Settings(api_keys=["k"])  # the defaults, as documented in docs/lifecycle.md
    assert settings.callback_retries == 6
    callbacks = Callbacks(services.db, settings, services.objects, services.metrics)
    hours = [5, 300, 1800, 7200, 18000, 36000, 36000]  # the last step repeats
    for attempt, step in enumerate(hours, start=1):
        delay = callbacks._backoff(attempt)
        assert step <= delay <= step * 1.25, (attempt, delay)


def test_deliveries_leased_by_a_killed_process_are_sent_soon(services: Services,
                                                             receiver: Receiver) -> None:
    services.settings.callback_timeout = 0.5
    delivery = add_delivery(services.callbacks, receiver.url)
    killed = Callbacks(services.db, services.settings, services.objects, services.metrics)
    assert [row.id for row in killed.store.claim_due(killed._lease(), 8)] == [delivery]
    started = time.monotonic()  # ... and the process that leased it dies here
    stop, thread = dispatcher(services.callbacks)
    try:
        wait_until(lambda: receiver.received, timeout=15, what="the orphaned delivery")
    finally:
        stop_dispatcher(services.callbacks, stop, thread)
    assert time.monotonic() - started < 0.5 + 5 + 2.5  # its lease, and one idle pass
