"""Tokens of person ids: ``~p:`` + base32 of HMAC-SHA256(installation secret, id)[:20].

A token is deterministic (the same id always gives the same token, so it still keys a
partition and joins facts), reveals nothing without the secret, and is 35 characters long
(within the contract's 200-character ids). See docs/design/erasure.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from tenure.domain.pseudonymity import PERSON_FIELDS, TOKEN_PREFIX, is_token

TOKEN_BYTES = 20
"""Bytes of the keyed hash kept in a token (160 bits: collisions are out of reach)."""

_CACHE_LIMIT = 100_000


class Pseudonymiser:
    """Turns person ids into tokens with one installation secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym secret must have at least 16 bytes")
        self._secret = secret
        self._known: dict[str, str] = {}

    def token(self, person_id: str) -> str:
        """The token of ``person_id`` (a token is returned as it is)."""
        known = self._known.get(person_id)
        if known is not None:
            return known
        if is_token(person_id):
            return person_id
        digest = hmac.digest(self._secret, person_id.encode("utf-8"), hashlib.sha256)
        token = TOKEN_PREFIX + base64.b32encode(digest[:TOKEN_BYTES]).decode("ascii").lower()
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known[person_id] = token
        return token

    def tokenise_envelope(
        self, envelope: Mapping[str, Any], registry: dict[str, str]
    ) -> dict[str, Any]:
        """A copy of a CloudEvents envelope with every person-id field of ``data`` (and a
        ``subject`` equal to one of them) replaced by its token; each ``token -> id`` pair
        is added to ``registry`` (the vault rows to write before publishing)."""
        data = envelope.get("data")
        if not isinstance(data, Mapping):
            return dict(envelope)
        new_data = dict(data)
        renamed: dict[str, str] = {}
        for name in PERSON_FIELDS:
            value = new_data.get(name)
            if isinstance(value, str) and not is_token(value):
                token = self.token(value)
                new_data[name] = token
                renamed[value] = token
                registry[token] = value
        out = dict(envelope)
        out["data"] = new_data
        subject = out.get("subject")
        if isinstance(subject, str) and subject in renamed:
            out["subject"] = renamed[subject]
        return out
