"""The Ark error envelope: ``{"error": {"code", "message", "param", "type"}}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from segue.errors import SegueError


def render(error: SegueError, request_id: str) -> JSONResponse:
    body = {"error": {
        "code": error.code,
        "message": f"{error.message} Request id: {request_id}",
        "param": error.param,
        "type": error.type,
    }}
    return JSONResponse(body, status_code=error.status)
