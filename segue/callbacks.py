"""Callbacks: ``POST callback_url`` with the task object on every status change.

Each status change of a task that has a ``callback_url`` becomes a row in
``callback_deliveries`` (``DeliveryRow``), written by the process that made the
change. A dispatcher thread in every server and worker process claims due rows
with a lease (so two processes never send the same row at once) and sends them
from a small thread pool, never from the render path: a slow receiver delays
nothing but its own callback.

Final statuses are retried with backoff and jitter; the others are sent once.
Because the schedule is in the store, a restart loses no pending retry. When
the task's key has a signing secret, each request carries Standard Webhooks
headers; the delivery id is the ``webhook-id`` and stays the same across
retries, so a receiver can drop duplicates.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from standardwebhooks import Webhook

from segue.domain import TaskStatus
from segue.errors import InvalidParameter
from segue.media.addresses import (
    MalformedHost,
    canonical_url,
    first_refused,
    refusal,
    refused_literal,
    resolve,
)
from segue.metrics import Metrics
from segue.settings import Settings
from segue.storage.base import ObjectStore
from segue.tasks.db import SqlStore
from segue.tasks.schema import ApiKeyRow, DeliveryRow, TaskRow
from segue.tasks.videos import video_event
from segue.tasks.view import task_object

log = logging.getLogger("segue.callbacks")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
POOL_SIZE = 8  # concurrent sends per process
MAX_IDLE_WAIT = 2.0  # the dispatcher looks for rows written by other processes this often
JITTER = 0.25  # each backoff is stretched by a random 0..25 %


class Refused(Exception):
    """A delivery that must not be retried (a forbidden address, a broken secret)."""


def check_callback_url(url: str | None, settings: Settings) -> None:
    """Create-time check: an IP literal in a private range is refused before the task exists.

    Names are resolved (and checked) at each delivery, as image URLs are.
    """
    if url is None:
        return
    try:
        host = urlsplit(url).hostname
    except ValueError:
        raise InvalidParameter("callback_url", f"the URL {url!r} is malformed.") from None
    if not host:
        raise InvalidParameter("callback_url", f"the URL {url!r} names no host.")
    try:
        literal = refused_literal(host, settings)
        httpx.URL(canonical_url(url))  # what the sender will parse: refuse now what it cannot
    except MalformedHost as exc:
        raise InvalidParameter("callback_url", f"the URL's host {exc}.") from None
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidParameter("callback_url", f"the URL {url!r} is malformed ({exc}).") from None
    if literal is not None:
        raise InvalidParameter("callback_url", refusal(host, literal))


class DeliveryStore(SqlStore):
    """The rows of ``callback_deliveries``: small transactions, one per step."""

    def add(self, row: DeliveryRow) -> bool:
        """Insert unless this task's status was already recorded (a repeated notification)."""
        with self._tx() as s:
            seen = s.scalar(select(func.count()).where(
                DeliveryRow.task_id == row.task_id, DeliveryRow.status == row.status))
            if seen:
                return False
            s.add(row)
        return True

    def claim_due(self, lease: float, limit: int, now: float | None = None) -> list[DeliveryRow]:
        """Lease up to ``limit`` due rows, oldest first, at most one in flight per task."""
        now = now or time.time()
        other = aliased(DeliveryRow)
        in_flight = exists().where(
            other.task_id == DeliveryRow.task_id, other.id != DeliveryRow.id,
            other.state == PENDING, other.lease_until > now)
        free = or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until <= now)
        q = (select(DeliveryRow)
             .where(DeliveryRow.state == PENDING, DeliveryRow.next_attempt_at <= now, free,
                    ~in_flight)
             .order_by(DeliveryRow.next_attempt_at, DeliveryRow.created_at).limit(limit))
        if self._postgres:
            q = q.with_for_update(skip_locked=True)
        with self._tx() as s:
            rows, tasks = [], set()
            for row in s.scalars(q).all():
                if row.task_id in tasks:  # the task's next status waits for this one
                    continue
                tasks.add(row.task_id)
                row.lease_until = now + lease
                rows.append(row)
        return rows

    def settle(self, delivery_id: str, state: str, *, code: int | None, error: str | None,
               retry_at: float | None) -> None:
        """Record one attempt's outcome and release the lease."""
        now = time.time()
        values: dict[str, object] = dict(
            state=state, attempts=DeliveryRow.attempts + 1, last_status_code=code,
            last_error=error, updated_at=now, lease_until=None)
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        with self._tx() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))

    def next_due(self) -> float | None:
        with self._tx() as s:
            return s.scalar(select(func.min(DeliveryRow.next_attempt_at))
                            .where(DeliveryRow.state == PENDING))

    def backlog(self) -> int:
        """Deliveries not yet settled (first attempts and scheduled retries)."""
        with self._tx() as s:
            return s.scalar(select(func.count()).where(DeliveryRow.state == PENDING)) or 0

    def for_task(self, task_id: str) -> list[DeliveryRow]:
        with self._tx() as s:
            return list(s.scalars(select(DeliveryRow).where(DeliveryRow.task_id == task_id)
                                  .order_by(DeliveryRow.created_at)).all())

    def secret_for(self, key_id: str) -> str | None:
        with self._tx() as s:
            return s.scalar(select(ApiKeyRow.webhook_secret).where(ApiKeyRow.id == key_id))

    def prune(self, task_ids: list[str], before: float) -> None:
        """Forget deliveries of swept tasks, and settled ones older than ``before``."""
        with self._tx() as s:
            gone = and_(DeliveryRow.state != PENDING, DeliveryRow.updated_at < before)
            if task_ids:
                gone = or_(gone, DeliveryRow.task_id.in_(task_ids))
            s.execute(delete(DeliveryRow).where(gone))


