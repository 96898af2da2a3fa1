"""Workers: claim -> fetch -> render -> encode -> store -> complete, in small steps.

A worker holds a lease on the task it renders and renews it from a heartbeat
thread; a worker that dies stops renewing, and another worker takes the task
over once the lease lapses. ``Background`` runs the in-process workers of
``segue serve`` and the periodic housekeeping (expiry, retention), and the
callback dispatcher (``segue.callbacks``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import re
import secrets
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from segue.domain import GenerationRequest, TaskStatus
from segue.engines.base import EngineFault
from segue.errors import SegueError, ServiceUnavailable, StorageFull, TaskInterrupted
from segue.media.images import load_image
from segue.media.video import pick_encoder
from segue.render import Images, render_video
from segue.services import Services
from segue.settings import metrics_host_port
from segue.tasks.fleet import ADVERTISE_INTERVAL
from segue.tasks.notify import Listener
from segue.tasks.schema import TaskRow

log = logging.getLogger("segue.worker")
VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime"}
# The exit status of ``segue worker`` after an engine fault (EX_SOFTWARE): a supervisor
# restarts the process; see "Progress, cancellation, out-of-memory and GPU faults" in
# docs/gpu.md.
EXIT_ENGINE_FAULT = 70
FINISH_RETRY = 0.5  # seconds between tries of a finish the store refused to take
WAKE_JITTER = 0.02  # seconds: the longest random wait of a woken worker before it looks
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.\-]+){2,}[/\\]?")  # two or more parts


def without_paths(text: str) -> str:
    """A message for the client, without the server's file paths (its temporary folders,
    its data directory) that an error from a library names."""
    return _PATH.sub("<path>", text)


def terminate_process() -> None:
    """Stop this process the way its supervisor would (SIGTERM): the API server and the
    other workers shut down cleanly, handing their tasks back, and the process exits."""
    os.kill(os.getpid(), signal.SIGTERM)


class _Lease:
    """Renews a task's lease in the background; remembers when it was lost."""

    def __init__(self, services: Services, task_id: str, worker_id: str,
                 shutdown: threading.Event) -> None:
        self._services, self._task_id, self._worker_id = services, task_id, worker_id
        self.shutdown = shutdown  # the process is stopping: hand the task back
        self._stop = threading.Event()
        self.lost = threading.Event()
        self.progress: tuple[float, float | None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{task_id}")

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        """Renew about three times a lease; a store error is retried until the lease is
        about to lapse (the last try just before), and only then is the lease lost: a
        database blip shorter than the lease stops nothing, and a longer one stops the
        render before another worker may take the task over."""
        ttl = self._services.settings.lease_ttl
        interval = min(ttl / 3, 1.0)
        margin = interval / 4  # the render stops at its next frame: leave it that long
        renewed = time.monotonic()  # the claim set the lease just before
        wait, failing = interval, False
        while not self._stop.wait(wait):
            progress, eta = self.progress if self.progress else (None, None)
            try:
                ours = self._services.tasks.heartbeat(self._task_id, self._worker_id, ttl,
                                                      progress, eta)
            except Exception as exc:
                left = renewed + ttl - margin - time.monotonic()
                if left <= 0:
                    log.error("lease lost: its renewal kept failing",
                              extra={"task_id": self._task_id, "reason": str(exc)})
                    self.lost.set()
                    return
                if not failing:
                    log.warning("lease renewal failed; retrying",
                                extra={"task_id": self._task_id, "reason": str(exc)})
                wait, failing = min(interval, left), True
                continue
            if not ours:
                self.lost.set()
                return
            if failing:
                log.info("lease renewed again", extra={"task_id": self._task_id})
            renewed, wait, failing = time.monotonic(), interval, False

    def report(self, fraction: float, eta: float | None) -> None:
        """The render's progress callback: it stops the render once the task is not ours,
        or when the process is shutting down."""
        if self.lost.is_set() or self.shutdown.is_set():
            raise TaskInterrupted(self._task_id)
        self.progress = (round(fraction * 100, 1), eta)


class Worker:
    def __init__(self, services: Services, models: Sequence[str] | None = None,
                 name: str | None = None) -> None:
        self.services = services
        self.models = list(models) if models else None
        self.id = name or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10_000}"
        self._claimable: list[str] | None = None
        self._shutdown = threading.Event()
        self.fault: str | None = None  # set when an engine cannot render again here
        self.ready: list[str] | None = None  # the model ids served, once ``prepare`` ran
        self.unavailable: dict[str, str] = {}  # model id -> why its engine did not load

    def prepare(self) -> list[str]:
        """Build (and load) the engine of every model this worker serves, before any task.

        A model whose engine cannot load (weights missing, no GPU) is logged as a clear
        error for that model id and left to other workers; it never fails a task here.
        """
        ready = []
        for entry in self.services.models:
            if self.models is not None and entry.id not in self.models:
                continue
            try:
                self.services.engine_for(entry, load=True)
            except Exception as exc:
                log.warning("model unavailable on this worker", extra={
                    "model": entry.id, "engine": entry.engine, "reason": str(exc)})
                self.unavailable[entry.id] = str(exc)
                continue
            ready.append(entry.id)
        self._claimable = self.services.models.spellings(ready)
        self.ready = ready
        return ready

    def run_once(self) -> bool:
        """Claim and run one task; False when there was nothing to do."""
        if self._claimable is None:
            self.prepare()
        row = self.services.tasks.claim(self.id, self.services.settings.lease_ttl,
                                        self._claimable)
        if row is None:
            return False
        if row.attempts > 1:  # a claim that did not end in a hand-back: its worker died
            self.services.metrics.taken_over.labels(row.model).inc()
        self._run(row)
        return True

    def run(self, stop: threading.Event, burst: bool = False,
            interrupt: threading.Event | None = None,
            listening: threading.Event | None = None) -> None:
        """Work until ``stop`` is set; in burst mode, until the queue is empty.

        Setting ``interrupt`` (by default ``stop`` itself) stops a render in progress and
        hands its task back to the queue, so that a restart (a deploy) picks it up at once
        instead of after its lease. With a separate ``interrupt``, ``stop`` only ends the
        claiming: the task in hand is finished first (a drain). While ``listening`` is set
        (the process's ``LISTEN`` is in effect), an idle worker polls every
        ``listen_poll_interval`` instead of ``poll_interval``: notifications wake it.
        """
        self._shutdown = interrupt or stop
        woken = False
        while not stop.is_set():
            try:
                # Woken by a create, look before claiming: a create wakes every idle worker,
                # and all but one would pay for an empty claim. The poll claims outright.
                worked = (not woken or self._queued()) and self.run_once()
            except ServiceUnavailable:  # logged where it was met, once in a while
                worked = False
            except Exception:  # a store hiccup must not kill the worker
                log.exception("worker loop error")
                worked = False
            if self.fault is not None:
                log.critical("engine fault: this worker stops", extra={"reason": self.fault})
                return
            if worked:
                woken = False
                continue
            if burst:
                return
            woken = self.services.wake.wait(self._idle_wait(listening))
            self.services.wake.clear()

    def _queued(self) -> bool:
        """After a wake-up: a moment's random wait (the worker that claims first commits
        meanwhile, so that most of the others see nothing left), then a cheap look."""
        time.sleep(random.uniform(0.0, WAKE_JITTER))
        return self.services.tasks.any_queued(self._claimable)

    def _idle_wait(self, listening: threading.Event | None) -> float:
        settings = self.services.settings
        if listening is not None and listening.is_set():
            return max(settings.poll_interval, settings.listen_poll_interval)
        return settings.poll_interval

    def _run(self, row: TaskRow) -> None:
        services = self.services
        request = GenerationRequest.from_json(services.tasks.full_request(row))
        entry = services.models.get(row.model)
        started = time.monotonic()
        with _Lease(services, row.id, self.id, self._shutdown) as lease, \
                tempfile.TemporaryDirectory(prefix=f"segue-{row.id}-") as tmp:
            try:
                images = self._load_images(request)
                output = render_video(
                    request, services.engine_for(entry), images, Path(tmp),
                    progress=lease.report, crf=services.settings.video_crf,
                    preset=services.settings.video_preset,
                    encoder=pick_encoder(services.settings.video_encoder),
                )
                fields = self._store(row.id, output)
                status, code, message = TaskStatus.SUCCEEDED, None, None
            except TaskInterrupted:
                if lease.shutdown.is_set() and not lease.lost.is_set():
                    services.tasks.release(row.id, self.id)
                    log.info("task handed back on shutdown", extra={"task_id": row.id})
                else:
                    self._interrupted(row)
                return
            except SegueError as exc:
                status, code, message, fields = TaskStatus.FAILED, exc.code, exc.message, {}
                if isinstance(exc, EngineFault):
                    self.fault = exc.message
            except Exception as exc:
                status, fields = TaskStatus.FAILED, {}
                code, message = _failure(row.id, exc)
        done = self._finish(row, status, code, message, fields)
        if done is None:  # expired, taken over or deleted meanwhile: ours is not the video
            self._discard(fields)
            self._interrupted(row)
            return
        services.metrics.render.labels(entry.engine).observe(time.monotonic() - started)

    def _finish(self, row: TaskRow, status: TaskStatus, code: str | None,
                message: str | None, fields: dict[str, object]) -> TaskRow | None:
        """``TaskStore.finish``, tried again while the store is unavailable and the lease
        (renewed a moment ago) still holds: a database blip at the end of a render must not
        throw the render away."""
        lapses = time.monotonic() + self.services.settings.lease_ttl - FINISH_RETRY
        while True:
            try:
                return self.services.tasks.finish(row.id, self.id, status, error_code=code,
                                                  error_message=message, **fields)
            except ServiceUnavailable:
                if time.monotonic() + FINISH_RETRY >= lapses:
                    raise
                log.warning("finishing the task failed; retrying", extra={"task_id": row.id})
                time.sleep(FINISH_RETRY)

    def _load_images(self, request: GenerationRequest) -> Images:
        """The task's images, all downloaded within ``inputs_timeout`` together."""
        settings = self.services.settings
        deadline = time.monotonic() + settings.inputs_timeout
        return [(image.role, load_image(image.url, image.name or "first_frame", settings,
                                        deadline))
                for image in request.images]

    def _store(self, task_id: str, output) -> dict[str, object]:  # type: ignore[no-untyped-def]
        """Put the files under names of this attempt's own: only the finish that the lease
        holder commits points the task at them (``TaskStore.finish``), so a late worker (one
        frozen while another took over, or after a DELETE) overwrites nothing, and what its
        refused finish wrote is deleted (``_discard``)."""
        objects = self.services.objects
        attempt = secrets.token_hex(4)
        suffix = output.video.suffix  # .mp4, or .mov when the request asked for it
        video_key = f"videos/{task_id}-{attempt}{suffix}"
        objects.put(video_key, output.video, VIDEO_TYPES[suffix])
        last_key = None
        if output.last_frame is not None:
            last_key = f"frames/{task_id}-{attempt}-last.png"
            try:
                objects.put(last_key, output.last_frame, "image/png")
            except BaseException:
                self._discard({"video_key": video_key})
                raise
        return {
            "video_key": video_key, "last_frame_key": last_key, "width": output.width,
            "height": output.height, "ratio": output.ratio, "tokens": output.tokens,
            "links_expire_at": time.time() + self.services.settings.link_ttl,
        }

    def _discard(self, fields: dict[str, object]) -> None:
        """Delete the files an attempt wrote that no task points at."""
        for name in ("video_key", "last_frame_key"):
            key = fields.get(name)
            if isinstance(key, str):
                try:
                    self.services.objects.delete(key)
                except Exception:  # left behind; the task is unharmed
                    log.exception("could not delete an unused file", extra={"key": key})

    def _interrupted(self, row: TaskRow) -> None:
        """The render stopped because the task expired or another worker holds it now."""
        expire_overdue(self.services)
        log.info("render stopped", extra={"task_id": row.id})


