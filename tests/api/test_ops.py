"""Health, readiness, metrics, OpenAPI docs and structured request logs."""

from __future__ import annotations

import io
import json
import logging

import httpx

from segue.logs import JsonFormatter
from tests.conftest import TASKS, LiveServer, ark_task


def test_health_ready_docs(server: LiveServer) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for route in ("/api/v3/contents/generations/tasks", "/byteplus/v1/generateFrame2VideoTask",
                  "/bytedance-polling/getVideoResult", "/api/v3/models"):
        assert route in paths


def test_metrics_count_requests_and_tasks(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post(TASKS, json=ark_task("segue-blend", "x --rs 480p --dur 2", 5))
        server.wait(r.json()["id"])
        c.get("/api/v3/contents/generations/tasks/cgt-none")
    text = httpx.get(server.url + "/metrics").text
    assert 'segue_tasks{status="succeeded"} 1.0' in text
    assert 'segue_tasks_created_total{model="segue-blend"} 1.0' in text
    assert 'segue_tasks_finished_total{model="segue-blend",status="succeeded"} 1.0' in text
    assert ('segue_http_requests_total{method="GET",route="/api/v3/contents/generations/tasks/'
            '{task_id}",status="404"} 1.0') in text
    assert 'segue_render_seconds_count{engine="blend"} 1.0' in text


def test_request_logs_are_json_with_the_request_id(server: LiveServer) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("segue.http")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with server.client() as c:
            rid = c.get("/api/v3/contents/generations/tasks").headers["X-Request-Id"]
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [e for e in entries if e["request_id"] == rid]
    assert mine and mine[0]["status"] == 200 and mine[0]["path"].endswith("/tasks")
