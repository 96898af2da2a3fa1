"""`segue worker --drain` as a real process: SIGTERM finishes the task in hand, or hands it
back when the drain runs out of time; never strands it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TASKS, LiveServer, ark_task, make_settings, start_server


def _worker(data: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, SEGUE_DATA_DIR=str(data), SEGUE_ALLOW_PRIVATE_URLS="true",
               SEGUE_POLL_INTERVAL="0.1", SEGUE_LOG_LEVEL="warning", PYTHONFAULTHANDLER="1")
    env.pop("SEGUE_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "segue", "worker", *args], env=env,
                            text=True, stderr=subprocess.PIPE)


def _exited(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait for the worker to exit and return its stderr; one that hangs is aborted, and its
    threads' stacks (written by faulthandler at SIGABRT) are the failure's message."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        err = proc.communicate(timeout=30)[1]
        stacks = err[-6000:]
        raise AssertionError(f"the worker did not exit within {timeout} s:\n{stacks}") from None


def _running(api: LiveServer, prompt: str) -> str:
    """Create a task and return its id once a worker holds it."""
    with api.client() as c:
        task_id = c.post(TASKS, json=ark_task("segue-blend", prompt)).json()["id"]
    deadline = time.monotonic() + 60
    while api.services.tasks.get(task_id).status != "running":
        assert time.monotonic() < deadline, "no worker took the task"
        time.sleep(0.05)
    return task_id


def test_sigterm_with_drain_finishes_the_task_in_hand(tmp_path: Path) -> None:
    api = start_server(make_settings(tmp_path), workers=0)  # the API, on the same SQLite store
    proc = _worker(tmp_path, "--drain")
    try:
        task_id = _running(api, "drain --rs 720p --dur 6")
        proc.send_signal(signal.SIGTERM)
        err = _exited(proc, 180)
        assert proc.returncode == 0, err[-2000:]
        row = api.services.tasks.get(task_id)
        assert (row.status, row.attempts) == ("succeeded", 1)
    finally:
        proc.kill()
        api.stop()


def test_a_drain_out_of_time_hands_the_task_back(tmp_path: Path) -> None:
    api = start_server(make_settings(tmp_path), workers=0)
    proc = _worker(tmp_path, "--drain", "--drain-timeout", "0.5")
    try:
        task_id = _running(api, "long --rs 720p --dur 12")
        proc.send_signal(signal.SIGTERM)
        err = _exited(proc, 60)
        assert proc.returncode == 0, err[-2000:]
        row = api.services.tasks.get(task_id)
        assert (row.status, row.attempts, row.worker_id) == ("queued", 0, None)
    finally:
        proc.kill()
        api.stop()
