"""PostgreSQL's CPU time per store operation, for ``scale.py``'s capacity model.

One connection, one operation at a time, on the benchmark's database (its table as the
levels left it): the server process's CPU time (``/proc``) over ``n`` calls of each of the
product's own calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks._pgwatch import _cpu_seconds
from benchmarks._simworkers import dispatch_pass
from segue.domain import TaskStatus
from segue.services import Services
from segue.settings import Settings
from segue.worker import housekeeping


def op_costs(url: str, data_dir: Path, make_row: Callable[[], Any], n: int = 300,
             ) -> dict[str, dict[str, float]]:
    """Server CPU and wall time (ms) per call of each operation a deployment repeats."""
    services = Services.build(Settings(database_url=url, data_dir=data_dir,  # type: ignore[call-arg]
                                       log_level="warning"))
    services.db.pool.dispose()
    store = services.tasks
    with services.db.connect() as conn:  # the one pooled connection every call below reuses
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    ids = [store.create(make_row()).id for _ in range(n)]
    claimed: list[Any] = []
    ops: dict[str, Callable[[int], object]] = {
        "create (store)": lambda i: store.create(make_row()),
        "claim": lambda i: claimed.append(store.claim("cost", 60)),
        "full_request": lambda i: store.full_request(claimed[i]),
        "heartbeat": lambda i: store.heartbeat(claimed[i].id, "cost", 60, 50.0, 10.0),
        "finish": lambda i: store.finish(claimed[i].id, "cost", TaskStatus.SUCCEEDED),
        "poll read (store.get)": lambda i: store.get(ids[i]),
        "dispatcher pass": lambda i: dispatch_pass(services),
        "housekeeping": lambda i: housekeeping(services),
    }
    out = {}
    for name, op in ops.items():
        calls = n if name != "housekeeping" else max(20, n // 10)
        cpu, wall = _cpu_seconds(pid) or 0.0, time.perf_counter()
        for i in range(calls):
            op(i)
        out[name] = {"server_cpu_ms": round(((_cpu_seconds(pid) or 0.0) - cpu) / calls * 1e3, 3),
                     "wall_ms": round((time.perf_counter() - wall) / calls * 1e3, 3)}
    # what the partial index saves housekeeping: the same runs without it (the database
    # is the benchmark's own, dropped afterwards)
    with services.db.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_tasks_lapsed_files"))
        # the scan in this server process, where its CPU time is counted
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))
    cpu, wall = _cpu_seconds(pid) or 0.0, time.perf_counter()
    runs = max(20, n // 10)
    for _ in range(runs):
        housekeeping(services)
    out["housekeeping without ix_tasks_lapsed_files"] = {
        "server_cpu_ms": round(((_cpu_seconds(pid) or 0.0) - cpu) / runs * 1e3, 3),
        "wall_ms": round((time.perf_counter() - wall) / runs * 1e3, 3)}
    services.db.dispose()
    return out
