"""Bearer-token authentication for the HTTP services, with a short cache in front of Postgres."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from tenure.storage.tokens import Producer, authenticate


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request is not allowed: HTTP status (401 or 403) and a message."""

    status: int
    message: str


class ProducerAuthenticator:
    """Resolve ``Authorization: Bearer`` headers to producers.

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
