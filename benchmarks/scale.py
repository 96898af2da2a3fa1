"""A large deployment on one PostgreSQL: 100 to 2,000 simulated workers, with real API traffic.

Each level runs, on a database of its own (created here, dropped at the end):

- ``--procs`` simulated worker processes (``_simworkers.py``), each what ``segue worker
  --threads N`` runs (the product's ``Worker`` and ``Background``), with the render
  replaced by a wait of 20 to 40 s (30 s on average): every worker claims, renews its
  lease with progress once a second, and finishes, through the real ``TaskStore``. Their
  first claims are spread over ``--ramp`` seconds;
- one ``segue serve --workers 0`` process (the API alone), and open-loop clients
  (``_traffic.py``): creates (Ark first/last-frame bodies with image URLs) at the rate the
  workers finish tasks (workers / 30 s), so the queue holds steady, and polls of the tasks
  created, one per running task every ``--poll-every`` seconds;
- a queue topped up beforehand (workers + 100 tasks), on a table holding ``--history``
  finished tasks.

After the ramp and ``--settle`` seconds, ``--measure`` seconds are measured: latency of
every store call the workers make and of every create and poll (p50, p99), tasks finished
per second, leases lost, CPU seconds of PostgreSQL (every ``postgres`` process of the
machine, and the backends of this database alone) and of the benchmark's own processes,
and the task table's statistics sampled every 5 s (dead tuples, autovacuum runs, HOT
updates, size). Usage (repository root, PostgreSQL running, ``createdb`` rights)::

    python benchmarks/scale.py [--levels 100 500 1000 2000] [--out benchmarks/results/scale.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _pgwatch as watch  # noqa: E402
from benchmarks._cluster import CREATE_BODY, TASKS, Cluster  # noqa: E402
from benchmarks._opcost import op_costs  # noqa: E402
from benchmarks._scalereport import report  # noqa: E402
from benchmarks._simworkers import SimStats, simulate  # noqa: E402
from benchmarks._traffic import Clients  # noqa: E402
from segue.domain import new_task_id  # noqa: E402
from segue.settings import Settings  # noqa: E402
from segue.tasks.db import make_engine, migrate  # noqa: E402
from segue.tasks.schema import TaskInputRow, TaskRow  # noqa: E402

TASK_SECONDS = (20.0, 40.0)
SAMPLE_EVERY = 5.0


# --------------------------------------------------------------------------- the database


def template(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task row and its inputs as a real create stores them, to copy when seeding."""
    import httpx

    r = httpx.post(cluster.base + TASKS, json=CREATE_BODY, timeout=60,
                   headers={"Authorization": f"Bearer {cluster.keys[0]}"})
    r.raise_for_status()
    with cluster.db.connect() as conn:
        row = conn.execute(select(TaskRow.__table__).where(TaskRow.id == r.json()["id"])).one()
        inputs = conn.execute(select(TaskInputRow.__table__)
                              .where(TaskInputRow.task_id == row.id)).one()
    return dict(row._mapping), dict(inputs._mapping)


def seed(cluster: Cluster, tpl: tuple[dict[str, Any], dict[str, Any]], n: int, status: str,
         tag: str) -> None:
    row, inputs = tpl
    now = time.time()
    for start in range(0, n, 5_000):
        ids = [f"cgt-{tag}-{i:07d}" for i in range(start, min(n, start + 5_000))]
        done = status != "queued"
        rows = [dict(row, id=i, status=status, created_at=now - 3_600 + k * 1e-3,
                     updated_at=now, expires_at=now + 86_400, finished_at=now if done else None,
                     progress=100.0 if done else 0.0, attempts=1 if done else 0,
                     worker_id=None, lease_until=None, idempotency_key=None,
                     video_key=f"videos/{i}.mp4" if done else None,
                     links_expire_at=now + 86_400 if done else None)
                for k, i in enumerate(ids, start)]
        with cluster.db.begin() as conn:
            conn.execute(insert(TaskRow), rows)
            conn.execute(insert(TaskInputRow), [dict(inputs, task_id=i) for i in ids])


def fresh_row(row: dict[str, Any]) -> TaskRow:
    now = time.time()
    return TaskRow(**dict(row, id=new_task_id(), created_at=now, updated_at=now,
                          expires_at=now + 86_400, request=dict(row["request"])))


def top_up(cluster: Cluster, tpl: tuple[dict[str, Any], dict[str, Any]], target: int,
           tag: str) -> None:
    with cluster.db.connect() as conn:
        queued = conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'queued'")).scalar()
    if queued is not None and queued < target:
        seed(cluster, tpl, target - queued, "queued", tag)


# --------------------------------------------------------------------------- one level


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


