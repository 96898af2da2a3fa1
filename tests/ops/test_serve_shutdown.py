"""`segue serve` as a real process: at SIGTERM its workers claim nothing new, even while an
open event stream keeps the server waiting for its connections to close."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import KEY, TASKS, ark_task, free_port, make_settings, start_server


def _serve(data: Path, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, SEGUE_DATA_DIR=str(data), SEGUE_API_KEYS=KEY,
               SEGUE_POLL_INTERVAL="0.1", SEGUE_LOG_LEVEL="warning")
    env.pop("SEGUE_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "segue", "serve", "--port", str(port),
                             "--workers", "2"], env=env, text=True, stderr=subprocess.PIPE)


def _until(check, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigterm_stops_claiming_while_a_stream_is_open(tmp_path: Path) -> None:
    api = start_server(make_settings(tmp_path), workers=0)  # creates, on the same SQLite store
    port = free_port()
    proc = _serve(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        _until(lambda: _answers(url), "segue serve did not start")
        with api.client() as c:
            long = c.post(TASKS, json=ark_task("segue-blend", "long --rs 720p --dur 12")).json()
        _until(lambda: api.services.tasks.get(long["id"]).status == "running",
               "no worker took the task")
        with httpx.stream("GET", f"{url}{TASKS}/{long['id']}/events", headers=headers,
                          timeout=30) as events:
            assert events.status_code == 200
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the signal is handled; the stream holds the server open
            assert proc.poll() is None
            with api.client() as c:  # the second worker is idle: it would take this at once
                later = c.post(TASKS, json=ark_task("segue-blend", "later --dur 2")).json()
            time.sleep(2)
            row = api.services.tasks.get(later["id"])
            assert (row.status, row.attempts) == ("queued", 0)
        _, err = proc.communicate(timeout=60)  # the stream closed: the server stops
        # uvicorn raises the signal again once it has shut down, as a signalled process ends
        assert proc.returncode in (0, -signal.SIGTERM), err[-2000:]
        assert "Traceback" not in err
        assert api.services.tasks.get(later["id"]).status == "queued"
        assert api.services.tasks.get(long["id"]).status in ("queued", "succeeded")
    finally:
        proc.kill()
        api.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
