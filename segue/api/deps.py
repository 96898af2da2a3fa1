"""One-line dependencies the routes share."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from typing import Annotated, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from segue.keys import Principal
from segue.services import Services
from segue.tasks.db import SqlStore

P = ParamSpec("P")
T = TypeVar("T")


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in the thread pool, which
    # would cost every request a thread hand-off for one attribute read.
    return request.app.state.services  # type: ignore[no-any-return]


async def get_principal(request: Request) -> Principal:
    """The caller, by either surface's key header (accepted on both surfaces).

    ``Authorization: Bearer <key>`` (Ark) or ``Ocp-Apim-Subscription-Key: <key>`` (Pixazo);
    the key store decides, with Segue's error. The headers are read here rather than by
    FastAPI's security classes, whose two extra dependencies cost every poll more than the
    key check; ``openapi.py`` declares the two schemes on every route that depends on this.
    A request with a body had its key checked before the body was read (``api/guard``),
    which left the caller in the request's state.
    """
    checked = request.scope.get("state", {}).get("principal")
    if checked is not None:
        return checked  # type: ignore[no-any-return]
    key = key_in(request.headers)
    keys = (await get_services(request)).keys
    # A key seen lately is answered here, without a trip through the thread pool.
    principal = keys.remembered(key)
    if principal is None:
        principal = await read(keys, keys.authenticate, key)
    return principal


def key_in(headers: Headers) -> str | None:
    """The key a request carries: ``Authorization: Bearer`` first, then Pixazo's header."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("ocp-apim-subscription-key")


async def read(store: SqlStore, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A short read of ``store`` from async code: made here where that is cheaper than a
    thread hand-off (``SqlStore.reads_inline``: SQLite), else in the thread pool.

    The poll routes are ``async`` for this: a plain ``def`` route costs every poll two
    hand-offs between the event loop and a thread, more than the read itself.
    """
    if store.reads_inline:
        return call(*args, **kwargs)
    return await run_in_threadpool(call, *args, **kwargs)


async def get_create_slots(request: Request) -> anyio.CapacityLimiter:
    return request.app.state.create_slots  # type: ignore[no-any-return]


async def run_create(slots: anyio.CapacityLimiter, call: Callable[P, T], *args: P.args,
                     **kwargs: P.kwargs) -> T:
    """A create's blocking work (decoding its images, storing its task) in the thread pool,
    at most ``SEGUE_CREATE_CONCURRENCY`` at once, the others waiting in arrival order.

    Why: a create is CPU work (a data URL's images are decoded) and then a turn at the one
    write lock. Sixteen at once in the 40 threads of the pool took turns at random, so some
    waited twice as long as the median (0.9 MB data-URL creates at 16 clients on 2 cores:
    p99 580-600 ms against p50 315 ms); admitted as many at a time as there are cores, in
    order, p99 was 380-410 ms at the same throughput, and no more images are decoded at once
    than there are cores to decode them.
    """
    return await anyio.to_thread.run_sync(partial(call, *args, **kwargs), limiter=slots)


async def body_hash(request: Request) -> str:
    return hashlib.sha256(await request.body()).hexdigest()


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
BodyHashDep = Annotated[str, Depends(body_hash)]
CreateSlots = Annotated[anyio.CapacityLimiter, Depends(get_create_slots)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
