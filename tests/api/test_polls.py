"""Polls are served by ``PollRoute`` (no dependency solver, no response serializer): the
same endpoint answers exactly as it does through FastAPI's own route machinery."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.testclient import TestClient

from segue.api import errors
from segue.api.ark import routes as ark
from segue.api.deps import PrincipalDep, ServicesDep
from segue.api.openai import routes as openai_videos
from segue.api.polls import Answers, PollShortcut, poll
from segue.app import create_app
from tests.conftest import KEY, OTHER_KEY, LiveServer, ark_task, make_settings, start_server

LITE = "seedance-1-0-lite-i2v-250428"
ENDPOINTS = {"ark": ark.get_task, "openai": openai_videos.retrieve_video}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """This module's server has no workers: its tasks stay queued while two answers are
    compared (a worker would move one from queued to running between them)."""
    live = start_server(make_settings(tmp_path / "data"), workers=0)
    yield live
    live.stop()


def twin_app(live: LiveServer) -> TestClient:
    """Each poll endpoint twice over the live server's store: ``/direct/<name>/{id}`` as a
    ``PollRoute``, ``/solved/<name>/{id}`` as a plain FastAPI route."""
    app = FastAPI()
    app.state.services = live.app.state.services
    errors.install(app)
    router = APIRouter()
    for name, endpoint in ENDPOINTS.items():
        arg = "task_id" if name == "ark" else "video_id"
        poll(router, f"/direct/{name}/{{{arg}}}")(endpoint)
        router.add_api_route(f"/solved/{name}/{{{arg}}}", endpoint, methods=["GET"])
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_a_poll_route_answers_as_fastapi_would(server: LiveServer) -> None:
    with server.client() as http:
        created = http.post(ark.router.prefix + ark.TASKS, json=ark_task(LITE, "a pan"))
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
    twins = twin_app(server)
    cases = [({"Authorization": f"Bearer {KEY}"}, task_id, 200),
             ({"Ocp-Apim-Subscription-Key": KEY}, task_id, 200),
             ({"Authorization": f"Bearer {KEY}"}, "cgt-unknown", 404),
             ({"Authorization": f"Bearer {OTHER_KEY}"}, task_id, 404),  # another key's task
             ({}, task_id, 401),
             ({"Authorization": "Bearer wrong"}, "cgt-unknown", 401)]  # 401 before 404
    for name in ENDPOINTS:
        for headers, ident, status in cases:
            direct = twins.get(f"/direct/{name}/{ident}", headers=headers)
            solved = twins.get(f"/solved/{name}/{ident}", headers=headers)
            assert direct.status_code == solved.status_code == status, (name, headers, ident)
            assert direct.json() == solved.json(), (name, headers, ident)
            assert direct.headers["content-type"] == solved.headers["content-type"]
    assert twins.get(f"/direct/ark/{task_id}", headers=cases[0][0]).json()["id"] == task_id


async def with_query(task_id: str, services: ServicesDep, principal: PrincipalDep,
                     verbose: Annotated[bool, Query()] = False) -> dict[str, Any]:
    return {}


async def with_request(task_id: str, request: Request, principal: PrincipalDep
                       ) -> dict[str, Any]:
    return {}


async def with_int(task_id: int, services: ServicesDep, principal: PrincipalDep
                   ) -> dict[str, Any]:
    return {}


@pytest.mark.parametrize("endpoint", [with_query, with_request, with_int])
def test_a_poll_route_refuses_what_it_would_not_pass_on(endpoint: Any) -> None:
    """Only string path parameters, services and principal: anything else would be dropped
    or passed unvalidated, so the route refuses to be made."""
    with pytest.raises(TypeError, match="PollRoute"):
        poll(APIRouter(), "/x/{task_id}")(endpoint)


async def asgi_get(asgi: Any, path: str, headers: dict[str, str], **scope: Any
                   ) -> tuple[int, dict[str, str], bytes]:
    """One GET through an ASGI app in this process: (status, headers, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
                "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 80),
                "client": ("127.0.0.1", 1), "state": {},
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                **scope}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_the_shortcut_answers_polls_that_succeed_as_the_framework_does(server: LiveServer
                                                                       ) -> None:
    """``PollShortcut`` answers a poll with a remembered key whose task is found, exactly as
    the same app without it answers; every other request goes on to the framework."""
    with server.client() as http:
        created = http.post(ark.router.prefix + ark.TASKS, json=ark_task(LITE, "a pan"))
        task_id = created.json()["id"]
    services = server.app.state.services
    stored_key, _ = services.keys.create("not yet seen")
    framework = create_app(services=services)  # the same app, less the shortcut
    framework.user_middleware = [m for m in framework.user_middleware
                                 if m.cls is not PollShortcut]
    passed_on: list[str] = []

    async def behind(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["path"])
        await framework(scope, receive, send)

    shortcut = PollShortcut(behind, [*ark.router.routes, *openai_videos.router.routes])
    ark_path = ark.router.prefix + ark.TASKS + "/" + task_id
    answered = [(ark_path, {"Authorization": f"Bearer {KEY}"}),
                (ark_path, {"Ocp-Apim-Subscription-Key": KEY}),
                (f"/v1/videos/{task_id}", {"Authorization": f"Bearer {KEY}"})]
    not_answered = [(ark_path, {"Authorization": f"Bearer {stored_key}"}),  # not remembered
                    (ark_path, {"Authorization": f"Bearer {OTHER_KEY}"}),  # another's task
                    (ark_path + "x", {"Authorization": f"Bearer {KEY}"}),  # no such task
                    (ark_path, {}),  # no key
                    (ark.router.prefix + ark.TASKS, {"Authorization": f"Bearer {KEY}"})]

    async def run() -> None:
        for path, headers in answered + not_answered:
            passed_on.clear()
            # the app is what Starlette puts in the scope before the middleware runs
            direct = await asgi_get(shortcut, path, headers, app=server.app)
            solved = await asgi_get(framework, path, headers)
            assert bool(passed_on) is ((path, headers) in not_answered), (path, headers)
            assert direct[0] == solved[0], (path, headers, direct, solved)
            # bodies alike but for the request id that error messages end with
            assert (re.sub(rb"Request id: \w+", b"", direct[2])
                    == re.sub(rb"Request id: \w+", b"", solved[2])), (path, headers)
            assert direct[1]["content-type"] == solved[1]["content-type"]
        passed_on.clear()  # a mounted app: the path is not the route's path
        await asgi_get(shortcut, ark_path, answered[0][1], app=server.app, root_path="/x")
        assert passed_on

    asyncio.run(run())
    # Answered here, a poll is still counted under its route.
    metrics = httpx.get(server.url + "/metrics").text
    assert ('segue_http_requests_total{method="GET",route="/api/v3/contents/generations/'
            'tasks/{task_id}",status="200"}') in metrics


