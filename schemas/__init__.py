"""The Tenure event contract as data: JSON Schemas (draft 2020-12) and the AsyncAPI document.

The files in this package are the single source of the contract's rules; the validator in
:mod:`tenure.contract.validation` compiles them, it does not restate them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_DIR: Path = Path(__file__).resolve().parent
"""The folder holding ``asyncapi.yaml`` and ``events/<version>/*.json``."""


def event_schema_path(event_type: str, version: str = "v1") -> Path:
    """Return the path of the JSON Schema of ``event_type`` in contract ``version``.

    ``event_type`` may also be ``"envelope"`` or ``"common"`` for the shared schemas. The
    path is returned whether or not the file exists; callers that need it check.
    """
    if not event_type or "/" in event_type or "\\" in event_type or event_type.startswith("."):
        raise ValueError(f"not an event type: {event_type!r}")
    return SCHEMA_DIR / "events" / version / f"{event_type}.json"


def _resolve(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
        node = node[part]
    return node


def bundled_event_schema(version: str = "v1") -> dict[str, Any]:
    """One self-contained JSON Schema for any event of ``version`` (for OpenAPI documents).

    ``anyOf`` one schema per event type: the envelope with ``type`` fixed and ``data``
    replaced by that type's ``data`` schema, every ``$ref`` inlined, so that a tool that reads
    one document (schemathesis, an OpenAPI viewer) sees the whole contract. The files stay the
    source; this only rearranges them. Rules checked in code (``tenure.contract``) are not in it.
    """
    folder = SCHEMA_DIR / "events" / version
    documents = {
        path.name: json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")
    }

    def inline(node: Any, name: str) -> Any:
        if isinstance(node, list):
            return [inline(item, name) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: inline(value, name) for key, value in node.items() if key != "$ref"}
        if "$ref" in node:
            target, _, pointer = str(node["$ref"]).partition("#")
            target = target or name
            resolved = inline(_resolve(documents[target], pointer), target)
            out = {**resolved, **out}
        return out

    envelope = documents["envelope.json"]
    variants = []
    for event_type in envelope["properties"]["type"]["enum"]:
        data = inline(documents[f"{event_type}.json"]["$defs"]["data"], f"{event_type}.json")
        variant = {k: v for k, v in envelope.items() if k not in ("$schema", "$id", "title")}
        variant["title"] = event_type
        variant["description"] = documents[f"{event_type}.json"]["description"]
        variant["properties"] = {
            **envelope["properties"],
            "type": {"const": event_type},
            "data": data,
        }
        variants.append(variant)
    return {"description": envelope["description"], "anyOf": variants}
