"""Queue throughput on PostgreSQL: claims, creates and wake-ups.

1. **Claims.** 10,000 queued tasks (on a table that also holds finished ones); 1, 4 and 8
   claimer processes each loop ``TaskStore.claim`` + ``TaskStore.finish`` (a no-op
   engine: the task succeeds at once). Claims per second and claim latency (median, p99).
   Baseline in the same run: the claim query as it was before the partial index
   ``ix_tasks_claim`` (one query over queued and lapsed rows ordered by tier, then age),
   on a table without that index. A growth series (one claimer) shows how the latency of
   each depends on the queue's length.
2. **Creates.** A real ``segue serve --workers 0`` process on PostgreSQL; 16 concurrent
   clients (one API key each) POST Ark first/last-frame creates (images by URL, so no image
   is decoded); latency median and p99. Baseline
   in the same run: one client alone.
3. **Wake-ups.** A real ``segue worker`` process, idle, polling every 30 s: the time from a
   task's ``created_at`` to its ``started_at``, with LISTEN/NOTIFY; baseline in the same run:
   a worker without it (``SEGUE_LISTEN=false``) at the default 0.5 s poll.

Each figure is the median of ``--runs`` runs. Usage (repository root, PostgreSQL running)::

    python benchmarks/claims.py [--url postgresql://postgres@127.0.0.1:5432/test]
        [--runs 3] [--out benchmarks/results/claims.json]   # also writes claims.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, and_, exists, insert, or_, select, text
from sqlalchemy.orm import Session, aliased

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._cluster import Cluster  # noqa: E402
from segue.domain import ServiceTier, TaskStatus  # noqa: E402
from segue.tasks.db import make_engine, migrate  # noqa: E402
from segue.tasks.schema import TaskRow  # noqa: E402
from segue.tasks.store import TaskStore  # noqa: E402

S = TaskStatus
MODELS = ["seedance-1-0-lite-i2v-250428", "seedance-1-0-pro-250528", "segue-flow", "segue-blend"]


class BaselineStore(TaskStore):
    """The claim query before ``ix_tasks_claim``: kept here verbatim as the baseline."""

    def _next_claimable(self, s: Session, models: Sequence[str] | None,
                        now: float) -> TaskRow | None:
        ready = and_(
            or_(TaskRow.status == S.QUEUED,
                and_(TaskRow.status == S.RUNNING, TaskRow.lease_until < now)),
            TaskRow.expires_at > now,
        )
        if models is not None:
            ready = and_(ready, TaskRow.model.in_(list(models)))
        other = aliased(TaskRow)
        default_waits = exists().where(
            other.status == S.QUEUED, other.service_tier == ServiceTier.DEFAULT,
            other.model == TaskRow.model, other.expires_at > now,
        )
        ready = and_(ready, or_(TaskRow.service_tier == ServiceTier.DEFAULT, ~default_waits))
        q = (select(TaskRow).where(ready)
             .order_by((TaskRow.service_tier == ServiceTier.FLEX).asc(), TaskRow.priority.desc(),
                       TaskRow.created_at)
             .limit(1).with_for_update(skip_locked=True))
        return s.scalars(q).first()


STORES = {"partial index": TaskStore, "baseline": BaselineStore}
CLAIM_INDEX = next(ix for ix in TaskRow.__table__.indexes if ix.name == "ix_tasks_claim")


# --------------------------------------------------------------------------- the table


def _rows(n: int, status: str, start: int, prefix: str) -> list[dict[str, object]]:
    now = time.time()
    return [dict(
        id=f"{prefix}{start + i:07d}", key_id=f"key-{i % 50}", model=MODELS[i % len(MODELS)],
        status=status, service_tier="flex" if i % 10 == 9 else "default", request={},
        seed=i, resolution="720p", ratio="16:9", duration=5, frames=121, progress=0.0,
        created_at=now - 86_400 + (start + i) * 1e-3, updated_at=now, expires_at=now + 86_400,
        attempts=0, finished_at=now if status != S.QUEUED else None,
    ) for i in range(n)]


def seed(engine: Engine, variant: str, queued: int, history: int) -> None:
    """``history`` finished tasks (kept between runs, they are only read past), then
    ``queued`` queued ones, fresh; the claim index as ``variant`` has it."""
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_tasks_claim"))
        if variant == "partial index":
            CLAIM_INDEX.create(conn)
        kept = conn.execute(text("SELECT count(*) FROM tasks WHERE id LIKE 'cgt-h-%'")).scalar()
        if kept != history:
            conn.execute(text("TRUNCATE tasks"))
            for start in range(0, history, 10_000):
                conn.execute(insert(TaskRow), _rows(min(10_000, history - start), S.SUCCEEDED,
                                                    start, "cgt-h-"))
        conn.execute(text("DELETE FROM tasks WHERE id NOT LIKE 'cgt-h-%'"))
        for start in range(0, queued, 10_000):
            conn.execute(insert(TaskRow), _rows(min(10_000, queued - start), S.QUEUED,
                                                history + start, "cgt-q-"))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE tasks"))


# --------------------------------------------------------------------------- claimers


def _claimer(url: str, variant: str, n: int, barrier: object, out: mp.Queue) -> None:
    store = STORES[variant](make_engine(url))
    with store.engine.connect() as conn:  # connect before the clock starts
        conn.execute(text("SELECT 1"))
    worker_id = f"bench-{os.getpid()}"
    latencies = []
    barrier.wait()  # type: ignore[attr-defined]
    for _ in range(n):
        started = time.perf_counter()
        row = store.claim(worker_id, 60)
        latencies.append(time.perf_counter() - started)
        if row is None:
            raise SystemExit("the queue ran dry: seed more tasks or claim fewer")
        store.finish(row.id, worker_id, S.SUCCEEDED)
    out.put((latencies, time.time()))


def claim_run(url: str, variant: str, claimers: int, claims: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(claimers + 1), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(url, variant, claims // claimers, barrier, out))
             for _ in range(claimers)]
    for p in procs:
        p.start()
    barrier.wait()
    begun = time.time()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    wall = max(end for _, end in results) - begun
    return {"claims_per_s": len(latencies) / wall, "p50_ms": _pct(latencies, 50) * 1e3,
            "p99_ms": _pct(latencies, 99) * 1e3}


def _pct(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


def claims(url: str, args: argparse.Namespace) -> dict[str, object]:
    engine = make_engine(url)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for variant in STORES:
        for n in args.claimers:
            runs = []
            for _ in range(args.runs):
                seed(engine, variant, args.queued, args.history)
                runs.append(claim_run(url, variant, n, args.claims))
            table.setdefault(variant, {})[str(n)] = _median_of(runs)
            print(variant, n, table[variant][str(n)], flush=True)
    growth: dict[str, dict[str, dict[str, float]]] = {}
    for variant in STORES:
        for queued in args.growth:
            runs = []
            for _ in range(args.runs):
                seed(engine, variant, queued, args.history)
                runs.append(claim_run(url, variant, 1, args.growth_claims))
            growth.setdefault(variant, {})[str(queued)] = _median_of(runs)
            print("growth", variant, queued, growth[variant][str(queued)], flush=True)
    seed(engine, "partial index", 0, 0)  # empty, with the product's index, for what follows
    engine.dispose()
    return {"by_claimers": table, "growth": growth}


# --------------------------------------------------------------------------- report


def report(result: dict) -> str:  # type: ignore[type-arg]
    meta, claims_, creates, wakes = (result[k] for k in ("meta", "claims", "creates", "wakeups"))
    a = meta["args"]
    lines = [
        "# Queue throughput on PostgreSQL", "",
        f"{meta['date']}, {meta['cpus']} CPUs (shared), PostgreSQL {meta['postgres']}, "
        f"load average {meta['load_before'][0]} before / {meta['load_after'][0]} after; "
        f"every figure is the median of {a['runs']} runs. `python benchmarks/claims.py`; "
        "raw figures in `claims.json`.", "",
        "The machine was shared with other work (see the load average): absolute figures are "
        "lower than on an idle machine; each baseline ran in the same run, under the same "
        "load. Baseline: the claim query before this change (one query over queued and "
        "lapsed rows, ordered by tier then age, which sorts every queued row on each claim), "
        "on a table without `ix_tasks_claim`.", "",
        f"## Claims: {a['queued']:,} queued tasks, {a['history']:,} finished ones in the table",
        "", f"Each run: {a['claims']:,} claims, each followed by its completion (no-op engine).",
        "", "| claimers | claims/s | p50 ms | p99 ms | baseline claims/s | baseline p99 ms "
        "| × claims/s |", "|---|---|---|---|---|---|---|"]
    new, old = claims_["by_claimers"]["partial index"], claims_["by_claimers"]["baseline"]
    for n in new:
        lines.append(f"| {n} | {new[n]['claims_per_s']} | {new[n]['p50_ms']} | "
                     f"{new[n]['p99_ms']} | {old[n]['claims_per_s']} | {old[n]['p99_ms']} | "
                     f"{new[n]['claims_per_s'] / old[n]['claims_per_s']:.1f} |")
    lines += ["", f"Growth (one claimer, {a['growth_claims']} claims per run): claim latency "
              "as the queue grows.", "", "| queued | p50 ms | p99 ms | baseline p50 ms | "
              "baseline p99 ms |", "|---|---|---|---|---|"]
    new, old = claims_["growth"]["partial index"], claims_["growth"]["baseline"]
    for q in new:
        lines.append(f"| {int(q):,} | {new[q]['p50_ms']} | {new[q]['p99_ms']} | "
                     f"{old[q]['p50_ms']} | {old[q]['p99_ms']} |")
    lines += ["", "## Creates through the API (`segue serve --workers 0`, Ark "
              "first/last-frame creates with image URLs, one key per client)", "",
              "| clients | creates/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    for n, row in creates.items():
        lines.append(f"| {n} | {row['creates_per_s']} | {row['p50_ms']} | {row['p99_ms']} |")
    lines += ["", "## Wake-ups: created_at → started_at of an idle `segue worker`", "",
              "| worker | median s | max s |", "|---|---|---|"]
    for name, row in wakes.items():
        lines.append(f"| {name} | {row['median_s']} | {row['max_s']} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def private_schema(base: str) -> tuple[str, Engine, str]:
    admin = make_engine(base)
    schema = "bench_" + uuid.uuid4().hex[:8]
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    migrate(make_engine(url))
    return url, admin, schema


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queued", type=int, default=10_000)
    ap.add_argument("--history", type=int, default=50_000, help="finished tasks in the table")
    ap.add_argument("--claims", type=int, default=2_000, help="claims per run")
    ap.add_argument("--claimers", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--growth", type=int, nargs="+", default=[1_000, 10_000, 30_000])
    ap.add_argument("--growth-claims", type=int, default=300)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--creates", type=int, default=25, help="creates per client per run")
    ap.add_argument("--wakes", type=int, default=7, help="wake-ups timed per run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/claims.json"))
    args = ap.parse_args()

    url, admin, schema = private_schema(args.url)
    load_before = os.getloadavg()
    try:
        result: dict[str, object] = {"claims": claims(url, args)}
        with Cluster(url) as cluster:
            result["creates"] = cluster.creates(args.clients, args.creates, args.runs)
            result["wakeups"] = cluster.wakeups(args.wakes, args.runs)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            version = conn.execute(text("SHOW server_version")).scalar()
    result["meta"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()], "postgres": version,
        "python": platform.python_version(), "args": {k: (str(v) if isinstance(v, Path) else v)
                                                      for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(report(result))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
