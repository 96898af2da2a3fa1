"""Per-key limits over HTTP: a sliding create-rate window and a queued-task quota, both
429 with Retry-After and x-should-retry: false; a stored key may override both."""

from __future__ import annotations

import time

import httpx

from tests.conftest import OTHER_KEY
from tests.lifecycle.support import TASKS, body

PRO = "seedance-1-0-pro-250528"


def _refused(response: httpx.Response, code: str) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["x-should-retry"] == "false"
    return int(response.headers["Retry-After"])


def test_the_create_rate_is_a_sliding_window_per_key_and_tier(launch) -> None:
    server = launch(workers=0, rate_limit_lite=3, rate_limit_pro=4, rate_window=4)
    with server.client() as c:
        started = time.monotonic()
        assert c.post(TASKS, json=body()).status_code == 200
        time.sleep(1.0)  # the rest of this block fits in the window even on a slow machine
        for _ in range(2):
            assert c.post(TASKS, json=body()).status_code == 200
        wait = _refused(c.post(TASKS, json=body()), "RateLimitExceeded.EndpointRPMExceeded")
        assert 1 <= wait <= 4
        # other tiers and other keys have their own windows
        for _ in range(4):
            assert c.post(TASKS, json=body(model=PRO)).status_code == 200
        _refused(c.post(TASKS, json=body(model=PRO)), "RateLimitExceeded.EndpointRPMExceeded")
        with server.client(OTHER_KEY) as other:
            assert other.post(TASKS, json=body()).status_code == 200
        pixazo = c.post("/byteplus/v1/generateFrame2VideoTask", json={
            "model": "segue-blend", "text": "x", "first_frame": body()["content"][1][
                "image_url"]["url"], "last_frame": body()["content"][2]["image_url"]["url"]})
        assert pixazo.status_code == 429 and pixazo.headers["x-should-retry"] == "false"

        # sliding: once the first create leaves the window, exactly one more fits
        time.sleep(max(0.0, started + 4.5 - time.monotonic()))
        assert c.post(TASKS, json=body()).status_code == 200
        _refused(c.post(TASKS, json=body()), "RateLimitExceeded.EndpointRPMExceeded")


def test_deleting_finished_tasks_does_not_make_room_in_the_window(launch) -> None:
    """The window counts creates, not the tasks still stored."""
    server = launch(workers=1, rate_limit_lite=2, rate_window=60)
    with server.client() as c:
        for _ in range(2):
            task_id = c.post(TASKS, json=body()).json()["id"]
            assert server.wait(task_id)["status"] == "succeeded"
            assert c.delete(f"{TASKS}/{task_id}").status_code == 200
            assert c.get(f"{TASKS}/{task_id}").status_code == 404
        _refused(c.post(TASKS, json=body()), "RateLimitExceeded.EndpointRPMExceeded")


def test_the_queued_quota_and_per_key_overrides(launch) -> None:
    server = launch(workers=0, max_queued=2)
    with server.client() as c:
        ids = [c.post(TASKS, json=body()).json()["id"] for _ in range(2)]
        assert _refused(c.post(TASKS, json=body()), "QuotaExceeded") >= 1
        assert c.delete(f"{TASKS}/{ids[0]}").json() == {}  # cancelled: no longer queued
        assert c.post(TASKS, json=body()).status_code == 200

    key, _row = server.services.keys.create("small", rate_limit=1, max_queued=5)
    with server.client(key) as c:
        assert c.post(TASKS, json=body()).status_code == 200
        _refused(c.post(TASKS, json=body()), "RateLimitExceeded.EndpointRPMExceeded")
    key, _row = server.services.keys.create("big", max_queued=3)
    with server.client(key) as c:
        for _ in range(3):
            assert c.post(TASKS, json=body()).status_code == 200
        _refused(c.post(TASKS, json=body()), "QuotaExceeded")
