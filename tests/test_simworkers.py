"""The simulated workers of ``benchmarks/scale.py`` are ``segue worker``'s own code with the
render replaced by a wait: they claim, read inputs, renew their lease with progress and
finish through the real ``TaskStore`` (every call recorded here at the class, so a path
around the store would leave the tasks unrun or the record empty), run under the
``Background`` that ``segue worker`` starts, and what they write reaches a poll."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from segue.domain import TaskStatus
from segue.services import Services
from segue.tasks.store import TaskStore
from segue.worker import Background, Worker
from tests.conftest import make_settings
from tests.tasks.test_store import task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._simworkers import (  # noqa: E402
    MODEL,
    TIMED,
    Chores,
    SimStats,
    SimWorker,
    sim_background,
)

pytestmark = pytest.mark.slow
TASKS = 3


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Every call of the worker's store methods, made by anyone in this process."""
    record: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def spy(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: TaskStore, *args: Any, **kwargs: Any) -> Any:
            result = method(self, *args, **kwargs)
            record.append((name, args, kwargs if name != "claim" else {**kwargs, "row": result}))
            return result
        return call

    for name in TIMED:
        monkeypatch.setattr(TaskStore, name, spy(name, getattr(TaskStore, name)))
    return record


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    # a lease of 3 s is renewed every second, as the default one (min(ttl / 3, 1 s))
    built = Services.build(make_settings(tmp_path / "data", database_url=db_url, lease_ttl=3))
    yield built
    built.db.dispose()


def test_simulated_workers_use_the_workers_store_code(
        services: Services, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
    assert issubclass(SimWorker, Worker) and SimWorker._finish is Worker._finish
    ids = [services.tasks.create(task(model=MODEL, request={"images": []})).id
           for _ in range(TASKS)]
    stats = SimStats()
    background = sim_background(services, 2, "sim", (2.6, 2.8), 0.0, stats)
    assert type(background) is Background and len(background._workers) == 2
    seen_progress = []
    background.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = [services.tasks.get(i) for i in ids]  # a poll's read, from the database
            seen_progress += [r.progress for r in rows if r.status == TaskStatus.RUNNING]
            if all(r.status == TaskStatus.SUCCEEDED for r in rows):
                break
            time.sleep(0.1)
    finally:
        background.stop(timeout=30)
    rows = [services.tasks.get(i) for i in ids]
    assert [r.status for r in rows] == [TaskStatus.SUCCEEDED] * TASKS
    assert {r.worker_id for r in rows} <= {"sim-w0", "sim-w1"}
    assert any(0 < p < 100 for p in seen_progress), "no progress reached a poll"

    per_task = {i: [c for c in calls if _task_of(c) == i] for i in ids}
    claims = [c for c in calls if c[0] == "claim" and c[2]["row"] is not None]
    # the claim a real worker makes: its id, the configured lease, its models' spellings
    lease, models = services.settings.lease_ttl, services.models.spellings([MODEL])
    assert all(c[1][1] == lease and c[1][2] == models for c in claims)
    for task_id, made in per_task.items():
        names = [name for name, _, _ in made]
        assert names[0] == "claim" and names[1] == "full_request" and names[-1] == "finish"
        beats = [c for c in made if c[0] == "heartbeat"]
        assert len(beats) >= 2, f"{task_id}: {names}"
        progress = [c[1][3] for c in beats]
        assert progress == sorted(progress) and progress[-1] > 0
    # the benchmark's timing saw every one of these calls
    assert len(stats.calls["heartbeat"]) == sum(c[0] == "heartbeat" for c in calls)
    assert len(stats.calls["finish"]) == len(stats.finished) == TASKS
    assert stats.lost == stats.taken_over == 0


def _task_of(call: tuple[str, tuple[Any, ...], dict[str, Any]]) -> str | None:
    name, args, kwargs = call
    if name == "claim":
        row = kwargs["row"]
        return None if row is None else str(row.id)
    if name == "full_request":
        return str(args[0].id)
    return str(args[0])


def test_a_stop_hands_the_tasks_back(services: Services) -> None:
    """Stopping a level hands the simulated renders back, as ``segue worker`` does on
    SIGTERM: nothing is left for its lease to lapse."""
    ids = [services.tasks.create(task(model=MODEL, request={"images": []})).id
           for _ in range(2)]
    stats = SimStats()
    background = sim_background(services, 2, "sim", (30.0, 30.0), 0.0, stats)
    background.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            services.tasks.get(i).status != TaskStatus.RUNNING for i in ids):
        time.sleep(0.05)
    stopping = threading.Thread(target=background.stop, kwargs={"timeout": 30})
    stopping.start()
    stopping.join(40)
    assert [services.tasks.get(i).status for i in ids] == [TaskStatus.QUEUED] * 2
    assert stats.handed_back == 2 and stats.lost == 0


def test_chores_are_the_housekeeping_and_dispatcher_calls(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``Chores`` adds for the other processes is their own housekeeping and idle
    dispatcher passes: the same store calls, at one process's rates times the processes."""
    seen: list[str] = []
    for owner, name in ((TaskStore, "sweep"), (TaskStore, "lapsed_files"),
                        (type(services.callbacks.store), "claim_due"),
                        (type(services.callbacks.store), "next_due")):
        monkeypatch.setattr(owner, name, _recording(seen, name, getattr(owner, name)))
    services.settings.sweep_interval = 1.0
    stats, stop = SimStats(), threading.Event()
    chores = Chores(services, 5, 30.0, stats, stop)
    assert chores.rates["housekeeping"] == 4.0  # four other processes, each once a second
    threads = chores.start()
    time.sleep(1.6)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert {"sweep", "lapsed_files", "claim_due", "next_due"} <= set(seen)
    assert len(stats.calls["housekeeping"]) >= 4 and len(stats.calls["dispatch_pass"]) >= 2


def _recording(seen: list[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: object, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return method(self, *args, **kwargs)
    return call
