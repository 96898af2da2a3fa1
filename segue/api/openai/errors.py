"""The OpenAI error envelope: ``{"error": {"message", "type", "param", "code"}}``.

``code`` is the same code the Ark and Pixazo surfaces answer (``InvalidParameter``,
``ResourceNotFound``, ...); ``type`` is OpenAI's word for the HTTP status.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from segue.errors import SegueError

TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_type(status: int) -> str:
    """OpenAI's ``type`` for an HTTP status: any other 4xx is the client's request."""
    return TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")


def render(error: SegueError, request_id: str) -> JSONResponse:
    body = {"error": {
        "message": f"{error.message} Request id: {request_id}",
        "type": error_type(error.status),
        "param": error.param or None,
        "code": error.code,
    }}
    return JSONResponse(body, status_code=error.status)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class ErrorEnvelope(BaseModel):
    """What every error on ``/v1/videos`` answers."""

    error: ErrorDetail


def _declared(description: str) -> dict[str, object]:
    return {"model": ErrorEnvelope, "description": description}


# Declared on each route, so that the OpenAPI document says what errors look like here.
ERRORS: dict[int | str, dict[str, object]] = {
    400: _declared("A parameter is missing or not valid (`param` names it)."),
    401: _declared("The API key is missing or invalid."),
    404: _declared("No such video for this key, or no such model."),
    429: _declared("The key's create rate or queued-task quota is exhausted."),
    500: _declared("An unexpected error (logged with the request id)."),
}
