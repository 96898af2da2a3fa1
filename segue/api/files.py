"""``GET /files/{key}``: serve stored videos and last frames behind signed, expiring links.

Only the local store is served here; an S3 store hands out presigned links to the bucket,
so with it every path answers 404. Range requests (players seeking in an MP4) and HEAD are
handled by Starlette's ``FileResponse``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from segue.api.openapi import ArkError, errors
from segue.storage.local import CONTENT_TYPES, LocalStore, content_type_for

router = APIRouter(tags=["Files"])
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PLAIN = {"text/plain": {"schema": {"type": "string"}}}
RESPONSES = {
    200: {"description": "The file.", "content": {t: _BINARY for t in CONTENT_TYPES.values()}},
    206: {"description": "The part asked for with `Range`.",
          "content": {t: _BINARY for t in CONTENT_TYPES.values()}},
    **errors(ArkError, 403, 404),
    400: {"description": "A malformed `Range` header.", "content": _PLAIN},
    416: {"description": "A `Range` outside the file.", "content": _PLAIN},
}


def _error(status: int, code: str, type_: str, message: str) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "param": "", "type": type_}}
    return JSONResponse(body, status_code=status)


def _denied(message: str) -> JSONResponse:
    return _error(403, "AccessDenied", "Forbidden", message)


@router.head("/files/{key:path}", responses=RESPONSES, response_class=FileResponse,
             operation_id="head_file")
@router.get("/files/{key:path}", responses=RESPONSES, response_class=FileResponse,
            operation_id="get_file")
def get_file(request: Request, key: str, expires: str = "", signature: str = "") -> Response:
    """Check the link's signature and expiry, then stream the file (with Range support)."""
    store = request.app.state.services.objects
    if not isinstance(store, LocalStore):
        return _error(404, "ResourceNotFound", "NotFound", "This server keeps no local files.")
    if not (expires.isascii() and expires.isdigit()) or not signature:
        return _denied("The link is not signed: it needs `expires` and `signature` parameters.")
    if not store.signature_ok(key, int(expires), signature):
        return _denied("The link's signature is not valid (the link was altered or truncated).")
    now = time.time()
    if now > int(expires):
        when = datetime.fromtimestamp(int(expires), UTC).isoformat()
        return _denied(f"The link expired at {when}; fetch the task again for a fresh link.")
    try:
        path = store.path(key)
    except ValueError:
        path = None
    if path is None or not path.is_file():
        return _error(404, "ResourceNotFound", "NotFound", f"The file {key} is not found.")
    max_age = max(0, int(expires) - int(now))
    return FileResponse(
        path,
        media_type=content_type_for(key),
        headers={"Cache-Control": f"private, max-age={max_age}"},
    )
