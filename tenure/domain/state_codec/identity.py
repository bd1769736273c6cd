"""The identity document: sorted ``[smaller, larger]`` links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tenure.domain.identity import IdentityGraph, Link
from tenure.domain.state_codec.layout import (
    Field,
    Json,
    Layout,
    Shape,
    dumps,
    loads,
    read_list,
    read_str,
)


def _read_links(value: Json, where: str) -> frozenset[Link]:
    item = f"{where}[]"
    links = set()
    for link in read_list(value, where):
        first, second = (read_str(node, item) for node in read_list(link, item, 2))
        links.add((first, second) if first <= second else (second, first))
    return frozenset(links)


LINKS: Final[Shape[frozenset[Link]]] = Shape(
    lambda links: sorted([first, second] for first, second in links), _read_links
)
"""Links stored smaller id first, sorted."""

IDENTITY: Final = Layout(IdentityGraph, "identity", (Field("links", LINKS),), kind="identity")
"""The identity document (schema v1)."""


def identity_graph_to_json(graph: IdentityGraph) -> dict[str, Any]:
    """The schema-v1 JSON document of an identity graph: sorted ``[smaller, larger]`` links."""
    return IDENTITY.to_json(graph)


def identity_graph_from_json(data: Mapping[str, Any]) -> IdentityGraph:
    """The identity graph of a schema-v1 document (links are stored smaller id first).

    Raises ``ValueError`` for another schema version, another kind of document or a
    malformed one.
    """
    return IDENTITY.from_json(data)


def encode_identity_graph(graph: IdentityGraph) -> bytes:
    """Canonical UTF-8 JSON bytes of an identity graph."""
    return dumps(IDENTITY.to_json(graph))


def decode_identity_graph(data: bytes | bytearray | memoryview | str) -> IdentityGraph:
    """The identity graph encoded by :func:`encode_identity_graph` (``ValueError`` if not)."""
    return IDENTITY.from_json(loads(data, "identity"))
