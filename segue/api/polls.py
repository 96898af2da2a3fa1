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


class PollRoute(APIRoute):
    """A GET route whose endpoint is called directly (by its handler and by the shortcut).

    FastAPI's dependency solver and response serializer were 40 % of a poll in the app
    (``benchmarks/README.md``).

    The endpoint may take only path parameters (strings), ``services`` and ``principal``
    (``ServicesDep``, ``PrincipalDep``), which is checked when the route is made. It is
    documented from its signature like any other route, and its errors go to the same
    handlers. Declared with ``@poll(router, path, ...)``.
    """

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

        async def handle(request: Request) -> Response:
            principal = await get_principal(request)  # first, as FastAPI does: 401 before 404
            return await self.answer(request.app.state.services, principal,
                                     request.path_params)

        return handle

    async def answer(self, services: Services, principal: Principal,
                     params: dict[str, Any]) -> Response:
        result = await self.endpoint(**params, **{self._services_name: services,
                                                  self._principal_name: principal})
        return result if isinstance(result, Response) else TaskJSON(result)


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
