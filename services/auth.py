"""Bearer-token authentication for the HTTP services, with a short cache in front of Postgres.

A token has one scope: ``ingest`` (``POST /v1/events``) or ``read`` (the query API). The query
routes declare the scope they need with one dependency, :func:`require_scope`; a refused
request is answered 401/403 with the reason by :func:`answer_refusals`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from psycopg_pool import ConnectionPool

from services.openapi import BEARER
from tenure.errors import TenureError
from tenure.storage.tokens import Producer, authenticate


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request is not allowed: HTTP status (401 or 403) and a message."""

    status: int
    message: str


class TokenAuthenticator:
    """Resolve ``Authorization: Bearer`` headers to the token's holder, for one scope.

    Lookups are cached for ``ttl_s`` seconds, so a revoked token stops working within that
    time (documented in the README).
    """

    def __init__(self, pool: ConnectionPool, scope: str, ttl_s: float = 5.0) -> None:
        self.pool = pool
        self.scope = scope
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Producer | None]] = {}
        self._lock = threading.Lock()

    def _lookup(self, token: str) -> Producer | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        with self.pool.connection() as conn:
            producer = authenticate(conn, token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now, producer)
        return producer

    def check(self, authorization: str | None) -> Producer | AuthFailure:
        """Return the producer behind the header, or why the request is refused."""
        if not authorization:
            return AuthFailure(401, "missing Authorization header (expected 'Bearer <token>')")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return AuthFailure(401, "Authorization header must be 'Bearer <token>'")
        producer = self._lookup(token.strip())
        if producer is None:
            return AuthFailure(401, "unknown or malformed producer token")
        if producer.revoked:
            return AuthFailure(403, f"token {producer.token_id} was revoked")
        if producer.scope != self.scope:
            return AuthFailure(
                403, f"token {producer.token_id} has scope {producer.scope!r}, not {self.scope!r}"
            )
        return producer


class Refused(TenureError):
    """A request refused for its token (raised by the :func:`require_scope` dependency)."""

    def __init__(self, failure: AuthFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def require_scope(pool: ConnectionPool, scope: str) -> Any:
    """The dependency of a route that needs a token of ``scope``: put it in the route's (or
    router's) ``dependencies``. It declares the bearer scheme in the OpenAPI document and
    raises :class:`Refused` for a missing, unknown, revoked or wrong-scope token."""
    auth = TokenAuthenticator(pool, scope=scope)

    async def token_holder(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
    ) -> Producer:
        checked = await anyio.to_thread.run_sync(auth.check, request.headers.get("authorization"))
        if isinstance(checked, AuthFailure):
            raise Refused(checked)
        return checked

    return Security(token_holder)


def answer_refusals(app: FastAPI) -> None:
    """Answer :class:`Refused` with its status and ``{"error": reason}``."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        return JSONResponse({"error": exc.failure.message}, status_code=exc.failure.status)

    app.add_exception_handler(Refused, refused)
