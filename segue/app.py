"""The ASGI application: both API surfaces, signed files, ops routes and the playground."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from segue import logs
from segue.api import errors, files, openapi, ops
from segue.api.ark import events as ark_events
from segue.api.ark import routes as ark
from segue.api.pixazo import routes as pixazo
from segue.errors import PayloadTooLarge
from segue.services import Services
from segue.settings import Settings

log = logging.getLogger("segue.http")
WEB = Path(__file__).parent / "web"


def _request_id() -> str:
    # Ark's ids are a timestamp followed by random hex; ours keep that look.
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(8)


class RequestContext(BaseHTTPMiddleware):
    """Request id, body-size limit, access log and request metrics."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        rid = _request_id()
        request.state.request_id = rid
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        response: Response
        try:
            limit = request.app.state.services.settings.max_body_bytes
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > limit:
                response = errors.render_error(request, PayloadTooLarge(
                    f"The request body is {int(length)} bytes; the limit is {limit}."))
            else:
                response = await call_next(request)
            response.headers["X-Request-Id"] = rid
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics = request.app.state.services.metrics
            metrics.requests.labels(request.method, path, response.status_code).inc()
            metrics.latency.labels(path).observe(time.perf_counter() - started)
            log.info("request", extra={"method": request.method, "path": request.url.path,
                                       "status": response.status_code,
                                       "ms": round((time.perf_counter() - started) * 1000, 1)})
            return response
        finally:
            logs.request_id.reset(token)


def create_app(settings: Settings | None = None, services: Services | None = None,
               workers: int = 0) -> FastAPI:
    """Build the app; ``workers`` in-process workers start with it (``segue serve``)."""
    settings = settings or (services.settings if services else Settings())
    services = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from segue.worker import Background

        background = Background(services, workers=workers)
        background.start()
        try:
            yield
        finally:
            background.stop()

    app = FastAPI(title="Segue", version="0.1.0", lifespan=lifespan,
                  description="First-frame/last-frame to video: the Seedance (Ark) task API and "
                              "the Pixazo gateway routes, self-hosted.")
    app.state.services = services
    app.add_middleware(RequestContext)
    errors.install(app)
    openapi.install(app)
    app.include_router(ark.router)
    app.include_router(ark_events.router)
    app.include_router(pixazo.router)
    app.include_router(files.router)
    app.include_router(ops.router)
    if (WEB / "index.html").exists():
        app.mount("/", StaticFiles(directory=WEB, html=True), name="web")
    return app