def _failure(task_id: str, exc: Exception) -> tuple[str, str]:
    """The code and message of a render that failed on an exception Segue did not raise."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        # the operator's to mend, not a bug: one line, no traceback
        log.error("storage full: the task failed", extra={"task_id": task_id})
        return (StorageFull.code,
                "The video could not be written: the server's storage is full.")
    log.exception("render failed", extra={"task_id": task_id})
    return ("InternalServiceError",
            f"The render failed: {type(exc).__name__}: {without_paths(str(exc))}")


def expire_overdue(services: Services) -> None:
    """Move overdue tasks to expired (each is counted and announced as it commits:
    ``Services.on_status_change``)."""
    services.tasks.expire_overdue()


def housekeeping(services: Services) -> None:
    """Expire overdue tasks, delete lapsed records and files."""
    s = services.settings
    expire_overdue(services)
    swept = services.tasks.sweep(s.record_ttl, s.cancelled_ttl)
    services.tasks.prune_ledger(s.rate_window)
    for row in services.tasks.lapsed_files() + swept:
        for key in (row.video_key, row.last_frame_key):
            if key:
                services.objects.delete(key)
    services.callbacks.store.prune([row.id for row in swept], time.time() - s.record_ttl)
    services.fleet.prune()


class Background:
    """The threads of one server or worker process: N workers and the periodic jobs.

    With workers on PostgreSQL it also listens for new-task notifications
    (``segue.tasks.notify``); with ``SEGUE_METRICS_ADDR`` it serves ``/metrics`` there.
    """

    def __init__(self, services: Services, workers: int = 0,
                 models: Sequence[str] | None = None,
                 on_fault: Callable[[], None] | None = None) -> None:
        self.services = services
        self.stop_event = threading.Event()  # stop the periodic jobs, callbacks and listener
        self.claims_stopped = threading.Event()  # stop claiming (set first: ``stop_claiming``)
        self.interrupt = threading.Event()  # stop renders now and hand their tasks back
        self.faulted = threading.Event()  # a worker's engine cannot render again
        self.on_fault = on_fault
        self.threads: list[threading.Thread] = []
        self.periodic: list[tuple[float, Callable[[Services], None]]] = [
            (services.settings.sweep_interval, housekeeping),
        ]
        # one row in the fleet per process (host names repeat across containers)
        self.process_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._advertising = threading.Lock()  # one advertisement at a time (``_advertise``)
        self._workers = [Worker(services, models, f"{socket.gethostname()}-{os.getpid()}-w{i}")
                         for i in range(workers)]
        if self._workers:
            self.periodic.append((ADVERTISE_INTERVAL, self._advertise))
        self._worker_threads: list[threading.Thread] = []
        self.listener: Listener | None = None
        self._metrics_server: tuple[WSGIServer, threading.Thread] | None = None

    def start(self) -> None:
        postgres = self.services.db.dialect.name == "postgresql"
        if self._workers and postgres and self.services.settings.listen:
            self.listener = Listener(self.services.db.url, self.services.wake, self.stop_event)
            self._spawn("listen", self.listener.run)
        self._worker_threads = [self._spawn(worker.id, self._work, worker)
                                for worker in self._workers]
        for interval, job in self.periodic:
            self._spawn(job.__name__, self._every, interval, job)
        self._spawn("callbacks", self.services.callbacks.run, self.stop_event)
        addr = self.services.settings.metrics_addr
        if addr:
            host, port = metrics_host_port(addr)
            self._metrics_server = start_http_server(port, host,
                                                     registry=self.services.metrics.registry)

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True, name=name)
        thread.start()
        self.threads.append(thread)
        return thread

    def _work(self, worker: Worker) -> None:
        self._advertise(self.services)
        worker.prepare()
        self._advertise(self.services)
        listening = self.listener.listening if self.listener is not None else None
        worker.run(self.claims_stopped, interrupt=self.interrupt, listening=listening)
        if worker.fault is not None and not self.stop_event.is_set():
            # The GPU context is gone for every thread of this process: restart it whole.
            self.faulted.set()
            (self.on_fault or terminate_process)()

    def _advertise(self, services: Services) -> None:
        """Say in the fleet (``segue.tasks.fleet``) which models this process's workers
        serve: at start, before and after each worker loads its engines, and every
        ``ADVERTISE_INTERVAL``. A worker still loading (a GPU model takes minutes) counts as
        serving what it was asked to, so that its model is not refused meanwhile."""
        if self.stop_event.is_set():
            return
        # Read and written as one: the periodic renewal and a worker's own advertisement
        # after loading run in different threads, and a renewal that read "still loading"
        # must not be written over the loaded worker's answer (its model offered for seconds)
        with self._advertising:
            served: set[str] = set()
            reasons: dict[str, str] = {}
            for worker in self._workers:
                if worker.ready is None:
                    served.update(worker.models or (entry.id for entry in services.models))
                else:
                    served.update(worker.ready)
                    reasons.update(worker.unavailable)
            try:
                services.fleet.advertise(self.process_id, served, reasons)
            except SegueError:  # the store is unavailable: said by it; tried again later
                pass
            except Exception:  # never the end of a worker: the next renewal tries again
                log.exception("could not say which models this process serves")

    def _every(self, interval: float, job: Callable[[Services], None]) -> None:
        while not self.stop_event.is_set():
            try:
                job(self.services)
            except Exception:
                log.exception("periodic job failed", extra={"job": job.__name__})
            self.stop_event.wait(interval)

    def stop_claiming(self) -> None:
        """Claim no new task; renders in progress, callbacks and sweeps go on until ``stop``.

        A server calls it at the signal to stop, while its open connections (an event
        stream, say) are still being waited for before ``stop``."""
        self.claims_stopped.set()
        self.services.wake.set()

    def stop(self, timeout: float = 10.0, drain: float = 0.0) -> None:
        """Stop claiming; give renders in progress ``drain`` seconds to finish, then hand
        back what is still running (``interrupt``). Nothing is left stranded: a task is
        either finished or queued again when this returns."""
        self.stop_claiming()
        self.stop_event.set()
        self.services.wake.set()
        self.services.callbacks.wake.set()
        if drain > 0:
            deadline = time.monotonic() + drain
            for thread in self._worker_threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        self.interrupt.set()
        deadline = time.monotonic() + timeout  # for all threads together, not each
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._workers:
            with contextlib.suppress(SegueError):  # else its row lapses after LIVE_FOR
                self.services.fleet.leave(self.process_id)
        stuck = [thread.name for thread in self.threads if thread.is_alive()]
        if stuck:
            log.warning("threads still running at shutdown", extra={"threads": stuck})
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            server.server_close()
            thread.join(timeout)
