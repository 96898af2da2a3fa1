"""Turn every exception into the envelope of the surface that was called.

Foreign exceptions are translated here, at the edge: FastAPI's validation
errors become ``InvalidParameter``/``MissingParameter``; anything unexpected is
logged with the request id and answered 500 ``InternalServiceError`` without a
stack trace (by ``unexpected``, which the request-context middleware calls).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount

from segue.api.ark import errors as ark_errors
from segue.api.openai import errors as openai_errors
from segue.api.pixazo import errors as pixazo_errors
from segue.errors import (
    AuthenticationError,
    BadRequest,
    InvalidParameter,
    MethodNotAllowed,
    MissingParameter,
    NotFound,
    PayloadTooLarge,
    SegueError,
)

log = logging.getLogger("segue.api")
PIXAZO_PREFIXES = ("/byteplus/", "/bytedance-polling/")
METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")
OPENAI_PREFIX = "/v1/"
CREATE_PATHS = ("/api/v3/contents/generations/tasks", "/byteplus/")


def render_error(request: Request, error: SegueError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    path = request.url.path
    surface = (pixazo_errors if path.startswith(PIXAZO_PREFIXES)
               else openai_errors if path.startswith(OPENAI_PREFIX) else ark_errors)
    response = surface.render(error, request_id)
    response.headers["X-Request-Id"] = request_id
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allow)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if request.method == "POST" and (error.status == 429 or error.status >= 500):
        # The official SDK retries 429/5xx; a retried create would duplicate a task, unless
        # the store was unavailable and the create names an Idempotency-Key: a retry of one
        # that did commit then answers that task.
        retry = error.status == 503 and "idempotency-key" in request.headers
        response.headers["x-should-retry"] = "true" if retry else "false"
    return response


def _from_validation(exc: RequestValidationError) -> SegueError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "header")]
    param = ".".join(loc) or "body"
    kind = first.get("type", "")
    if kind == "json_invalid":  # its location is a character offset, not a parameter
        return BadRequest("The request body is not valid JSON.", param="body")
    # JSON null means absent (docs/api.md): a null where a value is required is told as
    # that value missing, not as a value of the wrong type
    if kind == "missing" or ("input" in first and first["input"] is None and param != "body"):
        return MissingParameter(param)
    if kind in ("model_attributes_type", "dict_type") and param == "body":
        return BadRequest("The request body is not a JSON object.", param="body")
    return InvalidParameter(param, first.get("msg", "invalid value") + ".")


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The API's routes one by one, out of the routers FastAPI nests them in (mounts aside)."""
    for route in routes:
        if isinstance(route, Mount):
            continue
        children = getattr(route, "effective_candidates", None)
        if callable(children):
            yield from leaf_routes(children())
        else:
            yield route


def _allowed_methods(request: Request) -> list[str]:
    """The methods the API routes answer on this request's path; none when no route has it.

    The playground is mounted at ``/`` and answers every path the API lacks, so its 404s and
    405s are sorted out here. Each method is tried against the routes of the template that owns
    the path (mounts aside).
    """
    routes = list(leaf_routes(request.app.router.routes))
    # The path belongs to the first route whose template matches it (``/v1/videos/models``,
    # not ``/v1/videos/{id}``), as the document lists it; only that template's methods count.
    owner = next((r for r in routes if r.matches(request.scope)[0] is not Match.NONE), None)
    if owner is None:
        return []
    routes = [r for r in routes if getattr(r, "path", None) == getattr(owner, "path", None)]
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def _from_http(request: Request, exc: HTTPException) -> SegueError:
    if exc.status_code in (404, 405):
        allowed = _allowed_methods(request)
        if allowed and request.method not in allowed:
            return MethodNotAllowed(request.method, allowed)
        return NotFound("The requested route does not exist.", code="NotFound")
    if exc.status_code == 401:
        return AuthenticationError()
    if exc.status_code == 413:  # api/guard's BodyTooLarge says by how much
        return PayloadTooLarge(str(exc.detail) if exc.detail else
                               "The request body is larger than the limit.")
    return BadRequest(str(exc.detail))


def install(app: FastAPI) -> None:
    @app.exception_handler(SegueError)
    async def _segue(request: Request, exc: SegueError) -> JSONResponse:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render_error(request, _from_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return render_error(request, _from_http(request, exc))


def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """An exception nothing above knew: logged once with its traceback, answered 500.

    ``app.RequestContext`` calls this, so the request's id, log line and metrics hold.
    """
    log.error("unexpected error", exc_info=exc, extra={"path": request.url.path})
    return render_error(request, SegueError("The service encountered an unexpected error."))
