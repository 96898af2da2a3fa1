"""What ``scale.py`` reads of PostgreSQL and of the processes while a level runs: the task
table's statistics (dead tuples, autovacuum runs, HOT updates, size) and CPU time from
``/proc`` (PostgreSQL's processes, and the benchmark's own)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Engine, text

TABLES = ("tasks", "task_inputs", "callback_deliveries", "create_ledger")
TICK = os.sysconf("SC_CLK_TCK")


def table_stats(engine: Engine) -> dict[str, dict[str, float]]:
    """Per table: live and dead tuples, updates (HOT among them), autovacuum runs, bytes."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = conn.execute(text(
            "SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, "
            "autovacuum_count, autoanalyze_count, pg_relation_size(relid) AS heap_bytes, "
            "pg_indexes_size(relid) AS index_bytes "
            "FROM pg_stat_user_tables WHERE relname = ANY(:names)"),
            {"names": list(TABLES)}).mappings().all()
    return {r["relname"]: {k: float(v) for k, v in r.items() if k != "relname"} for r in rows}


def due(stats: dict[str, float], scale: float) -> bool:
    """Whether autovacuum, at this scale factor, would vacuum a table with these statistics."""
    return stats["n_dead_tup"] > 50 + scale * stats["n_live_tup"]


def vacuum(engine: Engine) -> float:
    """VACUUM the task table (in autovacuum's place); the seconds it took."""
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM tasks"))
    return time.perf_counter() - started


def database_backends(engine: Engine) -> set[int]:
    """The server processes of connections to this engine's database."""
    with engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _children_cpu(pid: int) -> float:
    """CPU of a process's reaped children (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / TICK


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}


def cpu_used(before: dict[int, float], after: dict[int, float],
             only: set[int] | None = None) -> float:
    """CPU seconds between two snapshots; a process that started between them counts
    from zero, one that ended is lost (the benchmark's connections are pooled, so its own
    backends live through a level)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()
               if only is None or pid in only)
