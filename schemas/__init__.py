"""The Tenure event contract as data: JSON Schemas (draft 2020-12) and the AsyncAPI document.

The files in this package are the single source of the contract's rules; the validator in
:mod:`tenure.contract.validation` compiles them, it does not restate them.
"""

from __future__ import annotations

from pathlib import Path

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
