"""The ASGI application: both API surfaces, signed files, ops routes and the playground."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segue import logs
from segue.api import docs, errors, files, openapi, ops
from segue.api.ark import events as ark_events
from segue.api.ark import routes as ark
from segue.api.guard import BodyGuard
from segue.api.openai import routes as openai_videos
from segue.api.pixazo import routes as pixazo
from segue.api.polls import PollShortcut
from segue.services import Services
from segue.settings import Settings

WEB = Path(__file__).parent / "web"


@functools.lru_cache(maxsize=1)
def _stamp(second: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second))


def _request_id() -> str:
    # Ark's ids are a timestamp followed by random hex; ours keep that look. An id is not a
    # secret, only unique, so its 64 bits come from ``random`` rather than the OS.
    return _stamp(int(time.time())) + f"{random.getrandbits(64):016x}"


class RequestContext:
    """Request id, access log and request metrics.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs every request in
    an extra task with its body relayed through a memory stream, which cost polls a
    large share of their time under load.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        services = scope["app"].state.services
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
                MutableHeaders(scope=message).setdefault("X-Request-Id", rid)
                _record(scope, services, message["status"], started)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered here, inside the request's context, rather than by Starlette's
            # outermost handler: that one runs after the request id is gone, skips the
            # request log and metrics, re-raises (so the server logs it a second time) and
            # leaves the connection to be dropped without ``Connection: close``.
            if responded:  # a stream broken midway: nothing can be answered any more
                raise
            response = errors.unexpected(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            logs.request_id.reset(token)


def _record(scope: Scope, services: Services, status: int, started: float) -> None:
    """Count and log a request once its status is known (before a stream's body)."""
    path = getattr(scope.get("route"), "path", "unmatched")
    elapsed = time.perf_counter() - started
    services.metrics.request_done(scope["method"], path, status, elapsed)
    logs.request_line(scope["method"], scope["path"], status, round(elapsed * 1000, 1))


def create_app(settings: Settings | None = None, services: Services | None = None,
               workers: int = 0) -> FastAPI:
    """Build the app; ``workers`` in-process workers start with it (``segue serve``)."""
    settings = settings or (services.settings if services else Settings())
    services = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from segue.worker import Background

        background = app.state.background = Background(services, workers=workers)
        background.start()
        try:
            yield
        finally:
            background.stop()

    # FastAPI's native telemetry asks on every request whether OpenTelemetry providers are
    # configured (three environment look-ups, a tenth of a poll's time in the app); Segue
    # has its own metrics and logs, so that is left to SEGUE_OPENTELEMETRY.
    telemetry = settings.opentelemetry
    app = FastAPI(title="Segue", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # api/docs serves them offline
                  telemetry={"tracing": telemetry, "metrics": telemetry, "logs": telemetry},
                  description="First-frame/last-frame to video: the Seedance (Ark) task API, "
                              "the Pixazo gateway routes and an OpenAI-style /v1/videos, "
                              "self-hosted.")
    app.state.services = services
    app.state.create_slots = anyio.CapacityLimiter(settings.create_concurrency)
    app.add_middleware(PollShortcut, routes=[*ark.router.routes, *openai_videos.router.routes])
    app.add_middleware(BodyGuard)  # keys and body sizes checked before a body is read
    app.add_middleware(RequestContext)  # added last, runs first: polls answered inside it
    errors.install(app)
    openapi.install(app)
    docs.install(app)
    app.include_router(ark.router)
    app.include_router(ark_events.router)
    app.include_router(pixazo.router)
    app.include_router(openai_videos.router)
    app.include_router(files.router)
    app.include_router(ops.router)
    if not settings.metrics_addr:
        app.include_router(ops.metrics_router)
    if (WEB / "index.html").exists():
        app.mount("/", StaticFiles(directory=WEB, html=True), name="web")
    return app


class Server(uvicorn.Server):
    """uvicorn's server, whose in-process workers stop claiming at the signal to stop.

    uvicorn runs the app's shutdown (which stops the workers) only once its open
    connections have closed, up to its graceful timeout: an open event stream would
    otherwise let the workers take new tasks for that long after the signal.
    """

    def handle_exit(self, sig: int, frame: object) -> None:
        state = getattr(self.config.app, "state", None)
        background = getattr(state, "background", None)
        if background is not None:
            background.stop_claiming()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]


def server_config(app: FastAPI, host: str, port: int, **options: object) -> uvicorn.Config:
    """How every Segue server is run.

    The h11 parser, not httptools: httptools drops the body of a request that offers an h2c
    upgrade (Java's HttpClient does by default, and ``curl --http2``), while h11 declines the
    upgrade and reads the request as plain HTTP/1.1.
    """
    return uvicorn.Config(app, host=host, port=port, http="h11", log_config=None,
                          **options)  # type: ignore[arg-type]
