"""``scale.py``'s record in Markdown, with the capacity model its figures give."""

from __future__ import annotations

from typing import Any

from segue.callbacks.dispatch import MAX_IDLE_WAIT

UTILISATION = 0.5  # the share of the server's cores a deployment should plan to use
CORES = (2, 8, 16, 32)


def rates(task_seconds: float, poll_every: float, sweep_interval: float) -> dict[str, float]:
    """Calls a second per worker, each worker a ``segue worker`` process of its own."""
    per_task = 1 / task_seconds
    return {"heartbeat": 1.0, "claim": per_task, "full_request": per_task, "finish": per_task,
            "create (store)": per_task, "poll read (store.get)": 1 / poll_every,
            "dispatcher pass": 1 / MAX_IDLE_WAIT + 2 * per_task,
            "housekeeping": 1 / sweep_interval}


def model(costs: dict[str, dict[str, float]], each: dict[str, float]) -> dict[str, float]:
    """Server CPU milliseconds per worker-second, by operation."""
    return {op: round(each[op] * costs[op]["server_cpu_ms"], 4) for op in each}


def report(result: dict[str, Any]) -> str:
    return "\n".join(_levels(result) + _load(result) + _model(result)) + "\n"


def _levels(result: dict[str, Any]) -> list[str]:
    meta = result["meta"]
    lines = [
        "# A large deployment on one PostgreSQL (simulated workers)", "",
        f"{meta['date']}, {meta['cpus']} CPUs shared with other work (load average "
        f"{meta['load_before']} before), PostgreSQL {meta['postgres']} (shared_buffers "
        f"{meta['shared_buffers']}, synchronous_commit {meta['synchronous_commit']}); "
        f"{meta['args']['procs']} simulated worker processes, tasks of 20-40 s; each level "
        f"measured {meta['args']['measure']} s after a {meta['args']['ramp']} s ramp and "
        f"{meta['args']['settle']} s settling. `python benchmarks/scale.py`; raw figures in "
        "the .json beside this file. Autovacuum "
        f"{meta.get('autovacuum', 'not recorded')} on this server"
        + (f"; stand-in VACUUMs at a scale factor of {meta['args']['vacuum_at']}"
           if meta["args"].get("vacuum_at") is not None else "") + ". "
        "Latencies are measured where the call is made (the "
        "simulator's threads, the clients), on a machine whose cores were all busy: see "
        "`machine busy %` and the load average.", "",
        "| workers | heartbeat p50 / p99 ms | claim p50 / p99 ms | finish p99 ms | create p50 / "
        "p99 ms | poll p50 / p99 ms | finished/s | leases lost | PostgreSQL cores (this db) "
        "| simulator cores | dead tuples start → max → end | autovacuums (stand-in VACUUMs) "
        "| load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for level in result["levels"]:
        st, t, cpu = level["store"], level["tasks_table"], level["cpu_cores"]
        hb, cl, fi = (st.get(k, {}) for k in ("heartbeat", "claim", "finish"))
        dead = t["dead_tuples"]
        lines.append(
            f"| {level['workers']} | {hb.get('p50_ms')} / {hb.get('p99_ms')} | "
            f"{cl.get('p50_ms')} / {cl.get('p99_ms')} | {fi.get('p99_ms')} | "
            f"{level['creates']['p50_ms']} / {level['creates']['p99_ms']} | "
            f"{level['polls']['p50_ms']} / {level['polls']['p99_ms']} | "
            f"{level['finished_per_s']} | {level['leases_lost']} | "
            f"{cpu['postgres_all']} ({cpu['postgres_this_db']}) | {cpu['simulator']} | "
            f"{dead[0]} → {max(dead)} → {dead[-1]} | {t['autovacuum_runs']} "
            f"({len(t.get('stand_in_vacuums_s', []))}) | "
            f"{round(cpu['load_average'], 1)} |")
    return lines


def _load(result: dict[str, Any]) -> list[str]:
    lines = ["", "| workers | heartbeats/s | claims/s | dispatcher passes/s | housekeeping runs/s "
             "| creates/s | polls/s | task-row updates (HOT) | heap MB | index MB | API cores | "
             "machine busy % | errors |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for level in result["levels"]:
        st, t, cpu = level["store"], level["tasks_table"], level["cpu_cores"]
        lines.append(
            f"| {level['workers']} | {st.get('heartbeat', {}).get('per_s')} | "
            f"{st.get('claim', {}).get('per_s')} | {st.get('dispatch_pass', {}).get('per_s')} | "
            f"{st.get('housekeeping', {}).get('per_s')} | {level['creates']['per_s']} | "
            f"{level['polls']['per_s']} | {t['updates']} ({t['hot_updates']}) | "
            f"{t['heap_mb'][0]} → {t['heap_mb'][1]} | {t['index_mb'][0]} → {t['index_mb'][1]} "
            f"| {cpu['api']} | {cpu['machine_busy']} | {level['errors'] or '-'} |")
    return lines


def _model(result: dict[str, Any]) -> list[str]:
    costs = result.get("costs")
    if not costs:
        return []
    a = result["meta"]["args"]
    each = rates(30.0, a["poll_every"], 60.0)
    per_worker = model(costs, each)
    total = sum(per_worker.values())
    lines = ["", "## PostgreSQL's CPU per operation, and what a worker costs", "",
             "One connection, one call at a time, on the table the levels left: server CPU "
             "per call (`/proc` of the server process), times the calls a second one worker "
             "makes when each worker is a `segue worker` process of its own (tasks of 30 s, "
             f"a poll of its task every {a['poll_every']} s, housekeeping every 60 s, the "
             f"callback dispatcher's pass every {MAX_IDLE_WAIT} s and after each status "
             "change).", "",
             "| operation | server CPU ms / call | wall ms / call | calls / worker-second | "
             "server CPU ms / worker-second |", "|---|---|---|---|---|"]
    for op, rate in each.items():
        lines.append(f"| {op} | {costs[op]['server_cpu_ms']} | {costs[op]['wall_ms']} | "
                     f"{round(rate, 4)} | {per_worker[op]} |")
    measured = ", ".join(
        f"{lv['workers']}: {lv['cpu_cores']['postgres_this_db'] * 1e3 / lv['workers']:.3f} ms"
        for lv in result["levels"])
    lines += [f"| **total** | | | | **{round(total, 3)}** |", "",
              "Measured in the levels above (PostgreSQL's CPU for this database, divided by "
              f"the workers): {measured} per worker-second.", "",
              f"Workers one PostgreSQL holds at {int(UTILISATION * 100)} % of its cores by this "
              "model (CPU only; see docs/deploy.md for connections, disk and memory): " +
              ", ".join(f"{c} cores: {int(UTILISATION * c * 1e3 / total):,}" for c in CORES)
              + "."]
    before = costs.get("housekeeping without ix_tasks_lapsed_files")
    if before:
        lines += ["", "Housekeeping without `ix_tasks_lapsed_files` (as it was before it): "
                  f"{before['server_cpu_ms']} ms of server CPU and {before['wall_ms']} ms a run, "
                  f"against {costs['housekeeping']['server_cpu_ms']} and "
                  f"{costs['housekeeping']['wall_ms']} with it, on this table of "
                  f"{result['levels'][-1]['tasks_table']['live_tuples_end']:,} tasks; both grow "
                  "with the table."]
    return lines
