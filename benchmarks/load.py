"""API load on loopback: polls and creates against a bare FastAPI endpoint, same run.

Segue (``segue serve --workers 0``: the API alone, over SQLite, with a key made by
``segue keys``) and a bare FastAPI app run as server processes; this process is the load
generator (a minimal keep-alive HTTP/1.1 client on asyncio, so that the client costs little
next to the servers). The bare app runs twice: on Segue's own server set-up
(``segue.app.server_config``: uvicorn with the h11 parser, which Segue needs for clients
that offer an h2c upgrade) and on uvicorn's default (httptools), for scale. Each round
measures:

1. the bare endpoint's throughput on Segue's server set-up with ``--clients`` closed-loop
   clients;
2. right after, polls (``GET /api/v3/contents/generations/tasks/{id}``) the same way, of
   tasks created with http image URLs, and their ratio to step 1 (the result: the minimal
   client makes the server the bottleneck);
2b. steps 1 and 2 again through ``httpx.AsyncClient``, a client as most callers have, which
   costs about as much per request as the server (for comparison with such measurements);
3. the bare endpoint on httptools;
3b. polls as in step 2 while another process's connection commits ten times a second
   (progress on another task, as ten renders' heartbeats would be): a commit anywhere
   empties the answers Segue keeps for polls of unchanged tasks (``api/polls.Answers``),
   so this is the poll rate when the database keeps changing;
4. polls at half the rate of step 2, paced (open loop), for p50/p99 latency;
5. polls of tasks created with data URLs (their images are stored apart, in ``task_inputs``);
6. creates with http image URLs, as in the seed document's examples (fetched later by the
   worker, so the request only parses and stores), with ``--create-clients`` clients;
7. the same creates with first + last frame as 640x360 PNG data URLs (0.9 MB of JSON,
   decoded and checked in the request).

Medians over ``--rounds`` rounds go to ``benchmarks/results/load.md`` and ``load.json``
with the date and the load average, because the machine may be shared.

``--compare DIR`` serves another checkout of Segue (an earlier commit, say, from
``git worktree add DIR COMMIT``) alongside, over a store and key of its own made by its own
``segue keys create``; its polls run right after this checkout's, and its data-URL creates
after this checkout's creates, in every round, so a change is measured against what it
changed in the same run.

    python3 benchmarks/load.py --rounds 3 --seconds 8
    python3 benchmarks/load.py --compare ../segue-before --out load.compare
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TASKS = "/api/v3/contents/generations/tasks"
sys.path.insert(0, str(ROOT))


def serve_bare(port: int) -> None:
    """The bare app on Segue's own server set-up (``python benchmarks/load.py --bare PORT``)."""
    import uvicorn

    from segue.app import server_config

    uvicorn.Server(server_config(bare_app(), "127.0.0.1", port, log_level="warning")).run()


def bare_app():  # type: ignore[no-untyped-def]
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- a small HTTP/1.1 keep-alive client ---------------------------------------------------


class Connection:
    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.extra}"
                f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    bodies: list[bytes] = field(default_factory=list)
    server_cpu: float | None = None  # CPU seconds the server process spent in the phase

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (
            lambda q: float("nan"))
        out = {"requests": len(lat), "errors": self.errors,
               "rps": round(len(lat) / self.elapsed, 1) if self.elapsed else 0.0,
               "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2)}
        if self.server_cpu is not None and lat:
            out["server_cpu_us"] = round(self.server_cpu / len(lat) * 1e6, 1)
        return out


SERVERS: dict[int, int] = {}  # port -> pid of each server ``start`` started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux ``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, headers: dict[str, str], clients: int, seconds: float,
                requests: list[tuple[str, str, bytes]], rate: float | None = None,
                keep: bool = False, once: bool = False,
                connect: Callable[[], Connection | HttpxRequests] | None = None) -> Phase:
    """``clients`` connections for ``seconds``: as fast as answered, or paced at ``rate``/s.

    ``once`` sends each of ``requests`` once and stops. ``connect`` makes each client's
    connection (default: this module's minimal ``Connection``).
    """
    phase = Phase()
    server = SERVERS.get(port)
    cpu_before = cpu_seconds(server) if server else 0.0
    start = time.perf_counter()
    stop = start + seconds

    async def client(index: int) -> None:
        conn = connect() if connect is not None else Connection(port, headers)
        n = 0
        try:
            while True:
                if rate is None:
                    sent = time.perf_counter()
                else:  # open loop: latency counts from when the request was due
                    sent = start + (n * clients + index) / rate
                    await asyncio.sleep(max(0.0, sent - time.perf_counter()))
                slot = n * clients + index
                if sent >= stop or (once and slot >= len(requests)):
                    return
                method, path, body = requests[slot % len(requests)]
                n += 1
                status, payload = await conn.request(method, path, body)
                phase.latencies.append(time.perf_counter() - sent)
                if status != 200:
                    phase.errors += 1
                elif keep:
                    phase.bodies.append(payload)
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    phase.elapsed = time.perf_counter() - start
    if server:
        phase.server_cpu = cpu_seconds(server) - cpu_before
    return phase


