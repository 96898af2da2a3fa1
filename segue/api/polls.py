"""Task polls, the requests clients send most: served with as little machinery as possible.

Every SDK polls every task every few seconds, so a poll's cost is most of the API's load.
Two pieces keep it small, both serving the same endpoint functions, which stay ordinary,
documented FastAPI routes:

- ``PollRoute`` calls its endpoint without FastAPI's dependency solver and response
  serializer (which validated and re-encoded a dict that is JSON already);
- ``PollShortcut``, a middleware, answers a poll that will succeed (its key is one the key
  store remembers, its task is found) before the framework's exception handling and
  routing see it. Anything else (an unknown key, a missing task, a path that is not a
  poll) goes on to the framework, which answers as for every other route.

Both render the endpoint's dict with ``pydantic_core.to_json``, the encoder FastAPI itself
serializes responses with, five times faster than ``json.dumps`` on a task object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import pydantic_core
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from segue.api.deps import get_principal, get_services, key_in
from segue.errors import SegueError
from segue.keys import Principal
from segue.services import Services

F = TypeVar("F", bound=Callable[..., Any])


class TaskJSON(JSONResponse):
    """JSON as Starlette's ``JSONResponse`` writes it (compact, UTF-8), encoded in Rust."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


class Answers:
    """A poll route's answers, kept while the database is unchanged.

    Keyed by the poll's path parameters and the caller's key id, and valid for one value of
    ``TaskStore.version`` (SQLite's ``PRAGMA data_version``, which changes whenever any
    connection of any process commits). The first poll seen with a new version empties
    them all: a commit anywhere (a worker's progress, another create) may have changed any
    answer. An answer is also given again for at most ``MAX_AGE`` seconds: an S3 link is
    signed for at most a week from when it was made, so a link kept longer would lapse
    before a new one would. At most ``LIMIT`` answers are kept, the oldest going first.
    Poll routes are ``async``: their answers are made and kept on the event loop's thread.
    """

    LIMIT = 4096
    MAX_AGE = 60.0

    def __init__(self) -> None:
        self._version: object = None
        self._bodies: dict[tuple[str, ...], tuple[bytes, float]] = {}

    def get(self, version: object, key: tuple[str, ...]) -> bytes | None:
        if version != self._version:
            self._bodies.clear()
            self._version = version
            return None
        kept = self._bodies.get(key)
        if kept is None or time.monotonic() - kept[1] > self.MAX_AGE:
            return None
        return kept[0]

    def put(self, version: object, key: tuple[str, ...], body: bytes) -> None:
        if version != self._version:  # a newer version was seen while this one was made
            return
        self._bodies.pop(key, None)  # a renewed answer goes to the end of the line
        if len(self._bodies) >= self.LIMIT:
            del self._bodies[next(iter(self._bodies))]
        self._bodies[key] = (body, time.monotonic())


class PollRoute(APIRoute):
    """A GET route whose endpoint is called directly (by its handler and by the shortcut).

    FastAPI's dependency solver and response serializer were 40 % of a poll in the app
    (``benchmarks/README.md``).

    The endpoint may take only path parameters (strings), ``services`` and ``principal``
    (``ServicesDep``, ``PrincipalDep``), which is checked when the route is made. It is
    documented from its signature like any other route, and its errors go to the same
    handlers. Declared with ``@poll(router, path, ...)``.

    Its answer must depend on nothing but the database, the path parameters and the
    caller's key id (a task's view does: it is a function of the task's row). Then, where
    the store can tell that nothing was committed since a poll was answered
    (``TaskStore.version``: on SQLite), the same poll gets the same bytes again without
    reading or rendering (``Answers``): most polls ask about tasks that have not changed
    since the last poll. Errors are never kept: they go to the framework each time.
    """

    answers: Answers

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        plain = all(p.field_info.annotation is str and not p.field_info.metadata
                    for p in dependant.path_params)
        names = {d.call: str(d.name) for d in dependant.dependencies}
        extra = (dependant.query_params or dependant.header_params or dependant.cookie_params
                 or dependant.body_params or dependant.request_param_name)
        if self.methods != {"GET"} or not plain or extra or set(names) != {
                get_services, get_principal}:
            raise TypeError(f"{self.path}: a PollRoute's endpoint takes only string path "
                            "parameters, services and principal, and answers GET")
        self._services_name, self._principal_name = names[get_services], names[get_principal]
        self.answers = Answers()

        async def handle(request: Request) -> Response:
            principal = await get_principal(request)  # first, as FastAPI does: 401 before 404
            return await self.answer(request.app.state.services, principal,
                                     request.path_params)

        return handle

    async def answer(self, services: Services, principal: Principal,
                     params: dict[str, Any]) -> Response:
        version = services.tasks.version()  # before the endpoint reads: see Answers.put
        key = (principal.key_id, *params.values())
        if version is not None and (body := self.answers.get(version, key)) is not None:
            return Response(body, media_type=TaskJSON.media_type)
        result = await self.endpoint(**params, **{self._services_name: services,
                                                  self._principal_name: principal})
        if isinstance(result, Response):
            return result
        response = TaskJSON(result)
        if version is not None:
            self.answers.put(version, key, bytes(response.body))
        return response


def poll(router: APIRouter, path: str, **options: Any) -> Callable[[F], F]:
    """``@router.get(path, **options)``, served by a ``PollRoute``."""

    def declare(endpoint: F) -> F:
        router.add_api_route(path, endpoint, methods=["GET"], route_class_override=PollRoute,
                             **options)
        return endpoint

    return declare


class PollShortcut:
    """Answers a poll that will succeed before the framework routes it.

    Past this point a request goes through Starlette's exception middleware, FastAPI's
    exit-stack middleware, the routers' matching (nested since FastAPI 0.165: a poll was
    matched against six routes) and a ``Request``: about a quarter of a poll's cost in the
    app (``benchmarks/README.md``). Here the poll routes' own path patterns are matched
    against the path, the key is looked up among the keys the store remembers
    (``KeyStore.remembered``: no query), and the route's endpoint is called as its handler
    calls it. A poll this cannot answer whole (no key, a key not remembered, an error from
    the endpoint, a mounted app) goes on to the framework untouched, so every error is
    rendered in one place.

    Sits inside ``RequestContext``: request id, body limit, metrics and the access log are
    the same for a poll answered here. ``routes`` are the routes of routers included without
    a prefix (their paths are what is served).
    """

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = [route for route in routes if isinstance(route, PollRoute)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            for route in self.routes:
                match = route.path_regex.match(scope["path"])
                if match is None:
                    continue
                services = scope["app"].state.services
                principal = services.keys.remembered(key_in(Headers(scope=scope)))
                if principal is None:
                    break
                params = match.groupdict()
                try:
                    response = await route.answer(services, principal, params)
                except SegueError:
                    break  # answered by the framework, in the surface's envelope
                scope.update(route=route, endpoint=route.endpoint, path_params=params)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
