"""Real Segue processes for ``claims.py``: one API-only server and idle workers on PostgreSQL."""

from __future__ import annotations

import base64
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import select

from segue.tasks.db import make_engine
from segue.tasks.schema import TaskRow

TASKS = "/api/v3/contents/generations/tasks"
# Creates name their images by https URL: checked at create, downloaded only by a worker
# (none serves this model while creates are timed), so a create does no image work.
CREATE_MODEL = "segue-flow"
CREATE_BODY = {"model": CREATE_MODEL, "content": [
    {"type": "text", "text": "a bench --rs 720p --dur 5"},
    {"type": "image_url", "image_url": {"url": "https://images.example/first.png"},
     "role": "first_frame"},
    {"type": "image_url", "image_url": {"url": "https://images.example/last.png"},
     "role": "last_frame"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _picture(shift: int) -> str:
    y, x = np.mgrid[0:360, 0:640].astype(np.float32)
    img = np.stack([128 + 60 * np.sin((x - shift) / 23), 128 + 50 * np.cos(y / 31),
                    128 + 40 * np.sin((x + y) / 41)], axis=-1).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Cluster:
    """``segue serve --workers 0`` on ``url``; ``segue worker`` processes started on demand."""

    def __init__(self, url: str) -> None:
        self.url, self._tmp = url, tempfile.TemporaryDirectory(prefix="segue-bench-")
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.keys = [f"bench-key-{i}" for i in range(64)]
        self.db = make_engine(url)
        self._api: subprocess.Popen[bytes] | None = None

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = dict(os.environ, SEGUE_DATABASE_URL=self.url, SEGUE_API_KEYS=",".join(self.keys),
                   SEGUE_DATA_DIR=str(Path(self._tmp.name) / name), SEGUE_PUBLIC_URL=self.base,
                   SEGUE_RATE_LIMIT_LITE="100000000", SEGUE_RATE_LIMIT_PRO="100000000",
                   SEGUE_MAX_QUEUED="100000000", SEGUE_LOG_LEVEL="warning",
                   SEGUE_ALLOW_PRIVATE_URLS="true")
        env.update(extra)
        return env

    def __enter__(self) -> Cluster:
        self._api = subprocess.Popen(
            [sys.executable, "-m", "segue", "serve", "--workers", "0", "--port", str(self.port)],
            env=self.env("api"), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.base + "/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("segue serve did not start")
            time.sleep(0.1)

    @property
    def api_pid(self) -> int:
        assert self._api is not None
        return self._api.pid

    def __exit__(self, *exc: object) -> None:
        if self._api is not None:
            self._api.terminate()
            self._api.wait(30)
        self.db.dispose()
        self._tmp.cleanup()

    # -- creates --------------------------------------------------------------

    def creates(self, clients: int, per_client: int, runs: int) -> dict[str, dict[str, float]]:
        """Create latency with one client alone (the baseline) and with ``clients`` at once."""
        out = {}
        for n in (1, clients):
            figures = [self._create_run(n, per_client) for _ in range(runs)]
            out[str(n)] = {k: round(statistics.median(f[k] for f in figures), 2)
                           for k in figures[0]}
            print("creates", n, out[str(n)], flush=True)
        return out

    def _create_run(self, clients: int, per_client: int) -> dict[str, float]:
        latencies: list[float] = []
        barrier, lock = threading.Barrier(clients + 1), threading.Lock()

        def client(key: str) -> None:
            with httpx.Client(base_url=self.base, timeout=60,
                              headers={"Authorization": f"Bearer {key}"}) as c:
                c.get("/healthz")  # connected before the clock starts
                barrier.wait()
                for _ in range(per_client):
                    started = time.perf_counter()
                    r = c.post(TASKS, json=CREATE_BODY)
                    took = time.perf_counter() - started
                    if r.status_code != 200:
                        raise RuntimeError(r.text)
                    with lock:
                        latencies.append(took)

        threads = [threading.Thread(target=client, args=(self.keys[i],)) for i in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        begun = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - begun
        latencies.sort()
        return {"creates_per_s": len(latencies) / wall,
                "p50_ms": latencies[len(latencies) // 2] * 1e3,
                "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3}

    # -- wake-ups -------------------------------------------------------------

    def wakeups(self, n: int, runs: int) -> dict[str, dict[str, float]]:
        variants = {
            "LISTEN/NOTIFY, poll every 30 s": {"SEGUE_POLL_INTERVAL": "30"},
            "baseline: poll every 0.5 s, no LISTEN": {"SEGUE_LISTEN": "false",
                                                      "SEGUE_POLL_INTERVAL": "0.5"},
        }
        out = {}
        for name, extra in variants.items():
            worker = subprocess.Popen(
                [sys.executable, "-m", "segue", "worker", "--models", "segue-blend"],
                env=self.env("worker", **extra))
            try:
                self._start_delay()  # warm-up: the worker is up and its engine built
                medians, worst = [], 0.0
                for _ in range(runs):
                    delays = [self._start_delay() for _ in range(n)]
                    medians.append(statistics.median(delays))
                    worst = max(worst, *delays)
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
            out[name] = {"median_s": round(statistics.median(medians), 3),
                         "max_s": round(worst, 3)}
            print("wake-ups", name, out[name], flush=True)
        return out

    def _start_delay(self) -> float:
        """Create a task once the worker is idle; its started_at - created_at."""
        time.sleep(random.uniform(0.2, 1.2))  # no fixed phase against a poll
        body = {"model": "segue-blend", "content": [
            {"type": "text", "text": "wake --rs 480p --dur 2"},
            {"type": "image_url", "image_url": {"url": _picture(0)}, "role": "first_frame"},
            {"type": "image_url", "image_url": {"url": _picture(9)}, "role": "last_frame"}]}
        r = httpx.post(self.base + TASKS, json=body, timeout=60,
                       headers={"Authorization": f"Bearer {self.keys[0]}"})
        task_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.db.connect() as conn:
                row = conn.execute(select(TaskRow.status, TaskRow.created_at,
                                          TaskRow.started_at).where(TaskRow.id == task_id)).one()
            if row.status in ("succeeded", "failed"):
                return float(row.started_at - row.created_at)
            time.sleep(0.05)
        raise RuntimeError(f"task {task_id} did not finish")