class HttpxRequests:
    """``Connection``'s interface over a shared ``httpx.AsyncClient``."""

    def __init__(self, http: Any) -> None:
        self.http = http

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        response = await self.http.request(method, path, content=body or None)
        return response.status_code, response.content

    def close(self) -> None:
        pass  # the client is closed by the one who made it


async def drive_httpx(port: int, headers: dict[str, str], clients: int, seconds: float,
                      requests: list[tuple[str, str, bytes]]) -> Phase:
    """``drive``'s closed loop through ``httpx.AsyncClient``, the HTTP client of the OpenAI
    SDK and of most Python callers: a client that costs about as much per request as the
    server does, so the client shares the bottleneck, as in measurements made with them."""
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                 limits=limits, timeout=60) as http:
        return await drive(port, headers, clients, seconds, requests,
                           connect=lambda: HttpxRequests(http))


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], port: int, env: dict[str, str],
          cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            SERVERS[port] = proc.pid
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on port {port} did not start: {command}")


def create_body(urls: bool = False) -> bytes:
    from tests.conftest import ark_task

    body = ark_task("segue-blend", "a slow pan --rs 480p --dur 2")
    if urls:
        for n, item in enumerate(body["content"][1:]):
            item["image_url"]["url"] = f"https://images.example.com/frame-{n}.png"
    return json.dumps(body).encode()


@dataclass
class Compared:
    """The other checkout's server (``--compare``): its port, key header and task ids."""

    port: int
    headers: dict[str, str]
    tasks: list[str]
    commit: str


class Writer:
    """Commits ``rate`` times a second on its own SQLite connection, in a thread: the
    progress of one task, as renders' heartbeats (``segue worker``) would."""

    def __init__(self, database: Path, task_id: str, rate: float = 10.0) -> None:
        self.database, self.task_id, self.rate = database, task_id, rate
        self.commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.database, timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(1 / self.rate):
                db.execute("UPDATE tasks SET progress = ? WHERE id = ?",
                           (self.commits % 100, self.task_id))
                self.commits += 1
        finally:
            db.close()


async def one_round(args: argparse.Namespace, segue_port: int, bare_port: int,
                    httptools_port: int, headers: dict[str, str],
                    tasks: dict[str, list[str]], compared: Compared | None,
                    database: Path) -> dict[str, dict]:
    polls = [("GET", f"{TASKS}/{i}", b"") for i in tasks["http"]]
    heavy = [("GET", f"{TASKS}/{i}", b"") for i in tasks["data"]]
    # The phases whose ratios are the results run back to back: the machine may be shared,
    # and its speed drifts over seconds.
    bare = await drive(bare_port, {}, args.clients, args.seconds, [("GET", "/ping", b"")])
    full = await drive(segue_port, headers, args.clients, args.seconds, polls)
    extra = {}
    if compared is not None:
        extra["polls_compared"] = (await drive(
            compared.port, compared.headers, args.clients, args.seconds,
            [("GET", f"{TASKS}/{i}", b"") for i in compared.tasks])).summary()
    extra["bare_httpx"] = (await drive_httpx(
        bare_port, {}, args.clients, args.seconds, [("GET", "/ping", b"")])).summary()
    extra["polls_httpx"] = (await drive_httpx(
        segue_port, headers, args.clients, args.seconds, polls)).summary()
    with Writer(database, tasks["data"][0]) as writer:
        writing = await drive(segue_port, headers, args.clients, args.seconds, polls)
    extra["polls_while_writing"] = {**writing.summary(), "commits": writer.commits}
    httptools = await drive(httptools_port, {}, args.clients, args.seconds,
                            [("GET", "/ping", b"")])
    half_rate = full.summary()["rps"] / 2
    half = await drive(segue_port, headers, args.clients, args.seconds, polls, rate=half_rate)
    data_tasks = await drive(segue_port, headers, args.clients, args.seconds, heavy)
    by_url = await drive(segue_port, headers, args.create_clients, args.seconds,
                         [("POST", TASKS, create_body(urls=True))])
    creates = await drive(segue_port, headers, args.create_clients, args.seconds,
                          [("POST", TASKS, create_body())])
    if compared is not None:
        extra["creates_data_urls_compared"] = (await drive(
            compared.port, compared.headers, args.create_clients, args.seconds,
            [("POST", TASKS, create_body())])).summary()
    return {"bare": bare.summary(), "bare_httptools": httptools.summary(),
            "polls": full.summary(),
            "polls_half_load": {**half.summary(), "target_rps": round(half_rate, 1)},
            "polls_of_data_url_tasks": data_tasks.summary(),
            "creates_data_urls": creates.summary(), "creates_http_urls": by_url.summary(),
            **extra}


