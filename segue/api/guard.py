"""Request bodies: the key checked before any of a body is read, its bytes counted as they come.

Why a middleware: FastAPI reads a route's whole body (into memory) before it solves the
route's dependencies, so a key checked by ``get_principal`` alone was checked only after a
body of any length had been taken in, and ``Content-Length``, the only size a client
states, is absent from a chunked body. Here, before the application sees a request that
carries a body:

* a ``Content-Length`` over ``SEGUE_MAX_BODY_BYTES`` is answered 413 at once;
* on a route that needs a key, the key is checked (``KeyStore.remembered``, else one
  lookup) and a missing or wrong one is answered 401 without reading the body; the caller
  found is left in the request's state for ``get_principal``;
* every route reads its body through a ``receive`` that counts the bytes as they arrive and
  raises ``BodyTooLarge`` once they pass the limit, so no more than the limit (plus one
  chunk) is ever held.

A response that starts before the whole body has arrived says ``Connection: close``: the
server then closes the connection after it instead of reading the rest of the body to
reach the next request.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segue.api import errors
from segue.api.deps import get_principal, key_in, read
from segue.errors import PayloadTooLarge, SegueError
from segue.keys import Principal
from segue.services import Services


class BodyTooLarge(HTTPException):
    """Raised out of ``receive`` when a body passes the limit.

    An ``HTTPException`` because FastAPI lets one through while it reads a body (any other
    exception there becomes a 400); ``api/errors`` renders it as ``PayloadTooLarge``.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=too_large(limit))


def too_large(limit: int, length: int | None = None) -> str:
    size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return f"The request body is {size}; the limit is {limit} (SEGUE_MAX_BODY_BYTES)."


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0") not in ("", "0")


def _needs_key(route: BaseRoute) -> bool:
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dependency = stack.pop()
        if dependency.call is get_principal:
            return True
        stack.extend(dependency.dependencies)
    return False


class BodyGuard:
    """The middleware described above; sits inside ``RequestContext`` (request id, log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._keyed: list[BaseRoute] | None = None  # the routes that depend on a key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websocket scopes carry no headers
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        limit = services.settings.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _refuse(scope, send, PayloadTooLarge(too_large(limit, int(length))))
            return
        if self._route_needs_key(scope):
            try:
                principal = await _authenticate(services, headers)
            except SegueError as exc:  # a wrong key (401), or the store unavailable (503)
                await _refuse(scope, send, exc)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self._counted(scope, receive, send, limit)

    def _route_needs_key(self, scope: Scope) -> bool:
        if self._keyed is None:
            self._keyed = [r for r in errors.leaf_routes(scope["app"].router.routes)
                           if _needs_key(r)]
        return any(route.matches(scope)[0] is Match.FULL for route in self._keyed)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, counting_receive, closing_send)


async def _authenticate(services: Services, headers: Headers) -> Principal:
    key = key_in(headers)
    keys = services.keys
    principal = keys.remembered(key)
    if principal is None:
        principal = await read(keys, keys.authenticate, key)
    return principal


async def _refuse(scope: Scope, send: Send, error: SegueError) -> None:
    """Answer ``error`` in the surface's envelope without reading the body, and close."""

    async def closing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["connection"] = "close"
        await send(message)

    async def no_body() -> Message:  # the response never reads it
        return {"type": "http.request", "body": b"", "more_body": False}

    response = errors.render_error(Request(scope), error)
    await response(scope, no_body, closing_send)
