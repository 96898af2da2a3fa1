"""The rows of ``callback_deliveries``: small transactions, one per step."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from segue.tasks.db import SqlStore
from segue.tasks.schema import ApiKeyRow, DeliveryRow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# How many due rows a claim looks through to find ones whose receiver has a free share
# of the senders: rows of busy receivers ahead of them are passed over, not waited on.
CLAIM_SCAN = 256


def receiver_of(url: str) -> str:
    """The receiver a delivery goes to, as its concurrency is counted: host and port."""
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or parts.scheme}"
    except ValueError:
        return url  # a malformed URL is its own receiver (it fails at once anyway)


class DeliveryStore(SqlStore):
    def add(self, row: DeliveryRow) -> bool:
        """Insert unless this task's status was already recorded (a repeated notification)."""
        with self._tx() as s:
            return self.add_in(s, row)

    @staticmethod
    def add_in(session: Session, row: DeliveryRow) -> bool:
        """``add`` in the caller's transaction (the one that changes the task's status).

        A status seen before adds nothing: a task taken over, or handed back and claimed
        again, is ``running`` once to its receiver.
        """
        seen = session.scalar(select(func.count()).where(
            DeliveryRow.task_id == row.task_id, DeliveryRow.status == row.status))
        if seen:
            return False
        session.add(row)
        return True

    def claim_due(self, lease: float, limit: int, now: float | None = None, *,
                  busy: Mapping[str, int] | None = None,
                  per_receiver: int | None = None) -> list[DeliveryRow]:
        """Lease up to ``limit`` due rows, oldest first, at most one in flight per task.

        With ``per_receiver``, rows whose receiver (``receiver_of``) already has that many
        in flight (``busy`` counts this process's) are left for later.
        """
        now = now or time.time()
        other = aliased(DeliveryRow)
        in_flight = exists().where(
            other.task_id == DeliveryRow.task_id, other.id != DeliveryRow.id,
            other.state == PENDING, other.lease_until > now)
        free = or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until <= now)
        q = (select(DeliveryRow)
             .where(DeliveryRow.state == PENDING, DeliveryRow.next_attempt_at <= now, free,
                    ~in_flight)
             .order_by(DeliveryRow.next_attempt_at, DeliveryRow.created_at)
             .limit(limit if per_receiver is None else max(limit, CLAIM_SCAN)))
        if self._postgres:
            q = q.with_for_update(skip_locked=True)
        counts = dict(busy or {})
        with self._tx() as s:
            rows: list[DeliveryRow] = []
            tasks: set[str] = set()
            for row in s.scalars(q):
                if row.task_id in tasks:
                    continue
                tasks.add(row.task_id)  # its later statuses wait for this one, sent or not
                receiver = receiver_of(row.url)
                if per_receiver is not None and counts.get(receiver, 0) >= per_receiver:
                    continue
                counts[receiver] = counts.get(receiver, 0) + 1
                row.lease_until = now + lease
                rows.append(row)
                if len(rows) >= limit:
                    break
        return rows

    def renew(self, delivery_ids: Sequence[str], lease: float) -> None:
        """Extend the lease of rows still being sent, so no other process sends them too."""
        if not delivery_ids:
            return
        with self._tx() as s:
            s.execute(update(DeliveryRow)
                      .where(DeliveryRow.id.in_(list(delivery_ids)), DeliveryRow.state == PENDING,
                             DeliveryRow.lease_until.is_not(None))
                      .values(lease_until=time.time() + lease))

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

    def next_due(self, now: float | None = None) -> float | None:
        """When a pending row next becomes claimable, later than ``now``: its retry time, or
        the end of its lease. Rows claimable already are not counted: a pass has just left
        them, because the task's earlier status, the receiver's share or the senders are
        busy, and a sender that finishes wakes the dispatcher."""
        now = now or time.time()
        ready = case((DeliveryRow.lease_until > DeliveryRow.next_attempt_at,
                      DeliveryRow.lease_until), else_=DeliveryRow.next_attempt_at)
        with self._read() as s:
            return s.scalar(select(func.min(ready))
                            .where(DeliveryRow.state == PENDING, ready > now))

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