def median_of(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for phase in rounds[0]:
        out[phase] = {k: round(statistics.median(r[phase][k] for r in rounds), 2)
                      for k in rounds[0][phase]}
    for other in ("bare", "bare_httptools", "polls_compared"):
        if other in rounds[0]:
            out["polls"][f"ratio_to_{other}"] = round(statistics.median(
                r["polls"]["rps"] / r[other]["rps"] for r in rounds), 3)
    out["polls_while_writing"]["ratio_to_bare"] = round(statistics.median(
        r["polls_while_writing"]["rps"] / r["bare"]["rps"] for r in rounds), 3)
    out["polls_httpx"]["ratio_to_bare_httpx"] = round(statistics.median(
        r["polls_httpx"]["rps"] / r["bare_httpx"]["rps"] for r in rounds), 3)
    return out


def prepare(data_dir: Path, env: dict[str, str]) -> str:
    """A stored key, made the way ``segue keys create`` makes it."""
    os.environ.update(env)
    from segue.services import Services
    from segue.settings import Settings

    services = Services.build(Settings())
    key, _ = services.keys.create("load")
    services.db.dispose()
    return key


async def seed_tasks(port: int, headers: dict[str, str], count: int,
                     urls: bool = False) -> list[str]:
    body = create_body(urls=urls)
    phase = await drive(port, headers, 4, 600, [("POST", TASKS, body)] * count,
                        keep=True, once=True)
    return [json.loads(b)["id"] for b in phase.bodies]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--create-clients", type=int, default=16)
    parser.add_argument("--out", default="load")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="another Segue checkout whose polls to measure alongside")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # serve the bare app
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="segue-load-"))
    # Default settings (JSON access logs included) but for limits a benchmark would hit.
    env = {**os.environ, "SEGUE_DATA_DIR": str(data_dir), "SEGUE_MAX_QUEUED": "1000000",
           "SEGUE_RATE_LIMIT_LITE": "1000000", "SEGUE_RATE_LIMIT_PRO": "1000000"}
    key = prepare(data_dir, env)
    headers = {"Authorization": f"Bearer {key}"}
    segue_port, bare_port, httptools_port = free_port(), free_port(), free_port()
    servers = [
        start([sys.executable, "-m", "segue", "serve", "--port", str(segue_port),
               "--workers", "0"], segue_port, env),
        start([sys.executable, __file__, "--bare", str(bare_port)], bare_port, env),
        start([sys.executable, "-m", "uvicorn", "--http", "httptools", "--factory",
               "benchmarks.load:bare_app", "--port", str(httptools_port),
               "--log-level", "warning"], httptools_port, env),
    ]
    try:
        compared = serve_compared(args.compare.resolve(), servers) if args.compare else None
        tasks = {"http": asyncio.run(seed_tasks(segue_port, headers, 64, urls=True)),
                 "data": asyncio.run(seed_tasks(segue_port, headers, 64))}
        rounds = [asyncio.run(one_round(args, segue_port, bare_port, httptools_port,
                                        headers, tasks, compared, data_dir / "segue.db"))
                  for _ in range(args.rounds)]
        costs = asyncio.run(app_costs(key, tasks["http"][0]))
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(30)
    record(args, rounds, costs, compared)


def serve_compared(root: Path, servers: list[subprocess.Popen[bytes]]) -> Compared:
    """``segue serve`` from another checkout, with a key its own ``segue keys`` made."""
    env = {**os.environ, "PYTHONPATH": str(root),
           "SEGUE_DATA_DIR": tempfile.mkdtemp(prefix="segue-load-compared-"),
           "SEGUE_MAX_QUEUED": "1000000", "SEGUE_RATE_LIMIT_LITE": "1000000",
           "SEGUE_RATE_LIMIT_PRO": "1000000"}
    made = subprocess.run([sys.executable, "-m", "segue", "keys", "create", "--name", "load"],
                          cwd=root, env=env, capture_output=True, text=True, check=True)
    headers = {"Authorization": f"Bearer {made.stdout.split()[-1]}"}
    port = free_port()
    servers.append(start([sys.executable, "-m", "segue", "serve", "--port", str(port),
                          "--workers", "0"], port, env, cwd=root))
    commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip() or str(root)
    return Compared(port, headers, asyncio.run(seed_tasks(port, headers, 64, urls=True)),
                    commit)


