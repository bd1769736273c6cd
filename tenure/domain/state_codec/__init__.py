"""Stable, versioned JSON form of the semilattice states (schema version 1).

The streaming projector and the batch replay persist per-device and per-person states
(Postgres ``jsonb``, Kafka changelogs). This package turns :class:`DeviceState`,
:class:`PersonState` and :class:`IdentityGraph` into plain JSON documents and back:

- ``*_to_json`` / ``*_from_json``: documents made only of ``dict``, ``list``, ``str``,
  ``int``, ``bool`` and ``None`` (ready for ``psycopg``'s ``Jsonb``);
- ``encode_*`` / ``decode_*``: the same documents as compact UTF-8 bytes (orjson).

Format rules (see ``docs/lifecycle.md``, "Serialised state"):

- every document has ``"v": 1`` (schema version) and ``"kind"`` (``device``, ``person``
  or ``identity``); any other version is rejected with a ``ValueError``;
- every field is written, ``None`` as ``null`` and empty collections as ``[]``/``{}``, and
  a decoder accepts exactly these keys (a changed shape needs a new version). The one
  additive exception: a person's ``consent`` (added with ``person.consent_changed``) is
  written only when it holds facts, so the bytes of every state without consent are those
  written before it existed, and a document without it reads as no consent;
- datetimes are RFC 3339 UTC with microseconds (``2024-01-01T12:00:00.000000Z``; any
  offset is accepted on input and converted to UTC, a naive time is rejected); dates are
  ISO dates; tuples (event ids, versions, order items) are lists in their own order;
- sets are sorted lists; maps keyed by strings or dates are JSON objects; maps with
  composite keys are sorted lists of ``[key, value]`` pairs.

The encoding is canonical: equal states give identical bytes, so encoded states can be
compared and hashed, and ``encode(decode(b)) == b``. Object keys are sorted; sets of
strings and identity links are sorted by code point; sets of records and composite-key
entries are sorted by the bytes of their canonical encoding (compact JSON, sorted keys).

Layout: ``json_values.py`` writes and reads the scalars; ``shapes.py`` says how each kind
of value is written and read (a :class:`Shape` writes the source of an expression);
``layout.py`` holds :class:`Field` and :class:`Layout`, which compiles a table's encoders,
decoder and fast delta encoder once, at import (``Layout.source``); ``device.py``,
``person.py`` and ``identity.py`` declare one table per document and per record inside it,
once.
How much a state knows is a domain measure, not a codec one: :mod:`tenure.domain.knowledge`.
"""

from tenure.domain.state_codec.device import (
    decode_device_state,
    device_state_from_json,
    device_state_to_json,
    encode_device_delta,
    encode_device_state,
)
from tenure.domain.state_codec.identity import (
    decode_identity_graph,
    encode_identity_graph,
    identity_graph_from_json,
    identity_graph_to_json,
)
from tenure.domain.state_codec.json_values import (
    SCHEMA_VERSION,
    MalformedDocument,
)
from tenure.domain.state_codec.person import (
    decode_person_state,
    encode_person_state,
    person_state_from_json,
    person_state_to_json,
)

__all__ = [
    "SCHEMA_VERSION",
    "MalformedDocument",
    "decode_device_state",
    "decode_identity_graph",
    "decode_person_state",
    "device_state_from_json",
    "device_state_to_json",
    "encode_device_delta",
    "encode_device_state",
    "encode_identity_graph",
    "encode_person_state",
    "identity_graph_from_json",
    "identity_graph_to_json",
    "person_state_from_json",
    "person_state_to_json",
]
