"""Health, readiness, metrics, OpenAPI docs and structured request logs."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx

from segue.logs import JsonFormatter
from tests.conftest import TASKS, LiveServer, ark_task, make_settings


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


def test_made_up_methods_share_one_series(server: LiveServer) -> None:
    """Any token is a method to HTTP: each new one must not add series to every scrape."""
    with server.client() as c:
        for method in ("BREW", "WHEN", "PROPFIND-X"):
            assert c.request(method, TASKS).status_code in (404, 405)
    text = httpx.get(server.url + "/metrics").text
    assert "BREW" not in text and "WHEN" not in text
    assert 'segue_http_requests_total{method="OTHER",' in text


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
        logger.setLevel(logging.NOTSET)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [e for e in entries if e["request_id"] == rid]
    assert mine and mine[0]["status"] == 200 and mine[0]["path"].endswith("/tasks")


def test_a_log_line_is_one_json_object_whatever_its_fields_hold() -> None:
    """The fixed fields, then the ``extra`` ones in name order; a value JSON has no form for
    is written as its ``str``, and bytes that are not UTF-8 do not lose the line."""
    formatter = JsonFormatter()

    def line(**extra: object) -> dict:
        record = logging.LogRecord("segue.test", logging.INFO, __file__, 1, "took %s", ("x",),
                                   None)
        record.__dict__.update(extra)
        text = formatter.format(record)
        assert "\n" not in text
        return json.loads(text)  # type: ignore[no-any-return]

    entry = line(status=200, path=Path("/a b"), method="GET")
    assert list(entry) == ["ts", "level", "logger", "msg", "request_id", "method", "path",
                           "status"]
    assert entry["msg"] == "took x" and entry["path"] == "/a b" and entry["status"] == 200
    assert entry["level"] == "info" and entry["request_id"] == "-"
    assert line(raw=b"\xff\xfe")["raw"] == "b'\\xff\\xfe'"
    assert line(thing=object())["thing"].startswith("<object object")
    # uvicorn's message again in terminal colours: not a field of Segue's lines
    assert "color_message" not in line(color_message="\x1b[1mUvicorn running\x1b[0m")


def test_fastapi_telemetry_only_when_asked_for(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """FastAPI's native OpenTelemetry is off unless ``SEGUE_OPENTELEMETRY``: even with
    providers configured (simulated here), a request does not go through it."""
    import fastapi.telemetry._asgi as native

    from segue.app import create_app

    monkeypatch.setattr(native, "_unconfigured", lambda provider: False)  # providers set
    off = create_app(make_settings(tmp_path / "off"))
    on = create_app(make_settings(tmp_path / "on", opentelemetry=True))
    assert not off._native_telemetry.enabled()
    assert on._native_telemetry.enabled()


def test_the_request_line_is_written_as_the_formatter_writes_it() -> None:
    """``logs.request_line`` writes straight to the stream of the handler ``configure``
    installed: the same JSON, field for field and in the same order, as the logging module's
    way; the level still applies, and logging set up otherwise takes the logging module's way."""
    from segue import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("info")
        stream = io.StringIO()
        assert logs._handler is not None
        logs._handler.setStream(stream)
        token = logs.request_id.set("rid-1")
        try:
            logs.request_line("GET", "/v1/videos/é", 200, 1.5)
        finally:
            logs.request_id.reset(token)
        direct = json.loads(stream.getvalue())
        record = logging.getLogger("segue.http").makeRecord(
            "segue.http", logging.INFO, "", 0, "request", (), None,
            extra={"method": "GET", "path": "/v1/videos/é", "status": 200, "ms": 1.5})
        token = logs.request_id.set("rid-1")
        try:
            formatted = json.loads(JsonFormatter().format(record))
        finally:
            logs.request_id.reset(token)
        assert list(direct) == list(formatted)
        assert {**direct, "ts": 0} == {**formatted, "ts": 0}
        assert abs(direct["ts"] - formatted["ts"]) < 5

        logs.configure("warning")
        logs._handler.setStream(stream := io.StringIO())
        logs.request_line("GET", "/x", 200, 1.0)
        assert stream.getvalue() == ""

        logs.configure("info")
        logs._handler.setStream(stream := io.StringIO())
        extra = logging.StreamHandler(other := io.StringIO())
        extra.setFormatter(JsonFormatter())
        root.addHandler(extra)  # logging set up otherwise: both handlers get the line
        logs.request_line("GET", "/x", 404, 1.0)
        assert json.loads(stream.getvalue())["status"] == 404
        assert json.loads(other.getvalue())["status"] == 404
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_a_first_start_logs_each_migration_once_and_no_alembic_chatter(tmp_path: Path) -> None:
    """A fresh database logs one line per migration run; Alembic's "Context impl" and "Will
    assume non-transactional DDL" (three times each at a first start) are dropped."""
    from segue import logs
    from segue.tasks.db import ensure_schema, head_revision, make_engine

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("info")
        assert logs._handler is not None
        logs._handler.setStream(stream := io.StringIO())
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        ensure_schema(engine)
        engine.dispose()
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        messages = [line["msg"] for line in lines if line["logger"].startswith("alembic")]
        assert messages and all(m.startswith("Running upgrade") for m in messages), messages
        assert f"-> {head_revision()}," in messages[-1]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
