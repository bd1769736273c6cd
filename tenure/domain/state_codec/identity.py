"""The identity document: sorted ``[smaller, larger]`` links."""

from __future__ import annotations

from typing import Final

from tenure.domain.identity import IdentityGraph, Link
from tenure.domain.state_codec.json_values import (
    Json,
    read_list,
    read_str,
)
from tenure.domain.state_codec.layout import Field, Layout
from tenure.domain.state_codec.shapes import Shape, reading


def _read_links(value: Json, where: str) -> frozenset[Link]:
    item = f"{where}[]"
    links = set()
    for link in read_list(value, where):
        first, second = (read_str(node, item) for node in read_list(link, item, 2))
        links.add((first, second) if first <= second else (second, first))
    return frozenset(links)


LINKS: Final[Shape[frozenset[Link]]] = Shape(
    lambda links, names: f"sorted([[a, b] for a, b in {links}])", reading(_read_links)
)
"""Links stored smaller id first, sorted."""

IDENTITY: Final = Layout(IdentityGraph, "identity", (Field("links", LINKS),), kind="identity")
"""The identity document (schema v1)."""


identity_graph_to_json: Final = IDENTITY.to_json
"""The schema-v1 JSON document of an identity graph: sorted ``[smaller, larger]`` links."""
identity_graph_from_json: Final = IDENTITY.from_json
"""The identity graph of a schema-v1 document (``ValueError`` if not one)."""
encode_identity_graph: Final = IDENTITY.encode
"""Canonical UTF-8 JSON bytes of an identity graph."""
decode_identity_graph: Final = IDENTITY.decode
"""The identity graph encoded by :func:`encode_identity_graph` (``ValueError`` if not)."""
