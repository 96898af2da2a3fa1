"""The dispatcher: records a delivery per status change and sends due ones from a pool.

Every send is bounded (``send.post``: one deadline for the whole exchange), holds its row's
lease while it lasts (renewed by the dispatcher loop), and leaves each receiver at most a
share of the pool, so one slow receiver delays only its own callbacks.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from segue.callbacks.send import Refused, post
from segue.callbacks.store import DELIVERED, FAILED, PENDING, DeliveryStore, receiver_of
from segue.domain import TaskStatus
from segue.errors import ServiceUnavailable
from segue.metrics import Metrics
from segue.settings import Settings
from segue.storage.base import ObjectStore
from segue.tasks.schema import DeliveryRow, TaskRow
from segue.tasks.videos import video_event
from segue.tasks.view import task_object

log = logging.getLogger("segue.callbacks")

POOL_SIZE = 8  # concurrent sends per process
PER_RECEIVER = POOL_SIZE // 2  # sends one receiver (host and port) may have in flight at once
MAX_IDLE_WAIT = 2.0  # the dispatcher looks for rows written by other processes this often
RENEW_EVERY = 1.0  # while sends are in flight, their leases are renewed this often
# A lease outlasts one exchange (bounded by callback_timeout) by this much, for resolving
# the name and recording the outcome: a process killed mid-send holds its rows no longer.
LEASE_MARGIN = 5.0
JITTER = 0.25  # each backoff is stretched by a random 0..25 %


class Callbacks:
    """Records deliveries on status changes and sends them from a dispatcher thread."""

    def __init__(self, engine: Engine, settings: Settings, objects: ObjectStore,
                 metrics: Metrics) -> None:
        self.store = DeliveryStore(engine)
        self.settings, self.objects, self.metrics = settings, objects, metrics
        self.wake = threading.Event()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._lock = threading.Lock()
        self._in_flight: dict[str, str] = {}  # delivery id -> its URL, while being sent

    # -- recording ------------------------------------------------------------

    def record(self, session: Session, row: TaskRow) -> None:
        """A writer of ``TaskStore.changes``: in the transaction that changes the status, one
        delivery per status of a task with a callback_url (an outbox: both commit, or
        neither). The dispatcher is woken once the change has committed (``Services``)."""
        if not row.callback_url:
            return
        payload = self._payload(row)
        if payload is None:
            return
        status = TaskStatus(row.status)
        now = time.time()
        self.store.add_in(session, DeliveryRow(
            id="msg_" + secrets.token_hex(12), task_id=row.id, key_id=row.key_id,
            url=row.callback_url, status=status.value, payload=payload,
            state=PENDING, attempts=0,
            max_attempts=1 + (self.settings.callback_retries if status.final else 0),
            next_attempt_at=now, created_at=now, updated_at=now,
        ))

    def _payload(self, row: TaskRow) -> dict[str, Any] | None:
        """The body in the dialect of the surface the task was created on (None: no callback).

        Tasks created on ``/v1/videos`` get OpenAI-style ``video.completed`` /
        ``video.failed`` events; every other task gets the Ark task object.
        """
        if (row.request or {}).get("surface") == "openai":
            return video_event(row)
        return task_object(row, self.objects)

    # -- dispatching ----------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """The dispatcher loop: send what is due, sleep until the next row is due or woken."""
        with ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="callback") as pool:
            while not stop.is_set():
                try:
                    self._renew()
                    self.dispatch(pool)
                    wait = self._idle_wait()
                except ServiceUnavailable:  # logged where it was met, once in a while
                    wait = RENEW_EVERY if self._in_flight else MAX_IDLE_WAIT
                except Exception:  # a store hiccup must not end the loop
                    log.exception("callback dispatch failed")
                    wait = RENEW_EVERY if self._in_flight else MAX_IDLE_WAIT
                self.wake.wait(wait)
                self.wake.clear()

    def dispatch(self, pool: ThreadPoolExecutor) -> int:
        """Claim due rows (as many as there are free senders) and hand them to the pool."""
        free = 0
        while self._slots.acquire(blocking=False):
            free += 1
        rows: list[DeliveryRow] = []
        try:
            if free:
                with self._lock:
                    busy = Counter(receiver_of(url) for url in self._in_flight.values())
                rows = self.store.claim_due(self._lease(), free, busy=busy,
                                            per_receiver=PER_RECEIVER)
        finally:  # a store error must not keep the slots: no later pass would find one
            for _ in range(free - len(rows)):
                self._slots.release()
        for row in rows:
            with self._lock:
                self._in_flight[row.id] = row.url
            pool.submit(self._send_and_release, row)
        return len(rows)

    def drain(self) -> None:
        """Send everything due now, in this thread (``segue worker --burst``)."""
        while rows := self.store.claim_due(self._lease(), POOL_SIZE):
            for row in rows:
                self.send(row)

    def _renew(self) -> None:
        """Keep the rows being sent leased: no other process may send them meanwhile."""
        with self._lock:
            ids = list(self._in_flight)
        self.store.renew(ids, self._lease())

    def _idle_wait(self) -> float:
        """Until a row becomes claimable (woken earlier by a new row or a finished send); at
        most ``MAX_IDLE_WAIT``, for rows written by other processes, and ``RENEW_EVERY``
        while sends are open."""
        longest = RENEW_EVERY if self._in_flight else MAX_IDLE_WAIT
        now = time.time()
        due = self.store.next_due(now)
        if due is None:
            return longest
        return min(longest, max(0.01, due - now))

    def _lease(self) -> float:
        return self.settings.callback_timeout + LEASE_MARGIN

    def _send_and_release(self, row: DeliveryRow) -> None:
        try:
            self.send(row)
        except Exception as exc:
            # A failure send() does not know is not going away on its own: end the delivery
            # rather than leave it to be claimed again when its lease runs out, forever.
            log.exception("callback send failed", extra={"task_id": row.task_id})
            self._settle(row, None, f"{type(exc).__name__}: {exc}", permanent=True)
        finally:
            with self._lock:
                self._in_flight.pop(row.id, None)
            self._slots.release()
            self.wake.set()  # the task's next delivery may be waiting for this one

    # -- sending --------------------------------------------------------------

    def send(self, row: DeliveryRow) -> None:
        """One attempt; its outcome decides: delivered, retry later, or failed."""
        code, error, permanent = None, None, False
        try:
            code = post(row.url, self._body(row), self._headers(row), self.settings)
            if not 200 <= code < 300:
                error = f"the receiver answered HTTP {code}"
        except Refused as exc:
            error, permanent = str(exc), True
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.callback_timeout:g} s"
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._settle(row, code, error, permanent)

    def _settle(self, row: DeliveryRow, code: int | None, error: str | None,
                permanent: bool) -> None:
        attempts = row.attempts + 1
        if error is None:
            state, retry_at, outcome = DELIVERED, None, "delivered"
        elif permanent or attempts >= row.max_attempts:
            state, retry_at, outcome = FAILED, None, "failed"
        else:
            state, retry_at, outcome = PENDING, time.time() + self._backoff(attempts), "retry"
        self.store.settle(row.id, state, code=code, error=error, retry_at=retry_at)
        self.metrics.callbacks.labels(outcome).inc()
        log.info("callback", extra={"task_id": row.task_id, "status": row.status,
                                    "attempt": attempts, "outcome": outcome, "error": error})

    def _backoff(self, attempts: int) -> float:
        steps = self.settings.callback_backoff or [2.0]
        delay = steps[min(attempts, len(steps)) - 1]
        return delay * (1 + random.uniform(0, JITTER))

    @staticmethod
    def _body(row: DeliveryRow) -> str:
        return json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False)

    def _headers(self, row: DeliveryRow) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "segue-callbacks"}
        secret = self.store.secret_for(row.key_id)
        if secret:
            now = datetime.now(UTC)
            try:
                signature = Webhook(secret).sign(row.id, now, self._body(row))
            except Exception as exc:
                raise Refused(f"the key's webhook secret is unusable ({exc}).") from exc
            headers.update({"webhook-id": row.id, "webhook-timestamp": str(int(now.timestamp())),
                            "webhook-signature": signature})
        return headers
