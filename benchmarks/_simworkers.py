"""Simulated ``segue worker`` processes for ``scale.py``: the real worker, minus the render.

A process here is what ``segue worker --threads N`` runs: one ``Services`` over the
database, a ``Background`` with its notification listener, housekeeping and callback
dispatcher, and N ``Worker`` threads. Each worker is a ``SimWorker``, the product's
``segue.worker.Worker`` with its render replaced by a wait: it claims through
``Worker.run_once`` (``TaskStore.claim``), reads the task's inputs
(``TaskStore.full_request``), renews its lease and reports progress through the worker's
own ``_Lease`` (``TaskStore.heartbeat`` once a second) and ends the task through
``Worker._finish`` (``TaskStore.finish``), or hands it back (``TaskStore.release``) when
the process stops. Every store call is timed where the worker makes it (``timed_store``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segue.callbacks.dispatch import LEASE_MARGIN, MAX_IDLE_WAIT, PER_RECEIVER, POOL_SIZE
from segue.domain import TaskStatus
from segue.errors import TaskInterrupted
from segue.services import Services
from segue.settings import Settings
from segue.tasks.schema import TaskRow
from segue.tasks.store import TaskStore
from segue.worker import Background, Worker, _Lease, housekeeping

TIMED = ("claim", "heartbeat", "finish", "full_request", "release")
MODEL = "segue-flow"  # the model the simulated workers serve, and the benchmark creates
REPORT_EVERY = 1.0  # seconds between the simulated render's progress reports


@dataclass
class SimStats:
    """What the simulated workers of one process met."""

    # operation -> (wall-clock end, seconds) of every call; a claim that found nothing
    # is recorded as "claim_empty"
    calls: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    finished: list[float] = field(default_factory=list)  # wall-clock time of each finish
    lost: int = 0  # leases lost (a heartbeat or finish found the task no longer ours)
    taken_over: int = 0  # claims of a task whose lease had lapsed (attempts > 1)
    handed_back: int = 0

    def record(self, op: str, ended: float, took: float) -> None:
        self.calls.setdefault(op, []).append((ended, took))  # list.append: thread-safe


def timed_store(store: TaskStore, stats: SimStats) -> None:
    """Time the store calls a worker makes, on this store object (its code unchanged)."""
    for name in TIMED:
        setattr(store, name, _timed(getattr(store, name), name, stats))


def _timed(method: Callable[..., Any], name: str, stats: SimStats) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = method(*args, **kwargs)
        except Exception:
            stats.errors[name] = stats.errors.get(name, 0) + 1
            raise
        op = "claim_empty" if name == "claim" and result is None else name
        stats.record(op, time.time(), time.perf_counter() - started)
        return result

    return call


class SimWorker(Worker):
    """``Worker`` whose render is a wait of ``seconds`` (drawn per task), reporting
    progress as a render does; every store call is the product's."""

    def __init__(self, services: Services, models: list[str], name: str,
                 seconds: tuple[float, float], start_after: float, stats: SimStats) -> None:
        super().__init__(services, models, name)
        self.seconds, self.stats = seconds, stats
        self._start_after: float | None = start_after  # spreads the first claims out

    def run_once(self) -> bool:
        if self._start_after is not None:
            self._shutdown.wait(self._start_after)
            self._start_after = None
            if self._shutdown.is_set():
                return False
        return super().run_once()

    def _run(self, row: TaskRow) -> None:
        services = self.services
        if row.attempts > 1:
            self.stats.taken_over += 1
        services.tasks.full_request(row)  # the inputs, as the real worker reads them
        with _Lease(services, row.id, self.id, self._shutdown) as lease:
            try:
                self._render(lease, random.uniform(*self.seconds))
            except TaskInterrupted:
                if lease.shutdown.is_set() and not lease.lost.is_set():
                    services.tasks.release(row.id, self.id)
                    self.stats.handed_back += 1
                else:
                    self.stats.lost += 1
                return
        done = self._finish(row, TaskStatus.SUCCEEDED, None, None, {})
        if done is None:
            self.stats.lost += 1
        else:
            self.stats.finished.append(time.time())

    def _render(self, lease: _Lease, seconds: float) -> None:
        ends = time.monotonic() + seconds
        while (left := ends - time.monotonic()) > 0:
            lease.report(1 - left / seconds, left)  # raises TaskInterrupted once not ours
            self._shutdown.wait(min(REPORT_EVERY, left))
        lease.report(1.0, 0.0)


