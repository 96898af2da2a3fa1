"""Polls are served by ``PollRoute`` (no dependency solver, no response serializer): the
same endpoint answers exactly as it does through FastAPI's own route machinery."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.testclient import TestClient

from segue.api import errors
from segue.api.ark import routes as ark
from segue.api.deps import PrincipalDep, ServicesDep, poll
from segue.api.openai import routes as openai_videos
from tests.conftest import KEY, OTHER_KEY, LiveServer, ark_task

LITE = "seedance-1-0-lite-i2v-250428"
ENDPOINTS = {"ark": ark.get_task, "openai": openai_videos.retrieve_video}


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
