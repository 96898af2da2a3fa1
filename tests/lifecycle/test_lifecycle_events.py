"""The progress stream (SSE): progress while running, keep-alive comments, the end after
the final status; the auth and 404 rules of GET; and progress/eta in the task object."""

from __future__ import annotations

import json
import threading
import time

import httpx

from segue.worker import Worker
from tests.conftest import KEY, OTHER_KEY
from tests.lifecycle.support import TASKS, SlowEngine, create, use_engine, wait_until


def _read_stream(url: str, key: str, lines: list[str]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            lines.append(line)


def _events(lines: list[str]) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]


def test_a_client_reads_progress_to_the_end(launch) -> None:
    server = launch(workers=0, events_keepalive=0.2, lease_ttl=1)  # progress every 0.33 s
    engine = SlowEngine(delay=0.03)  # 49 frames: about 1.5 s
    use_engine(server, engine)
    task_id = create(server)
    lines: list[str] = []
    reader = threading.Thread(target=_read_stream, args=(
        f"{server.url}{TASKS}/{task_id}/events", KEY, lines), daemon=True)
    reader.start()
    # while the task waits in the queue nothing changes: keep-alive comments only
    wait_until(lambda: lines.count(": keep-alive") >= 2, timeout=5, what="keep-alive comments")

    seen: list[dict] = []

    def watch() -> None:  # the task object itself gains progress and an eta while running
        with server.client() as c:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                task = c.get(f"{TASKS}/{task_id}").json()
                seen.append(task)
                if task["status"] not in ("queued", "running"):
                    return
                time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert Worker(server.services, name="w").run_once()
    reader.join(10)
    watcher.join(10)
    assert not reader.is_alive()  # the server ended the stream after the final status

    events = _events(lines)
    assert events[0]["status"] == "queued" and events[0]["progress"] == 0
    assert events[-1]["status"] == "succeeded" and events[-1]["progress"] == 100
    assert events[-1]["content"]["video_url"].startswith(server.url)
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    middle = [e for e in events if e["status"] == "running" and 0 < e["progress"] < 100]
    assert len(middle) >= 2, progress
    assert all(e["id"] == task_id for e in events)
    running = [t for t in seen if t["status"] == "running" and t["progress"] > 5]
    assert running and isinstance(running[-1]["eta"], float | int)
    assert "progress" not in seen[-1]  # the SDK's shape once finished: no progress, no eta


def test_the_stream_follows_the_rules_of_get(launch) -> None:
    server = launch(workers=1)
    task_id = create(server)
    assert server.wait(task_id)["status"] == "succeeded"
    url = f"{server.url}{TASKS}/{task_id}/events"
    assert httpx.get(url).status_code == 401
    for key, path in ((OTHER_KEY, url), (KEY, f"{server.url}{TASKS}/cgt-20250101000000-zzzzz/"
                                                "events")):
        response = httpx.get(path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ResourceNotFound"
    # a finished task: one event, then the end
    lines: list[str] = []
    _read_stream(url, KEY, lines)
    events = _events(lines)
    assert [e["status"] for e in events] == ["succeeded"] and events[0]["progress"] == 100
