"""DELETE exactly as decisions.md: queued -> cancelled; finished -> deleted (files too);
running or cancelled -> 400 OperationDenied.TaskStatus; never 409."""

from __future__ import annotations

import httpx

from segue.worker import Worker
from tests.conftest import OTHER_KEY
from tests.lifecycle.support import TASKS, create, wait_until


def _denied(response: httpx.Response, state: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "OperationDenied.TaskStatus"
    assert f"is {state}" in error["message"]


def test_cancel_and_delete_follow_the_task_state(launch, receiver) -> None:
    server = launch(workers=0)
    queued = create(server, callback_url=receiver.url)
    with server.client() as c, server.client(OTHER_KEY) as other:
        assert other.delete(f"{TASKS}/{queued}").status_code == 404  # another key's task

        assert c.delete(f"{TASKS}/{queued}").json() == {}
        task = c.get(f"{TASKS}/{queued}").json()
        assert task["status"] == "cancelled"
        wait_until(lambda: receiver.of(queued, "cancelled"), what="the cancelled callback")
        _denied(c.delete(f"{TASKS}/{queued}"), "cancelled")

        running = create(server)
        claimed = server.services.tasks.claim("test-worker", lease_ttl=30)
        assert claimed is not None and claimed.id == running
        _denied(c.delete(f"{TASKS}/{running}"), "running")
        assert c.get(f"{TASKS}/{running}").json()["status"] == "running"

        finished = create(server, return_last_frame=True)
        assert Worker(server.services, name="w").run_once()
        task = c.get(f"{TASKS}/{finished}").json()
        assert task["status"] == "succeeded"
        video, frame = task["content"]["video_url"], task["content"]["last_frame_url"]
        assert c.delete(f"{TASKS}/{finished}").json() == {}
        gone = c.get(f"{TASKS}/{finished}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "ResourceNotFound"
        assert httpx.get(video).status_code == 404 and httpx.get(frame).status_code == 404
        assert c.delete(f"{TASKS}/{finished}").status_code == 404
    assert [r.status for r in receiver.of(queued)] == ["queued", "cancelled"]