def latency(calls: list[tuple[float, float]], window: tuple[float, float]) -> dict[str, float]:
    took = [t for end, t in calls if window[0] <= end < window[1]]
    span = window[1] - window[0]
    return {"per_s": round(len(took) / span, 1), "p50_ms": round(pct(took, 50) * 1e3, 2),
            "p99_ms": round(pct(took, 99) * 1e3, 2), "max_ms": round(max(took, default=0) * 1e3, 1)}


def start_workers(args: argparse.Namespace, url: str, workers: int, level_dir: Path,
                  ) -> tuple[list[Any], Any, Any, Any]:
    ctx = mp.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    procs, readies = [], []
    for p in range(args.procs):
        n = workers // args.procs + (1 if p < workers % args.procs else 0)
        settings = Settings(database_url=url, data_dir=level_dir / f"sim{p}",
                            log_level="warning")  # type: ignore[call-arg]
        ready = ctx.Event()
        proc = ctx.Process(target=simulate, args=(settings, n, f"sim{p}", TASK_SECONDS,
                                                  args.ramp, args.pool, args.chores, ready, go,
                                                  stop, out))
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        if not ready.wait(120):
            raise RuntimeError("a simulated worker process did not start")
    return procs, go, stop, out


def run_level(args: argparse.Namespace, cluster: Cluster, url: str, workers: int,
              tpl: tuple[dict[str, Any], dict[str, Any]], tmp: Path) -> dict[str, Any]:
    if args.create_share >= 1:
        top_up(cluster, tpl, workers + 100, f"q{workers}")
    procs, go, stop, out = start_workers(args, url, workers, tmp / f"level{workers}")
    create_rate = args.create_share * workers / statistics.mean(TASK_SECONDS)
    clients = Clients(cluster.port, cluster.keys, create_rate, workers / args.poll_every,
                      recent=workers)
    go.set()
    with clients:
        time.sleep(args.ramp + args.settle)
        window, samples, cpu = measure(args, cluster, procs)
    stop.set()
    stats: list[SimStats] = [out.get(timeout=180)[1] for _ in procs]
    for proc in procs:
        proc.join(60)
    return summarize(workers, window, samples, cpu, stats, clients, create_rate)


def measure(args: argparse.Namespace, cluster: Cluster, procs: list[Any],
            ) -> tuple[tuple[float, float], list[dict[str, Any]], dict[str, float]]:
    ours = [p.pid for p in procs] + [cluster.api_pid, os.getpid()]
    before_pg, before_ours = watch.cpu_snapshot(watch.postgres_pids()), watch.cpu_snapshot(ours)
    begun = time.time()
    samples = [{"t": 0.0, **watch.table_stats(cluster.db)["tasks"]}]
    vacuums: list[float] = []
    while (left := begun + args.measure - time.time()) > 0:
        time.sleep(min(SAMPLE_EVERY, left))
        samples.append({"t": round(time.time() - begun, 1),
                        **watch.table_stats(cluster.db)["tasks"]})
        if args.vacuum_at is not None and watch.due(samples[-1], args.vacuum_at):
            vacuums.append(watch.vacuum(cluster.db))
    samples[-1]["vacuums"] = vacuums
    ended = time.time()
    backends = watch.database_backends(cluster.db)
    after_pg, after_ours = watch.cpu_snapshot(watch.postgres_pids()), watch.cpu_snapshot(ours)
    span = ended - begun
    cpu = {"postgres_all": watch.cpu_used(before_pg, after_pg) / span,
           "postgres_this_db": watch.cpu_used(before_pg, after_pg, backends) / span,
           "simulator": watch.cpu_used(before_ours, after_ours, {p.pid for p in procs}) / span,
           "api": watch.cpu_used(before_ours, after_ours, {cluster.api_pid}) / span,
           "clients": watch.cpu_used(before_ours, after_ours, {os.getpid()}) / span,
           "load_average": os.getloadavg()[0], "machine_busy": machine_busy(span)}
    return (begun, ended), samples, {k: round(v, 3) for k, v in cpu.items()}


def machine_busy(span: float) -> float:
    """Share of the machine's cores busy over the last ``span`` seconds (all processes)."""
    return round(100 - psutil.cpu_times_percent(interval=None).idle, 1) if span else 0.0


