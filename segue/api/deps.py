"""One-line dependencies the routes share."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from segue.keys import Principal
from segue.services import Services


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in the thread pool, which
    # would cost every request a thread hand-off for one attribute read.
    return request.app.state.services  # type: ignore[no-any-return]


# Declared as security schemes so that the OpenAPI document says how to authenticate;
# neither fails on its own (auto_error=False): the key store decides, with Segue's error.
_bearer = HTTPBearer(auto_error=False, description="The Ark surface's `Authorization: Bearer`.")
_subscription = APIKeyHeader(name="Ocp-Apim-Subscription-Key", auto_error=False,
                             description="The Pixazo gateway's key header.")


async def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    subscription_key: Annotated[str | None, Security(_subscription)],
) -> Principal:
    """Either surface's key header is accepted on both surfaces."""
    key = bearer.credentials.strip() if bearer else subscription_key
    keys = (await get_services(request)).keys
    # A key seen lately is answered here, without a trip through the thread pool.
    principal = keys.remembered(key)
    if principal is None:
        principal = await run_in_threadpool(keys.authenticate, key)
    return principal


async def body_hash(request: Request) -> str:
    return hashlib.sha256(await request.body()).hexdigest()


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
BodyHashDep = Annotated[str, Depends(body_hash)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