class Callbacks:
    """Records deliveries on status changes and sends them from a dispatcher thread."""

    def __init__(self, engine: Engine, settings: Settings, objects: ObjectStore,
                 metrics: Metrics) -> None:
        self.store = DeliveryStore(engine)
        self.settings, self.objects, self.metrics = settings, objects, metrics
        self.wake = threading.Event()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)

    # -- recording ------------------------------------------------------------

    def on_status_change(self, row: TaskRow) -> None:
        """A ``Services`` listener: one delivery per status of a task with a callback_url."""
        if not row.callback_url:
            return
        payload = self._payload(row)
        if payload is None:
            return
        status = TaskStatus(row.status)
        now = time.time()
        delivery = DeliveryRow(
            id="msg_" + secrets.token_hex(12), task_id=row.id, key_id=row.key_id,
            url=row.callback_url, status=status.value, payload=payload,
            state=PENDING, attempts=0,
            max_attempts=1 + (self.settings.callback_retries if status.final else 0),
            next_attempt_at=now, created_at=now, updated_at=now,
        )
        if self.store.add(delivery):
            self.wake.set()

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
                    self.dispatch(pool)
                    wait = self._idle_wait()
                except Exception:  # a store hiccup must not end the loop
                    log.exception("callback dispatch failed")
                    wait = MAX_IDLE_WAIT
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
                rows = self.store.claim_due(self._lease(), free)
        finally:  # a store error must not keep the slots: no later pass would find one
            for _ in range(free - len(rows)):
                self._slots.release()
        for row in rows:
            pool.submit(self._send_and_release, row)
        return len(rows)

    def drain(self) -> None:
        """Send everything due now, in this thread (``segue worker --burst``)."""
        while rows := self.store.claim_due(self._lease(), POOL_SIZE):
            for row in rows:
                self.send(row)

    def _idle_wait(self) -> float:
        due = self.store.next_due()
        if due is None:
            return MAX_IDLE_WAIT
        return min(MAX_IDLE_WAIT, max(0.01, due - time.time()))

    def _lease(self) -> float:
        # long enough for one attempt (DNS, connect, answer) to end on its own
        return 2 * self.settings.callback_timeout + 30

    def _send_and_release(self, row: DeliveryRow) -> None:
        try:
            self.send(row)
        except Exception as exc:
            # A failure send() does not know is not going away on its own: end the delivery
            # rather than leave it to be claimed again when its lease runs out, forever.
            log.exception("callback send failed", extra={"task_id": row.task_id})
            self._settle(row, None, f"{type(exc).__name__}: {exc}", permanent=True)
        finally:
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


def post(url: str, body: str, headers: dict[str, str], settings: Settings) -> int:
    """POST to an address checked after resolution (the connection is pinned to it).

    Redirects are not followed; the timeout bounds connecting and waiting for the
    answer's status line. Returns the HTTP status.
    """
    try:
        target = httpx.URL(canonical_url(url))
    except (httpx.InvalidURL, ValueError) as exc:  # MalformedHost is a ValueError
        raise Refused(f"the callback URL {url!r} cannot be sent ({exc}).") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise Refused(f"the callback URL {url!r} is not an http or https URL.")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        addresses = resolve(target.host, port)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"the host {target.host} does not resolve") from exc
    address = first_refused(addresses, settings)
    if address is not None:
        raise Refused(refusal(target.host, address))
    with httpx.Client(follow_redirects=False, trust_env=False,
                      timeout=settings.callback_timeout) as client:
        request = client.build_request(
            "POST", target.copy_with(host=addresses[0]), content=body.encode(),
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host},
        )
        response = client.send(request, stream=True)
        response.close()
        return response.status_code
