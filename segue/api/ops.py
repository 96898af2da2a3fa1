"""Operations routes: health, readiness, metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from segue.api.deps import ServicesDep
from segue.api.openapi import ArkError, errors, text_response
from segue.errors import ServiceUnavailable
from segue.tasks.db import READ_ONLY, STORE_RETRY_AFTER

log = logging.getLogger("segue.api")

router = APIRouter(tags=["Operations"])
# served on the API port unless SEGUE_METRICS_ADDR gives it an address of its own
metrics_router = APIRouter(tags=["Operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", responses=errors(ArkError, 503))
def readyz(services: ServicesDep) -> dict[str, str]:
    """The store answers, so the process can take traffic (readiness).

    The check only reads: on SQLite it takes no write lock, so another process writing does
    not make the store look unreachable. Why it failed is logged, not told: the caller is
    not authenticated, and the reason names the database's address.
    """
    try:
        with services.db.connect() as conn:
            conn.execution_options(**{READ_ONLY: True}).execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("not ready: the task store is not reachable", extra={"reason": str(exc)})
        raise ServiceUnavailable("The task store is not reachable.",
                                 retry_after=STORE_RETRY_AFTER) from exc
    return {"status": "ready"}


@metrics_router.get("/metrics", response_class=PlainTextResponse,
                    responses=text_response("text/plain", "Prometheus text exposition format."))
def metrics(services: ServicesDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(services.metrics.registry),
                             media_type=CONTENT_TYPE_LATEST)
