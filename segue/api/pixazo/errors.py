"""The Pixazo gateway envelope: ``{"error": "<message>", "code": "<Ark code>"}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from segue.errors import SegueError


def render(error: SegueError, request_id: str) -> JSONResponse:
    body = {"error": f"{error.message} Request id: {request_id}", "code": error.code}
    return JSONResponse(body, status_code=error.status)
