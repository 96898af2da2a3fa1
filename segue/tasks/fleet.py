"""Which models the running workers serve.

A create for a model that no worker can render (its weights are not installed, it needs a
GPU that is not there, every worker was started with ``--models`` naming others) used to
be queued and wait until it expired. Each process with workers now keeps one row in
``worker_processes``: the models its workers serve and why any other cannot be served
there, written when its workers are ready and renewed every ``ADVERTISE_INTERVAL``. A
create is refused at once (404 ``ModelNotOpen``, with the workers' reason) when live
worker processes exist and none of them serves its model.

With no live worker process at all (an API-only server whose workers have not started,
or all of them restarting) creates are queued as before: workers may come, and the queue
is what carries a task over until they do. Rows are written with each machine's clock, as
leases are: the machines' clocks are expected to agree within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from segue.errors import ModelNotOpen
from segue.tasks.db import SqlStore
from segue.tasks.schema import WorkerProcessRow

ADVERTISE_INTERVAL = 10.0  # seconds between a process's renewals of its row
LIVE_FOR = 6 * ADVERTISE_INTERVAL  # a row not renewed for this long is a process gone
FORGET_AFTER = 86_400.0  # rows of processes gone this long are deleted (housekeeping)
CACHE_FOR = 2.0  # seconds a process reuses what it read, so a create costs no extra query


@dataclass(frozen=True)
class FleetView:
    """What the live worker processes serve, read at one moment."""

    processes: int  # live worker processes
    served: frozenset[str] = frozenset()
    unavailable: Mapping[str, str] = field(default_factory=dict)  # model id -> a reason

    def serves(self, model_id: str) -> bool | None:
        """Whether a live worker serves the model; None when no worker process is live."""
        return None if not self.processes else model_id in self.served

    def check(self, model_id: str, asked_as: str) -> None:
        """Raise 404 ``ModelNotOpen`` when live workers exist and none serves the model."""
        if self.serves(model_id) is not False:
            return
        reason = self.unavailable.get(model_id)
        why = (f"its workers cannot load it: {reason}" if reason else
               "no running worker serves it (workers choose their models with --models)")
        raise ModelNotOpen(f"The model {asked_as} is not open on this server: {why}")


class Fleet(SqlStore):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._cached: tuple[float, FleetView] | None = None
        self._lock = threading.Lock()

    def advertise(self, process: str, served: Iterable[str],
                  unavailable: Mapping[str, str], now: float | None = None) -> None:
        """Write (or renew) this process's row."""
        values = {"served": sorted(set(served)), "unavailable": dict(unavailable),
                  "seen_at": now or time.time()}
        insert = postgresql.insert if self._postgres else sqlite.insert
        upsert = insert(WorkerProcessRow).values(id=process, **values).on_conflict_do_update(
            index_elements=[WorkerProcessRow.id], set_=values)
        with self._tx() as s:
            s.execute(upsert)
        self._cached = None

    def leave(self, process: str) -> None:
        """A process that stops cleanly says so, rather than being live for ``LIVE_FOR``."""
        with self._tx() as s:
            s.execute(delete(WorkerProcessRow).where(WorkerProcessRow.id == process))
        self._cached = None

    def view(self, now: float | None = None) -> FleetView:
        now = now or time.time()
        with self._lock:
            if self._cached is not None and 0 <= now - self._cached[0] < CACHE_FOR:
                return self._cached[1]
        with self._read() as s:
            rows = s.execute(select(WorkerProcessRow.served, WorkerProcessRow.unavailable)
                             .where(WorkerProcessRow.seen_at >= now - LIVE_FOR)).all()
        served = frozenset(m for row in rows for m in row.served)
        reasons = {m: why for row in rows for m, why in row.unavailable.items()
                   if m not in served}
        view = FleetView(len(rows), served, reasons)
        with self._lock:
            self._cached = (now, view)
        return view

    def prune(self, now: float | None = None) -> None:
        """Delete the rows of processes gone for ``FORGET_AFTER`` (killed, not stopped)."""
        cutoff = (now or time.time()) - FORGET_AFTER
        with self._tx() as s:
            s.execute(delete(WorkerProcessRow).where(WorkerProcessRow.seen_at < cutoff))
        self._cached = None
