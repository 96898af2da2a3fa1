"""The tables. Changes here need a new Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    service_tier: Mapped[str] = mapped_column(String(16))
    # the request's settings; its images and reference media are in ``task_inputs``
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    resolution: Mapped[str] = mapped_column(String(8))
    ratio: Mapped[str] = mapped_column(String(16))
    duration: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    tokens: Mapped[int | None] = mapped_column(Integer)
    video_key: Mapped[str | None] = mapped_column(String(300))
    last_frame_key: Mapped[str | None] = mapped_column(String(300))
    error_code: Mapped[str | None] = mapped_column(String(120))
    error_message: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta: Mapped[float | None] = mapped_column(Float)
    callback_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)  # created_at + execution_expires_after
    links_expire_at: Mapped[float | None] = mapped_column(Float)
    worker_id: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # high first

    __table_args__ = (
        Index("ix_tasks_queue", "status", "service_tier", "created_at"),
        # The claim's read of queued rows (``TaskStore._next_claimable``): only queued rows,
        # in the order claims take them, so a claim reads one index entry, not the queue.
        Index("ix_tasks_claim", "service_tier", text("priority DESC"), "created_at",
              postgresql_where=text("status = 'queued'"),
              sqlite_where=text("status = 'queued'")),
        Index("ix_tasks_key_created", "key_id", "created_at"),
        # Housekeeping's look for files whose links lapsed (``TaskStore.lapsed_files``),
        # run by every process: only the tasks that still keep files, by link expiry.
        Index("ix_tasks_lapsed_files", "links_expire_at",
              postgresql_where=text("video_key IS NOT NULL"),
              sqlite_where=text("video_key IS NOT NULL")),
        UniqueConstraint("key_id", "idempotency_key", name="uq_tasks_idempotency"),
        # vacuumed once 1 % of the rows are dead, not PostgreSQL's 20 %: claims and finishes
        # leave dead tuples in the queue's indexes (migration 0008)
        {"postgresql_with": {"autovacuum_vacuum_scale_factor": 0.01,
                             "autovacuum_analyze_scale_factor": 0.02}},
    )


# The order claims take queued tasks in, within a tier; ``ix_tasks_claim`` follows it.
CLAIM_ORDER = (TaskRow.priority.desc(), TaskRow.created_at)


class TaskInputRow(Base):
    """A task's input media: the images and reference media of its request.

    Apart from ``tasks`` because a data URL makes them megabytes: polls, listings and
    claims read the task row alone; the worker (and a draft's final) read these too.
    Deleted with their task (``ON DELETE CASCADE``).
    """

    __tablename__ = "task_inputs"

    task_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


INPUTS = ("images", "media")  # the request's fields kept in ``task_inputs``


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    rate_limit: Mapped[int | None] = mapped_column(Integer)  # creates per window; None: default
    max_queued: Mapped[int | None] = mapped_column(Integer)


class DeliveryRow(Base):
    """One callback delivery: a task status sent to its callback_url, with its retries."""

    __tablename__ = "callback_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(40), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # the task status this delivery reports
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_deliveries_due", "state", "next_attempt_at"),)


class CreateRow(Base):
    """One accepted create, kept for the sliding-window rate limit.

    The limit counts these rather than tasks, so deleting a finished task does not make
    room for another create within the window. Rows older than the window are pruned.
    """

    __tablename__ = "create_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_create_ledger_key_created", "key_id", "created_at"),)


class WorkerProcessRow(Base):
    """A running process with workers, and the models they serve (``segue.tasks.fleet``)."""

    __tablename__ = "worker_processes"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # host-pid
    served: Mapped[list[str]] = mapped_column(JSON)  # registry model ids its workers render
    unavailable: Mapped[dict[str, str]] = mapped_column(JSON)  # model id -> why not here
    seen_at: Mapped[float] = mapped_column(Float)
