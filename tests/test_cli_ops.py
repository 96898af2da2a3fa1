"""`segue serve`, `segue keys` and `segue tasks` as real processes; a crash loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from segue.settings import Settings
from tests.conftest import data_url, free_port, scene


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, SEGUE_DATA_DIR=str(data), SEGUE_ALLOW_PRIVATE_URLS="true",
               SEGUE_POLL_INTERVAL="0.1", SEGUE_LOG_LEVEL="warning")
    env.update(extra)
    return env


def _segue(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segue", *args], env=env, text=True,
                          capture_output=True, timeout=60)


def _serve(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "segue", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "no start")


def test_keys_lifecycle(tmp_path: Path) -> None:
    env = _env(tmp_path)
    created = _segue("keys", "create", "--name", "alice", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-")
    listed = _segue("keys", "list", env=env)
    assert "alice" in listed.stdout and key not in listed.stdout  # stored hashed
    key_id = listed.stdout.split("key-")[1].split()[0]
    port = free_port()
    env["SEGUE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    proc = _serve(env, port, workers=0)
    try:
        url = f"http://127.0.0.1:{port}/api/v3/contents/generations/tasks"
        assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(url).status_code == 401
        # an h2c upgrade offer (Java's HttpClient sends one with every request) keeps its body
        offer = {"Authorization": f"Bearer {key}", "Connection": "Upgrade, HTTP2-Settings",
                 "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"}
        answer = httpx.post(url, headers=offer, json={
            "model": "no-such-model", "content": [{"type": "text", "text": "a pan"}]})
        assert answer.status_code == 404, answer.text  # the body was read: the model is unknown
        revoked = _segue("keys", "revoke", "key-" + key_id, env=env)
        assert revoked.returncode == 0, revoked.stderr
        # The server remembers a key for key_cache_ttl (2 s): the revocation lands within it.
        deadline = time.monotonic() + Settings.model_fields["key_cache_ttl"].default + 1.0
        while httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key is still accepted"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    logged = proc.stderr.read().decode() if proc.stderr else ""
    assert "upgrade" not in logged.lower()  # a declined h2c offer is no warning


@pytest.mark.slow
def test_a_killed_server_loses_nothing(tmp_path: Path) -> None:
    """kill -9 during a render; the restarted server takes the task over and finishes it."""
    port = free_port()
    env = _env(tmp_path, SEGUE_API_KEYS="k", SEGUE_LEASE_TTL="2",
               SEGUE_PUBLIC_URL=f"http://127.0.0.1:{port}")
    proc = _serve(env, port)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer k"}
    body = {"model": "segue-blend", "content": [
        {"type": "text", "text": "long --rs 720p --dur 10"},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360))},
         "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360, 20))},
         "role": "last_frame"}]}
    task_id = httpx.post(base + "/api/v3/contents/generations/tasks", json=body,
                         headers=headers).json()["id"]
    get = f"{base}/api/v3/contents/generations/tasks/{task_id}"
    deadline = time.monotonic() + 30
    while httpx.get(get, headers=headers).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    proc = _serve(env, port)
    try:
        deadline = time.monotonic() + 240
        while (task := httpx.get(get, headers=headers).json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, task
            time.sleep(0.5)
        assert task["status"] == "succeeded", task
        assert task["duration"] == 10
        video = httpx.get(task["content"]["video_url"])
        assert video.status_code == 200 and len(video.content) > 10_000
        shown = _segue("tasks", "show", task_id, env=env)
        assert '"status": "succeeded"' in shown.stdout
    finally:
        proc.terminate()
        proc.wait(30)
    from segue.tasks.db import make_engine
    from segue.tasks.store import TaskStore

    row = TaskStore(make_engine(f"sqlite:///{tmp_path / 'segue.db'}")).get(task_id)
    assert row.attempts == 2  # claimed once before the kill, once after


def test_a_setting_that_does_not_validate_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = _env(tmp_path, SEGUE_CREATE_CONCURRENCY="0", SEGUE_KEY_CACHE_TTL="soon")
    for args in (("keys", "list"), ("serve", "--port", str(free_port()))):
        done = _segue(*args, env=env)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert sorted(lines) == [
            "segue: SEGUE_CREATE_CONCURRENCY=0: Input should be greater than or equal to 1.",
            "segue: SEGUE_KEY_CACHE_TTL=soon: Input should be a valid number, unable to parse "
            "string as a number."], lines
