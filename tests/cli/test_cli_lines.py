"""What `segue serve` and `segue tasks list` print for people (issue 23, point 11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ark_task, free_port, make_settings, start_server


def _segue(*args: str, data: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SEGUE_DATA_DIR=str(data), SEGUE_LOG_LEVEL="warning", **extra)
    return subprocess.run([sys.executable, "-m", "segue", *args], env=env, text=True,
                          capture_output=True, timeout=60)


def test_a_port_in_use_is_one_plain_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _segue("serve", "--port", str(port), "--workers", "0", data=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"segue: cannot listen on 127.0.0.1:{port}: Address already in use (another process "
        "listens there: stop it, or choose another port with --port or SEGUE_PORT)."]


def test_a_metrics_port_in_use_is_one_plain_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (("serve", "--port", str(free_port()), "--workers", "0"),
                        ("worker", "--burst")):
            done = _segue(*command, data=tmp_path, SEGUE_METRICS_ADDR=f"127.0.0.1:{port}")
            assert done.returncode == 2, (command, done.stderr)
            assert done.stderr.strip().splitlines() == [
                f"segue: cannot listen on 127.0.0.1:{port}: Address already in use (another "
                "process listens there: stop it, or choose another port with "
                "SEGUE_METRICS_ADDR)."], command


def test_task_ids_are_never_cut(tmp_path: Path) -> None:
    live = start_server(make_settings(tmp_path), workers=0)
    try:
        with live.client() as client:
            ids = [client.post("/api/v3/contents/generations/tasks",
                               json=ark_task(model, "x")).json()["id"]
                   for model in ("seedance-1-0-lite-i2v-250428", "segue-blend")]
    finally:
        live.stop()
    for columns in ("80", "60"):
        listed = _segue("tasks", "list", data=tmp_path, COLUMNS=columns)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert max(map(len, lines)) <= int(columns)
        for task_id in ids:  # whole, on one line, to copy into `segue tasks show`
            assert any(task_id in line for line in lines), (task_id, listed.stdout)
