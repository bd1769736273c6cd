"""Producer bearer tokens, stored hashed.

A token reads ``tnr_<token_id>_<secret>``. Only SHA-256 of the secret is stored: the secret
is 256 random bits, so a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

_TOKEN = re.compile(r"^tnr_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


SCOPES = ("ingest", "read", "audiences:write")
"""What a token may do: send events (``ingest``), query projections (``read``) or create,
change and retire audiences (``audiences:write``, migration 0021)."""


@dataclass(frozen=True, slots=True)
class Producer:
    """Who a token belongs to and what it may do."""

    token_id: str
    producer: str
    revoked: bool
    scope: str = "ingest"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token as listed by the CLI (never the secret)."""

    token_id: str
    producer: str
    created_at: datetime
    revoked_at: datetime | None
    scope: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_token(conn: psycopg.Connection[Any], producer: str, scope: str = "ingest") -> str:
    """Create a token for ``producer``, store its hash and return the token (shown once)."""
    if not producer.strip():
        raise ValueError("producer name must not be empty")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(
            "INSERT INTO producer_tokens (token_id, producer, token_hash, scope)"
            " VALUES (%s, %s, %s, %s)",
            (token_id, producer, _digest(secret), scope),
        )
    return f"tnr_{token_id}_{secret}"


def authenticate(conn: psycopg.Connection[Any], token: str) -> Producer | None:
    """Return the token's producer (revoked or not), or ``None`` when the token is unknown."""
    match = _TOKEN.match(token)
    if not match:
        return None
    token_id, secret = match[1], match[2]
    row = conn.execute(
        "SELECT producer, token_hash, revoked_at IS NOT NULL, scope FROM producer_tokens"
        " WHERE token_id = %s",
        (token_id,),
    ).fetchone()
    if row is None:
        return None
    producer, stored, revoked, scope = row[0], row[1], row[2], row[3]
    if not hmac.compare_digest(bytes(stored), _digest(secret)):
        return None
    return Producer(
        token_id=token_id, producer=str(producer), revoked=bool(revoked), scope=str(scope)
    )


def revoke_token(conn: psycopg.Connection[Any], token_id: str) -> bool:
    """Revoke a token by id; return whether a live token was revoked."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE producer_tokens SET revoked_at = now()"
            " WHERE token_id = %s AND revoked_at IS NULL",
            (token_id,),
        )
        return cur.rowcount == 1


def list_tokens(conn: psycopg.Connection[Any]) -> list[TokenRecord]:
    """Every token, newest first, without secrets."""
    rows = conn.execute(
        "SELECT token_id, producer, created_at, revoked_at, scope FROM producer_tokens"
        " ORDER BY created_at DESC"
    ).fetchall()
    return [TokenRecord(r[0], r[1], r[2], r[3], r[4]) for r in rows]