def test_a_poll_is_answered_from_memory_until_anything_is_committed(tmp_path: Any) -> None:
    """``Answers``: while nothing is committed a poll is not read again; a commit anywhere,
    by another process too, is seen by the next poll; a key never gets another's answer."""
    live = start_server(make_settings(tmp_path / "data"), workers=0)
    services = live.app.state.services
    reads: list[str] = []
    get = services.tasks.get

    def counted(task_id: str, key_id: str | None = None) -> Any:
        reads.append(task_id)
        return get(task_id, key_id)

    services.tasks.get = counted
    try:
        with live.client() as http, live.client(OTHER_KEY) as other:
            task_id = http.post(ark.router.prefix + ark.TASKS,
                                json=ark_task(LITE, "a pan")).json()["id"]
            ark_path = ark.router.prefix + ark.TASKS + "/" + task_id
            polls = [http.get(ark_path) for _ in range(3)]
            assert [p.status_code for p in polls] == [200] * 3
            assert polls[0].content == polls[1].content == polls[2].content
            assert reads == [task_id]  # read once, then answered from memory
            assert http.get(f"/v1/videos/{task_id}").json()["status"] == "queued"
            assert len(reads) == 2  # each route keeps its own answers
            # Another key's: refused, never remembered (read by the shortcut, then again by
            # the framework, which renders the error).
            assert other.get(ark_path).status_code == 404
            assert other.get(ark_path).status_code == 404
            assert len(reads) == 6

            # Another process commits: the next poll reads, and sees it.
            database = services.settings.resolved_database_url.split("///", 1)[1]
            subprocess.run([sys.executable, "-c", (
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                "db.execute('UPDATE tasks SET progress = 42 WHERE id = ?', (sys.argv[2],)); "
                "db.commit()"), database, task_id], check=True)
            assert http.get(ark_path).json()["progress"] == 42.0
            assert len(reads) == 7
            assert http.get(ark_path).json()["progress"] == 42.0
            assert len(reads) == 7

            # Any commit in this process (here another task) may have changed any answer.
            http.post(ark.router.prefix + ark.TASKS, json=ark_task(LITE, "a tilt"))
            assert http.get(ark_path).status_code == 200
            assert len(reads) == 8
            assert http.delete(ark_path).status_code == 200  # cancelled
            assert http.get(ark_path).json()["status"] == "cancelled"
    finally:
        live.stop()


def test_the_answers_kept_are_bounded_and_tied_to_one_version() -> None:
    answers = Answers()
    answers.LIMIT = 3
    assert answers.get("v1", ("k", "a")) is None
    for name in "abcd":
        answers.put("v1", ("k", name), name.encode())
    assert answers.get("v1", ("k", "a")) is None  # the oldest went first
    assert answers.get("v1", ("k", "d")) == b"d"
    answers.put("v0", ("k", "e"), b"e")  # made under a version that is no longer current
    assert answers.get("v1", ("k", "e")) is None
    assert answers.get("v2", ("k", "d")) is None  # a new version: all are gone
    assert answers.get("v1", ("k", "d")) is None
    answers.put("v1", ("k", "f"), b"f")
    answers.MAX_AGE = 0.05
    assert answers.get("v1", ("k", "f")) == b"f"
    time.sleep(0.1)
    assert answers.get("v1", ("k", "f")) is None  # too old to be given again
