"""What the OpenAPI document says about errors and bounds, in one place the routes reuse.

Every route declares the statuses it can answer with the envelope of its surface
(``errors(ARK_ERROR, 400, 404)``); ``install`` drops FastAPI's default 422, which
Segue never sends (validation errors are answered 400 in the surface's envelope,
see ``api/errors.py``). Bounds that ``requests.py`` checks itself (so that its
messages can name text commands) are declared with ``documented_range``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.routing import BaseRoute

from segue.api.deps import get_principal
from segue.api.errors import leaf_routes
from segue.domain import EXPIRES_AFTER_RANGE, SEED_MAX


class ArkErrorBody(BaseModel):
    code: str
    message: str
    param: str
    type: str


class ArkError(BaseModel):
    """The Ark envelope (also used by ``/files`` and the ops routes)."""

    error: ArkErrorBody


class PixazoError(BaseModel):
    """The Pixazo gateway envelope: the message and the Ark code, side by side."""

    error: str
    code: str


WHY = {
    400: "Invalid or missing parameter (`InvalidParameter…`, `MissingParameter`, "
         "`InvalidImageURL.…`, `OperationDenied.TaskStatus`).",
    401: "The API key is missing or invalid (`AuthenticationError`).",
    403: "The link's signature is missing, altered or expired (`AccessDenied`).",
    404: "Unknown task, model or file (`ResourceNotFound`, `InvalidEndpointOrModel.NotFound`).",
    413: "The request body is larger than the limit (`InvalidParameter.RequestTooLarge`).",
    429: "Create rate or queued-task quota exceeded (`RateLimitExceeded.EndpointRPMExceeded`, "
         "`QuotaExceeded`); `Retry-After` says when to try again.",
    500: "Unexpected failure, logged with the request id (`InternalServiceError`).",
    503: "The task store is not reachable (`ServerOverloaded`); `Retry-After` says when to "
         "try again.",
    507: "The server's storage is (nearly) full (`InsufficientStorage`): no task is accepted "
         "until space is freed.",
}
_REQUEST_ID = {"description": "The request id, also at the end of the error message.",
               "schema": {"type": "string"}, "required": True}
_RETRY_AFTER = {"description": "Seconds to wait before trying again.",
                "schema": {"type": "integer"}, "required": True}
_SHOULD_RETRY = {"description": "`false` on a create: retrying it could duplicate a task "
                                "(`true` on a 503 to a create with an `Idempotency-Key`).",
                 "schema": {"type": "string"}}

AUTH = (401, 500, 503)  # every route behind a key
CREATE = (400, 401, 404, 413, 429, 500, 503, 507)  # every create route, on either surface


def errors(envelope: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its envelope, meaning and headers."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        headers: dict[str, Any] = {"X-Request-Id": _REQUEST_ID}
        if status in (429, 503, 507):
            headers["Retry-After"] = _RETRY_AFTER
        if status == 429 or status >= 500:
            headers["x-should-retry"] = _SHOULD_RETRY
        out[status] = {"model": envelope, "description": WHY[status], "headers": headers}
    return out


def documented_range(low: int, high: int) -> dict[str, Any]:
    """``json_schema_extra`` for a field whose range is checked in ``requests.py``."""
    return {"minimum": low, "maximum": high}


SEED = documented_range(-1, SEED_MAX)
EXPIRES = documented_range(*EXPIRES_AFTER_RANGE)


def text_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description,
                  "content": {media_type: {"schema": {"type": "string"}}}}}


def _drop_unused(schema: dict[str, Any]) -> None:
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


# How a key is sent (``deps.get_principal`` reads both headers itself).
SECURITY_SCHEMES = {
    "HTTPBearer": {"type": "http", "scheme": "bearer",
                   "description": "The Ark surface's `Authorization: Bearer`."},
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "Ocp-Apim-Subscription-Key",
                     "description": "The Pixazo gateway's key header."},
}


def _needs_key(dependant: Dependant) -> bool:
    return any(d.call is get_principal or _needs_key(d) for d in dependant.dependencies)


def _declare_security(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    """The key schemes, required on every operation whose route depends on ``get_principal``."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    required: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    paths = schema.get("paths", {})
    for route in leaf_routes(routes):
        dependant = getattr(route, "dependant", None)  # API routes (FastAPI wraps them)
        if dependant is None or not _needs_key(dependant):
            continue
        for method in getattr(route, "methods", ()):
            operation = paths.get(getattr(route, "path_format", ""), {}).get(method.lower())
            if operation is not None:
                operation["security"] = required


def install(app: FastAPI) -> None:
    """Serve the document with its security schemes, without the 422s FastAPI adds and
    Segue never sends."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            _drop_unused(schema)
            _declare_security(schema, app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

