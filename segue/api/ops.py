"""Operations routes: health, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from segue.api.deps import ServicesDep
from segue.api.openapi import ArkError, errors, text_response
from segue.errors import ServiceUnavailable

router = APIRouter(tags=["Operations"])
# served on the API port unless SEGUE_METRICS_ADDR gives it an address of its own
metrics_router = APIRouter(tags=["Operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", responses=errors(ArkError, 503))
def readyz(services: ServicesDep) -> dict[str, str]:
    """The store answers, so the process can take traffic (readiness)."""
    try:
        with services.db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable(f"The task store is not reachable: {exc}") from exc
    return {"status": "ready"}


@metrics_router.get("/metrics", response_class=PlainTextResponse,
                    responses=text_response("text/plain", "Prometheus text exposition format."))
def metrics(services: ServicesDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(services.metrics.registry),
                             media_type=CONTENT_TYPE_LATEST)