async def app_costs(key: str, task_id: str, calls: int = 3000) -> dict[str, float]:
    """Microseconds per request inside the app, without a server: the bare endpoint and a
    poll called as ASGI apps in this process, over the same store, median of 5 batches.

    What a server adds (parsing, the socket, the event loop) is the same for both; this shows
    how much of a poll is Segue's own work. ``poll`` runs with the logging ``segue serve``
    sets up (a JSON access log line per request, written to a null device here),
    ``poll_quiet`` with the log level at ``warning`` (no access log).
    """
    import logging

    from segue import logs
    from segue.app import create_app

    async def call(app, path: str, headers: list[tuple[bytes, bytes]]) -> None:  # type: ignore[no-untyped-def]
        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            pass

        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                   "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
                   "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 80),
                   "client": ("127.0.0.1", 1), "headers": [(b"host", b"x"), *headers],
                   "state": {}}, receive, send)

    poll = (create_app(), f"{TASKS}/{task_id}", [(b"authorization", f"Bearer {key}".encode())])
    cases = {"bare": (bare_app(), "/ping", []), "poll": poll, "poll_quiet": poll}
    out = {}
    with open(os.devnull, "w") as null:
        for name, (app, path, headers) in cases.items():
            logs.configure("warning" if name == "poll_quiet" else "info")
            logging.getLogger().handlers[0].setStream(null)
            batches = []
            for _ in range(6):  # the first batch warms up
                began = time.perf_counter()
                for _ in range(calls // 5):
                    await call(app, path, headers)
                batches.append((time.perf_counter() - began) / (calls // 5) * 1e6)
            out[f"{name}_us"] = round(statistics.median(batches[1:]), 1)
    return out


def record(args: argparse.Namespace, rounds: list[dict[str, dict]],
           costs: dict[str, float], compared: Compared | None) -> None:
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "clients": args.clients, "create_clients": args.create_clients,
        "seconds_per_phase": args.seconds, "rounds": rounds, "median": median_of(rounds),
        "app_costs_us": costs, "compared": compared.commit if compared else None,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(result))
    print(json.dumps(result["median"], indent=2))


def markdown(result: dict) -> str:
    m = result["median"]
    lines = [
        "# API load on loopback", "",
        f"Recorded {result['date']} by `python3 benchmarks/load.py`; load average "
        f"{' / '.join(map(str, result['loadavg_1_5_15']))} on {result['cpus']} CPUs (shared). "
        f"Medians of {len(result['rounds'])} rounds of {result['seconds_per_phase']} s per "
        "phase; Segue is `segue serve --workers 0` over SQLite with a stored key.", "",
        "| phase | clients | req/s | p50 ms | p99 ms | errors | server CPU µs/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase, row in m.items():
        clients = result["create_clients"] if phase.startswith("creates") else result["clients"]
        lines.append(f"| {phase} | {clients} | {row['rps']} | {row['p50_ms']} | "
                     f"{row['p99_ms']} | {row['errors']} | {row.get('server_cpu_us', '-')} |")
    costs = result["app_costs_us"]
    lines += [
        "", "`bare` is the bare app on Segue's own server set-up (uvicorn, h11 parser); "
        "`bare_httptools` the same app on uvicorn's default parser.", "",
        f"Polls / bare endpoint (same run): **{m['polls']['ratio_to_bare']}x** on the same "
        f"server set-up, {m['polls']['ratio_to_bare_httptools']}x against httptools.", "",
        f"With httpx clients (`bare_httpx`, `polls_httpx`: the client costs as much as the "
        f"server and shares the bottleneck): **{m['polls_httpx']['ratio_to_bare_httpx']}x**.",
        "",
        "Server CPU µs/request: the server process's user + system time over the phase "
        "(`/proc`), divided by the requests it answered; unlike req/s, it does not depend on "
        "how the client and the server share the CPUs. A poll: "
        f"**{m['polls']['server_cpu_us']} µs** against {m['bare']['server_cpu_us']} µs for a "
        f"bare request ({m['polls_while_writing']['server_cpu_us']} µs while another "
        "connection commits).", "",
        "Per round: " + ", ".join(
            f"{r['polls']['rps'] / r['bare']['rps']:.3f}" for r in result["rounds"])
        + " (polls / bare endpoint).", "",
        f"Polls while another connection commits "
        f"{m['polls_while_writing']['commits'] / result['seconds_per_phase']:.0f} times a "
        f"second (`polls_while_writing`) / bare endpoint: "
        f"**{m['polls_while_writing']['ratio_to_bare']}x**.", "",
        *([f"Polls / polls of the compared checkout (`{result['compared']}`, same run, "
           f"right after): **{m['polls']['ratio_to_polls_compared']}x**.", ""]
          if result["compared"] else []),
        f"Inside the app, without a server (µs per request, in this process): bare endpoint "
        f"{costs['bare_us']}, poll {costs['poll_us']} (without the access log: "
        f"{costs.get('poll_quiet_us', '-')}).", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