def summarize(workers: int, window: tuple[float, float], samples: list[dict[str, Any]],
              cpu: dict[str, float], stats: list[SimStats], clients: Clients,
              create_rate: float) -> dict[str, Any]:
    calls: dict[str, list[tuple[float, float]]] = {}
    for s in stats:
        for op, values in s.calls.items():
            calls.setdefault(op, []).extend(values)
    finished = [t for s in stats for t in s.finished if window[0] <= t < window[1]]
    first, last = samples[0], samples[-1]
    errors: dict[str, int] = dict(clients.traffic.errors)
    for s in stats:
        for op, n in s.errors.items():
            errors[f"store {op}"] = errors.get(f"store {op}", 0) + n
    return {
        "workers": workers, "seconds": round(window[1] - window[0], 1),
        "create_rate_offered": round(create_rate, 1),
        "store": {op: latency(values, window) for op, values in sorted(calls.items())},
        "creates": latency(clients.traffic.creates, window),
        "polls": latency(clients.traffic.polls, window),
        "finished_per_s": round(len(finished) / (window[1] - window[0]), 2),
        "leases_lost": sum(s.lost for s in stats),
        "taken_over": sum(s.taken_over for s in stats),
        "handed_back_at_stop": sum(s.handed_back for s in stats),
        "errors": errors, "cpu_cores": cpu,
        "tasks_table": {
            "dead_tuples": [int(s["n_dead_tup"]) for s in samples],
            "live_tuples_end": int(last["n_live_tup"]),
            "autovacuum_runs": int(last["autovacuum_count"] - first["autovacuum_count"]),
            "stand_in_vacuums_s": [round(v, 2) for v in last.get("vacuums", [])],
            "updates": int(last["n_tup_upd"] - first["n_tup_upd"]),
            "hot_updates": int(last["n_tup_hot_upd"] - first["n_tup_hot_upd"]),
            "heap_mb": [round(first["heap_bytes"] / 2**20, 1),
                        round(last["heap_bytes"] / 2**20, 1)],
            "index_mb": [round(first["index_bytes"] / 2**20, 1),
                         round(last["index_bytes"] / 2**20, 1)],
        },
    }


# --------------------------------------------------------------------------- main


def create_database(base: str, name: str) -> str:
    admin = make_engine(f"{base}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = f"{base}/{name}"
    migrate(make_engine(url))
    return url


def drop_database(base: str, name: str) -> None:
    admin = make_engine(f"{base}/postgres").execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def settings_of(cluster: Cluster) -> dict[str, str]:
    with cluster.db.connect() as conn:
        return {name: str(conn.execute(text(f"SHOW {name}")).scalar()) for name in
                ("server_version", "shared_buffers", "synchronous_commit", "max_connections",
                 "autovacuum",
                 "autovacuum_naptime", "autovacuum_vacuum_scale_factor")}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--database", default="segue_scale")
    ap.add_argument("--levels", type=int, nargs="+", default=[100, 500, 1000, 2000])
    ap.add_argument("--procs", type=int, default=2, help="simulated worker processes")
    ap.add_argument("--pool", type=int, default=12, help="connections per simulated process")
    ap.add_argument("--ramp", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--measure", type=float, default=45.0)
    ap.add_argument("--create-share", type=float, default=1.0,
                    help="creates at this share of the rate workers finish tasks; below 1 "
                    "the queue is not topped up and runs dry, and workers wait idle")
    ap.add_argument("--poll-every", type=float, default=10.0,
                    help="seconds between two polls of one running task")
    ap.add_argument("--history", type=int, default=50_000, help="finished tasks in the table")
    ap.add_argument("--no-chores", dest="chores", action="store_false",
                    help="leave out the housekeeping and callback passes of one process per "
                    "worker (_simworkers.Chores)")
    ap.add_argument("--without-index", action="append", default=[], metavar="NAME",
                    help="drop this index first (to measure what it saves)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    ap.add_argument("--vacuum-at", type=float, metavar="SCALE",
                    help="where the server's autovacuum is off: VACUUM the task table whenever "
                    "its dead tuples pass 50 + SCALE x its live ones, as autovacuum would")
    ap.add_argument("--report", type=Path, help="only write the .md of this .json again")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.report:
        args.report.with_suffix(".md").write_text(report(json.loads(args.report.read_text())))
        return

    url = create_database(args.server, args.database)
    load_before = round(os.getloadavg()[0], 2)
    psutil.cpu_times_percent(interval=None)
    try:
        with Cluster(url) as cluster, tempfile.TemporaryDirectory(prefix="segue-scale-") as tmp:
            pg = settings_of(cluster)
            tpl = template(cluster)
            seed(cluster, tpl, args.history, "succeeded", "h")
            with cluster.db.connect() as conn:
                auto = conn.execution_options(isolation_level="AUTOCOMMIT")
                for name in args.without_index:
                    auto.execute(text(f"DROP INDEX {name}"))
                auto.execute(text("VACUUM ANALYZE tasks"))
            levels = []
            for workers in args.levels:
                levels.append(run_level(args, cluster, url, workers, tpl, Path(tmp)))
                print(json.dumps(levels[-1]), flush=True)
            costs = op_costs(url, Path(tmp) / "costs", lambda: fresh_row(tpl[0]))
    finally:
        drop_database(args.server, args.database)
    result = {"levels": levels, "costs": costs, "meta": {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
        "load_before": load_before, "postgres": pg["server_version"], **pg,
        "python": platform.python_version(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(report(result))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
