"""Opaque, deterministic identifiers: the same seed and person key give the same ids."""

from __future__ import annotations

import uuid
from typing import Final

PERSON_PREFIX: Final = "sim-"
ALIAS_PREFIX: Final = "web-"
"""A second identifier (a web-shop login) sorts after every person id (``"sim-" < "web-"``):
a human's canonical id is the smallest id of its identity component, so the id the
simulation created a person with stays the id of its ``persons`` row."""


class Identifiers:
    """Names people, devices, orders, aliases and events of one simulation.

    Every id is derived with UUIDv5 from the seed, the source prefix and a stable key (such
    as ``p17`` for the 17th arrival, ``p17.r0`` for their first referee), so ids reveal
    nothing of the persona and a rerun with the same seed produces the same ids.
    """

    def __init__(self, seed: int, source_prefix: str) -> None:
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"{source_prefix}/seed/{seed}")

    def _token(self, kind: str, key: str) -> str:
        return uuid.uuid5(self._namespace, f"{kind}/{key}").hex[:16]

    def person(self, key: str) -> str:
        """The person id of the person with ``key``."""
        return f"{PERSON_PREFIX}{self._token('person', key)}"

    def device(self, key: str) -> str:
        """The id of the device ``key`` (a person key plus a suffix)."""
        return f"dev-{self._token('device', key)}"

    def order(self, key: str) -> str:
        """The id of the order ``key`` (a person key plus a suffix)."""
        return f"ord-{self._token('order', key)}"

    def alias(self, key: str) -> str:
        """A second identifier of the person ``key`` (a web-shop login; sorts after
        :meth:`person`, so it never becomes the canonical id)."""
        return f"{ALIAS_PREFIX}{self._token('alias', key)}"

    def event(self, key: str, label: str) -> uuid.UUID:
        """The CloudEvents ``id`` (as a UUID) of the event ``label`` in the life ``key``."""
        return uuid.uuid5(self._namespace, f"event/{key}/{label}")