class Chores:
    """What the other processes of a deployment with one worker per process add: each
    ``segue worker`` process also runs housekeeping every ``sweep_interval`` and a callback
    dispatcher that looks for due deliveries every ``MAX_IDLE_WAIT`` seconds and after each
    of its status changes (a claim, a finish). This process's own ``Background`` does that
    once; ``Chores`` makes the same calls for ``processes - 1`` more, at their rates."""

    def __init__(self, services: Services, processes: int, task_seconds: float,
                 stats: SimStats, stop: threading.Event) -> None:
        self.services, self.stats, self.stop = services, stats, stop
        others = max(0, processes - 1)
        self.rates = {"housekeeping": others / services.settings.sweep_interval,
                      "dispatch_pass": others * (1 / MAX_IDLE_WAIT + 2 / task_seconds)}

    def start(self) -> list[threading.Thread]:
        jobs = {"housekeeping": lambda: housekeeping(self.services),
                "dispatch_pass": self._dispatch_pass}
        threads = [threading.Thread(target=self._every, args=(name, jobs[name], rate),
                                    daemon=True, name=name)
                   for name, rate in self.rates.items() if rate > 0]
        for thread in threads:
            thread.start()
        return threads

    def _dispatch_pass(self) -> None:
        dispatch_pass(self.services)

    def _every(self, name: str, job: Callable[[], None], rate: float) -> None:
        begun, n = time.monotonic(), 0
        while not self.stop.is_set():
            n += 1
            self.stop.wait(max(0.0, begun + n / rate - time.monotonic()))
            started = time.perf_counter()
            try:
                job()
            except Exception:
                self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
                continue
            self.stats.record(name, time.time(), time.perf_counter() - started)


def dispatch_pass(services: Services) -> None:
    """An idle callback dispatcher's pass (``Dispatcher.run``): claim the due deliveries
    (none), then find when the next one is due."""
    store, settings = services.callbacks.store, services.settings
    store.claim_due(settings.callback_timeout + LEASE_MARGIN, POOL_SIZE, busy={},
                    per_receiver=PER_RECEIVER)
    store.next_due()


def simulate(settings: Settings, workers: int, prefix: str, seconds: tuple[float, float],
             ramp: float, pool: int, chores: bool, ready: Any, go: Any, stop: Any,
             out: Any) -> None:
    """One simulated worker process (a ``multiprocessing`` target): ``workers`` workers,
    their first claims spread over ``ramp`` seconds after ``go``, with the ``Chores`` of
    as many processes if ``chores``; results to ``out`` once ``stop`` is set."""
    threading.stack_size(512 * 1024)  # thousands of threads: a small stack each
    services = Services.build(settings)
    shrink_pool(services, pool)
    stats = SimStats()
    background = sim_background(services, workers, prefix, seconds, ramp, stats)
    ready.set()
    go.wait()
    background.start()
    done = threading.Event()
    if chores:
        Chores(services, workers, sum(seconds) / 2, stats, done).start()
    stop.wait()
    done.set()
    background.stop(timeout=60)
    services.db.dispose()
    out.put((prefix, stats))


def sim_background(services: Services, workers: int, prefix: str,
                   seconds: tuple[float, float], ramp: float, stats: SimStats) -> Background:
    """What ``segue worker --threads N --models segue-flow`` starts (``Background``: its
    workers, listener, housekeeping and callback dispatcher), with ``SimWorker`` threads."""
    timed_store(services.tasks, stats)
    background = Background(services, workers=0)
    background._workers = [
        SimWorker(services, [MODEL], f"{prefix}-w{i}", seconds, random.uniform(0, ramp), stats)
        for i in range(workers)]
    return background


def shrink_pool(services: Services, size: int) -> None:
    """Give the process ``size`` connections at most (the simulator runs thousands of
    workers on a server that accepts a hundred connections; each real worker process holds
    its own). The pool keeps the engine's event listeners (``_dispatch``), among them the
    watchdog's check-out ping, so it makes no ping of its own (as a worker's pool does)."""
    old = services.db.pool
    services.db.pool = old.__class__(  # type: ignore[call-arg]
        old._creator, pool_size=size, max_overflow=0, timeout=60,  # type: ignore[attr-defined]
        _dispatch=old.dispatch, dialect=old._dialect)
    old.dispose()
