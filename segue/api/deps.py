"""One-line dependencies the routes share."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from segue.keys import Principal
from segue.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def get_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    subscription_key: Annotated[str | None, Header(alias="Ocp-Apim-Subscription-Key")] = None,
) -> Principal:
    """Either surface's key header is accepted on both surfaces."""
    key = subscription_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    services = get_services(request)
    return await run_in_threadpool(services.keys.authenticate, key)


async def body_hash(request: Request) -> str:
    return hashlib.sha256(await request.body()).hexdigest()


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
BodyHashDep = Annotated[str, Depends(body_hash)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
