"""The task store: the durable record of every task, and the queue workers claim from.

One implementation serves SQLite and PostgreSQL. The only dialect difference is
how a claim locks: PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so that many
workers claim in parallel; SQLite takes its single write lock at ``BEGIN
IMMEDIATE`` (see ``db.py``), which makes select-then-update atomic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

from segue.domain import ServiceTier, TaskStatus
from segue.errors import BadRequest, TooManyRequests, task_not_found
from segue.tasks.changes import StatusChanges
from segue.tasks.db import RowReader, SqlStore, store_errors
from segue.tasks.notify import notify
from segue.tasks.schema import CLAIM_ORDER, INPUTS, CreateRow, TaskInputRow, TaskRow
from segue.tasks.states import can_move, delete_action

S = TaskStatus
MAX_ATTEMPTS = 3  # a task whose worker died this many times fails instead of running again
IDEMPOTENCY_TTL = 86_400


@dataclass(frozen=True)
class CreateLimits:
    """Per-key limits checked in the same transaction as the insert."""

    rate: int  # creates allowed in any `window` seconds for models of this tier
    window: int
    tier_models: Sequence[str]  # the model ids counted together with this one
    max_queued: int
    # the wait suggested (Retry-After) when the queue is full: a hint, since no one knows
    # when the key's queued tasks will start
    queue_retry_after: int = 10


@dataclass(frozen=True)
class QueueStats:
    queued: dict[tuple[str, str], tuple[int, float]]  # (model, tier) -> (count, oldest created_at)
    running: dict[str, int]  # model -> running tasks


class TaskStore(SqlStore):
    """Every status change is told to ``changes`` (``segue.tasks.changes``): inside its
    transaction, which is how each change and its callback deliveries commit together,
    and after the commit."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._get = RowReader(engine, select(TaskRow.__table__)
                              .where(TaskRow.id == bindparam("id")))
        self.changes = StatusChanges()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with super()._tx() as s:
            yield s
            changed = self.changes.take(s)
        self.changes.announce(changed)

    # -- creating and reading -------------------------------------------------

    def create(self, row: TaskRow, limits: CreateLimits | None = None) -> TaskRow:
        """Insert a queued task, durably, unless a limit or an idempotent twin says otherwise.

        ``row.request`` is the whole request; its input media are stored in ``task_inputs``
        and taken out of the row (``full_request`` puts them back).
        """
        inputs = TaskInputRow(task_id=row.id, **{f: row.request.get(f, []) for f in INPUTS})
        row.request = {k: v for k, v in row.request.items() if k not in INPUTS}
        with self._tx() as s:
            if self._postgres:  # serialise creates of one key across replicas
                s.execute(select(func.pg_advisory_xact_lock(func.hashtext(row.key_id))))
            if row.idempotency_key:
                twin = self._idempotent_twin(s, row)
                if twin is not None:
                    return twin
            if limits is not None:
                self._check_limits(s, row, limits)
            s.add(row)
            s.flush()  # the task before its inputs, which refer to it
            s.add(inputs)
            self.changes.record(s, row)
            s.add(CreateRow(key_id=row.key_id, model=row.model, created_at=row.created_at))
            if self._postgres:
                notify(s)  # delivered once this commits
        return row

    def _idempotent_twin(self, s: Session, row: TaskRow) -> TaskRow | None:
        twin = s.scalars(select(TaskRow).where(
            TaskRow.key_id == row.key_id, TaskRow.idempotency_key == row.idempotency_key,
        )).first()
        if twin is None:
            return None
        if twin.created_at < row.created_at - IDEMPOTENCY_TTL:
            twin.idempotency_key = None  # lapsed: the key may be used again
            s.flush()
            return None
        if twin.request_hash != row.request_hash:
            raise BadRequest(
                "The Idempotency-Key was already used with a different request body.",
                code="InvalidParameter.IdempotencyKey", param="Idempotency-Key",
            )
        return twin

    def _check_limits(self, s: Session, row: TaskRow, limits: CreateLimits) -> None:
        now = row.created_at
        # creates are counted in the ledger: a deleted task's create still counts
        tier = (CreateRow.key_id == row.key_id, CreateRow.model.in_(limits.tier_models))
        s.execute(delete(CreateRow).where(*tier, CreateRow.created_at <= now - limits.window))
        recent = s.execute(
            select(func.count(), func.min(CreateRow.created_at)).where(
                *tier, CreateRow.created_at > now - limits.window)
        ).one()
        if recent[0] >= limits.rate:
            wait = max(1, int(recent[1] + limits.window - now + 0.999))
            raise TooManyRequests(
                f"Your account has exceeded the create rate limit of {limits.rate} requests "
                f"per {limits.window} s for this model. Please retry after {wait} s.",
                code="RateLimitExceeded.EndpointRPMExceeded", retry_after=wait,
            )
        queued = s.scalar(select(func.count()).where(
            TaskRow.key_id == row.key_id, TaskRow.status == S.QUEUED,
        ))
        if queued is not None and queued >= limits.max_queued:
            raise TooManyRequests(
                f"The request has exceeded the quota: at most {limits.max_queued} tasks may be "
                "queued at once. Wait for some to finish.",
                code="QuotaExceeded", retry_after=limits.queue_retry_after,
            )

    def get(self, task_id: str, key_id: str | None = None) -> TaskRow:
        """The task, read-only; a task of another key is as unknown as a missing one.

        Every poll comes here, so it reads on the driver's cursor (``RowReader``): the row
        returned has the attributes of a ``TaskRow`` but is a plain, immutable record.
        """
        row = self._get.first(id=task_id)
        if row is None or (key_id is not None and row.key_id != key_id):
            raise task_not_found(task_id)
        return cast(TaskRow, row)

    def version(self) -> object | None:
        """A value that changes whenever anything is committed to the database, by any
        process, as this thread sees it: what was read while it stayed the same is still
        what the database holds. None where the database cannot tell cheaply (PostgreSQL)."""
        return self._get.version()

    def full_request(self, row: TaskRow) -> dict[str, Any]:
        """The task's whole request, as created: its settings with its input media."""
        with self._read() as s:
            inputs = s.get(TaskInputRow, row.id)
        if inputs is None:
            raise task_not_found(row.id)  # deleted since ``row`` was read
        return {**row.request, "images": inputs.images, "media": inputs.media}

    def list_page(
        self, key_id: str, *, page_num: int = 1, page_size: int = 10,
        status: str | None = None, task_ids: Sequence[str] = (), model: str | None = None,
        service_tier: str | None = None, since: float | None = None,
    ) -> tuple[int, list[TaskRow]]:
        where = [TaskRow.key_id == key_id]
        if status:
            where.append(TaskRow.status == status)
        if task_ids:
            where.append(TaskRow.id.in_(list(task_ids)))
        if model:
            where.append(TaskRow.model == model)
        if service_tier:
            where.append(TaskRow.service_tier == service_tier)
        if since is not None:
            where.append(TaskRow.created_at >= since)
        with self._read() as s:
            total = s.scalar(select(func.count()).select_from(TaskRow).where(*where)) or 0
            rows = s.scalars(
                select(TaskRow).where(*where)
                .order_by(TaskRow.created_at.desc(), TaskRow.id.desc())
                .offset((page_num - 1) * page_size).limit(page_size)
            ).all()
        return total, list(rows)

    def list_after(
        self, key_id: str, *, after: str | None = None, limit: int = 20, newest_first: bool = True,
        since: float | None = None,
    ) -> tuple[list[TaskRow], bool]:
        """A cursor page: up to ``limit`` tasks past the task ``after``, and whether more follow.

        Ordered by (created_at, id), so a cursor stays valid while tasks are added.
        """
        where = [TaskRow.key_id == key_id]
        if since is not None:
            where.append(TaskRow.created_at >= since)
        order = (TaskRow.created_at.desc(), TaskRow.id.desc()) if newest_first else (
            TaskRow.created_at.asc(), TaskRow.id.asc())
        with self._tx() as s:
            if after is not None:
                cursor = s.get(TaskRow, after)
                if cursor is None or cursor.key_id != key_id:
                    raise task_not_found(after)
                key = tuple_(TaskRow.created_at, TaskRow.id)
                mark = tuple_(cursor.created_at, cursor.id)
                where.append(key < mark if newest_first else key > mark)
            rows = list(s.scalars(select(TaskRow).where(*where).order_by(*order)
                                  .limit(limit + 1)).all())
        return rows[:limit], len(rows) > limit

    def delete(self, task_id: str, key_id: str, now: float | None = None) -> tuple[str, TaskRow]:
        """DELETE: cancel a queued task or remove a finished one (``states.delete_action``)."""
        now = now or time.time()
        with self._tx() as s:
            row = s.get(TaskRow, task_id, with_for_update=self._postgres)
            if row is None or row.key_id != key_id:
                raise task_not_found(task_id)
            action = delete_action(task_id, S(row.status))
            if action == "cancel":
                row.status, row.updated_at, row.finished_at = S.CANCELLED, now, now
                self.changes.record(s, row)
            else:
                s.delete(row)
        return action, row

    # -- the worker's side ----------------------------------------------------

    def claim(
        self, worker_id: str, lease_ttl: float, models: Sequence[str] | None = None,
        now: float | None = None,
    ) -> TaskRow | None:
        """Take the next task: default tier first, then higher priority, then oldest first;
        flex only behind no default.

        A running task whose lease lapsed (its worker died) is taken over, before the
        queued tasks of its tier (it has waited longest). ``attempts`` above 1 on the
        returned row means it was taken over.
        """
        now = now or time.time()
        with self._tx() as s:
            while True:
                row = self._next_claimable(s, models, now)
                if row is None:
                    return None
                if row.attempts >= MAX_ATTEMPTS:
                    self._set_final(s, row, S.FAILED, now, "InternalServiceError",
                                    f"The task was interrupted {row.attempts} times (its worker "
                                    "stopped) and was given up.")
                    continue
                row.status, row.worker_id = S.RUNNING, worker_id
                row.lease_until, row.attempts = now + lease_ttl, row.attempts + 1
                row.started_at = row.updated_at = now
                row.progress, row.eta = 0.0, None
                self.changes.record(s, row)
                return row

    def any_queued(self, models: Sequence[str] | None = None) -> bool:
        """Whether a queued task of ``models`` is there: one read of the claim index, a
        fraction of what an empty ``claim`` costs (a transaction and four locking reads).
        Lapsed leases are not looked at: the worker's regular poll claims those."""
        q = select(TaskRow.id).where(TaskRow.status == literal_column(f"'{S.QUEUED.value}'"),
                                     TaskRow.expires_at > time.time())
        if models is not None:
            q = q.where(TaskRow.model.in_(list(models)))
        with self._read() as s:
            return s.execute(q.limit(1)).first() is not None

    def _next_claimable(
        self, s: Session, models: Sequence[str] | None, now: float
    ) -> TaskRow | None:
        """One small query per stream, each read in the order of its index.

        A single query over queued and lapsed rows, ordered by tier then age, makes
        PostgreSQL sort every queued row on each claim; the queued streams instead walk
        the partial index ``ix_tasks_claim`` (queued rows only, in claim order) and stop
        at the first row no other claimer holds.
        """
        for tier in (ServiceTier.DEFAULT, ServiceTier.FLEX):
            for status in (S.RUNNING, S.QUEUED):
                # the status as a literal, so that PostgreSQL matches the partial index's
                # predicate even in a prepared statement's generic plan
                q = select(TaskRow).where(TaskRow.status == literal_column(f"'{status.value}'"),
                                          TaskRow.service_tier == tier,
                                          TaskRow.expires_at > now)
                if status is S.RUNNING:
                    q = q.where(TaskRow.lease_until < now)
                if models is not None:
                    q = q.where(TaskRow.model.in_(list(models)))
                if tier is ServiceTier.FLEX:
                    q = q.where(~self._default_waits(now))
                q = q.order_by(*CLAIM_ORDER).limit(1)
                if self._postgres:
                    q = q.with_for_update(skip_locked=True)
                row = s.scalars(q).first()
                if row is not None:
                    return row
        return None

    @staticmethod
    def _default_waits(now: float):  # type: ignore[no-untyped-def]
        """A default-tier task of the same model is queued (flex tasks wait behind it)."""
        other = aliased(TaskRow)
        return exists().where(
            other.status == S.QUEUED, other.service_tier == ServiceTier.DEFAULT,
            other.model == TaskRow.model, other.expires_at > now,
        )

    def heartbeat(self, task_id: str, worker_id: str, lease_ttl: float,
                  progress: float | None = None, eta: float | None = None) -> bool:
        """Renew the lease (and record progress); False when the task is no longer ours."""
        now = time.time()
        values: dict[str, object] = {"lease_until": now + lease_ttl, "updated_at": now}
        if progress is not None:
            values.update(progress=progress, eta=eta)
        # the commonest write (every running task, once a second): a statement on a
        # connection, without an ORM session, which cost three times the statement's own
        # client time (``benchmarks/scale.py``)
        table = cast(Table, TaskRow.__table__)
        tasks = table.c
        with store_errors(self.engine), self._writer, self.engine.begin() as conn:
            result = conn.execute(
                update(table)
                .where(tasks.id == task_id, tasks.worker_id == worker_id,
                       tasks.status == S.RUNNING, tasks.expires_at > now)
                .values(**values)
            )
        return bool(result.rowcount)

    def finish(
        self, task_id: str, worker_id: str, status: TaskStatus, *,
        error_code: str | None = None, error_message: str | None = None, **fields: object,
    ) -> TaskRow | None:
        """End a running task held by ``worker_id``; None when it is no longer ours."""
        now = time.time()
        with self._tx() as s:
            row = s.get(TaskRow, task_id, with_for_update=self._postgres)
            if row is None or row.worker_id != worker_id or row.status != S.RUNNING:
                return None
            for name, value in fields.items():
                setattr(row, name, value)
            self._set_final(s, row, status, now, error_code, error_message)
        return row

    def release(self, task_id: str, worker_id: str) -> bool:
        """Hand a running task back to the queue (its worker is shutting down cleanly)."""
        with self._tx() as s:
            result = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.worker_id == worker_id,
                       TaskRow.status == S.RUNNING)
                .values(status=S.QUEUED, worker_id=None, lease_until=None, progress=0.0,
                        eta=None, attempts=TaskRow.attempts - 1, updated_at=time.time())
            )
            if self._postgres and result.rowcount:  # type: ignore[attr-defined]
                notify(s)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _set_final(self, s: Session, row: TaskRow, status: TaskStatus, now: float,
                   code: str | None = None, message: str | None = None) -> None:
        if not can_move(S(row.status), status):
            raise RuntimeError(f"task {row.id}: {row.status} -> {status} is not a transition")
        row.status, row.updated_at, row.finished_at = status, now, now
        row.lease_until = None
        if status is S.SUCCEEDED:
            row.progress, row.eta = 100.0, 0.0
        row.error_code, row.error_message = code, message
        self.changes.record(s, row)

    # -- housekeeping ---------------------------------------------------------

    def expire_overdue(self, now: float | None = None) -> list[TaskRow]:
        """Queued or running tasks past ``created_at + execution_expires_after`` -> expired."""
        now = now or time.time()
        with self._tx() as s:
            q = select(TaskRow).where(
                TaskRow.status.in_([S.QUEUED, S.RUNNING]), TaskRow.expires_at <= now
            )
            if self._postgres:
                q = q.with_for_update(skip_locked=True)
            rows = list(s.scalars(q).all())
            for row in rows:
                self._set_final(s, row, S.EXPIRED, now, "TaskExpired",
                                "The task did not finish within execution_expires_after "
                                f"({int(row.expires_at - row.created_at)} s).")
        return rows

    def sweep(self, record_ttl: float, cancelled_ttl: float,
              now: float | None = None) -> list[TaskRow]:
        """Delete lapsed records; returns them so their files can be deleted too."""
        now = now or time.time()
        # every tier named, so that the read is a range of ``ix_tasks_queue`` (status, tier,
        # created_at) rather than all of a status's entries: every process sweeps once a
        # minute, and finished tasks are most of the table
        tiers = TaskRow.service_tier.in_([tier.value for tier in ServiceTier])
        lapsed = or_(
            and_(TaskRow.status == S.CANCELLED, tiers, TaskRow.updated_at <= now - cancelled_ttl),
            and_(TaskRow.status.in_([S.SUCCEEDED, S.FAILED, S.EXPIRED]), tiers,
                 TaskRow.created_at <= now - record_ttl),
        )
        with self._tx() as s:
            rows = list(s.scalars(select(TaskRow).where(lapsed)).all())
            if rows:
                s.execute(delete(TaskRow).where(TaskRow.id.in_([r.id for r in rows])))
        return rows

    def prune_ledger(self, window: float, now: float | None = None) -> None:
        """Forget creates older than the rate window (each create also prunes its own key's)."""
        now = now or time.time()
        with self._tx() as s:
            s.execute(delete(CreateRow).where(CreateRow.created_at <= now - window))

    def lapsed_files(self, now: float | None = None) -> list[TaskRow]:
        """Succeeded tasks whose links have expired but whose files are still kept."""
        now = now or time.time()
        with self._tx() as s:
            # a link is valid until its expiry rounded up to the second (view.py): the files
            # outlive it, so no valid link ever finds them gone
            rows = list(s.scalars(select(TaskRow).where(
                TaskRow.links_expire_at < now - 1, TaskRow.video_key.is_not(None),
            )).all())
            if rows:  # the rows returned keep their keys, so the caller can delete the files
                s.execute(update(TaskRow).where(TaskRow.id.in_([r.id for r in rows]))
                          .values(video_key=None, last_frame_key=None)
                          .execution_options(synchronize_session=False))
        return rows

    def queue_stats(self) -> QueueStats:
        """What the queue gauges show, read at scrape time (so it holds across replicas)."""
        with self._tx() as s:
            queued = s.execute(
                select(TaskRow.model, TaskRow.service_tier, func.count(),
                       func.min(TaskRow.created_at))
                .where(TaskRow.status == S.QUEUED)
                .group_by(TaskRow.model, TaskRow.service_tier)).all()
            running = s.execute(select(TaskRow.model, func.count())
                                .where(TaskRow.status == S.RUNNING)
                                .group_by(TaskRow.model)).all()
        return QueueStats(
            queued={(model, tier): (n, oldest) for model, tier, n, oldest in queued},
            running={model: n for model, n in running},
        )

    def counts(self) -> dict[str, int]:
        with self._read() as s:
            pairs = s.execute(select(TaskRow.status, func.count()).group_by(TaskRow.status)).all()
        return {status: n for status, n in pairs}
