"""The durable event archive: every accepted event once, unique on ``(source, id)`` (by the
key of :mod:`tenure.storage.identity`).

Each row keeps what the archive is looked up by (``seq``, ``source``, ``event_id``, the
Kafka ``topic``/partition/offset, the record key) in columns and the rest of the envelope
in ``payload``, a ``bytea`` in one of the formats below. This module is the only place that
writes or decodes ``payload``: every reader (replay, catch-up, re-drive, the tests) goes
through :func:`read_chunks`, :func:`read_range`, :func:`read_seq`, :func:`read_source` or
:func:`read_envelopes`, which return whole envelopes (``docs/design/event-storage.md``).

Formats (the first byte of ``payload``):

- ``0`` (:data:`FORMAT_JSON`): the whole envelope as JSON text, uncompressed; what the
  migration 0014 made of rows archived before it.
- ``1`` (:data:`FORMAT_DEFLATE`): the envelope without ``id`` and ``source`` (they are the
  row's columns) as orjson JSON, raw-deflated with the fixed preset dictionary
  :data:`DICTIONARY_V1`. Small envelopes (~300 bytes) compress ~4x with it, against ~1.3x
  without: most of an envelope is attribute and field names the dictionary holds.
- ``2`` (:data:`FORMAT_DEFLATE_BIGINT`): as ``1`` but the JSON written by the standard
  library, for an envelope holding an integer outside 64 bits (orjson cannot write it).

The dictionary is part of format ``1``/``2``: changing it makes every row written with it
unreadable, so a new dictionary needs a new format byte (a unit test pins its digest).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from tenure.errors import TenureError
from tenure.storage import archive_keys
from tenure.storage.identity import identity_key

FORMAT_JSON = 0
FORMAT_DEFLATE = 1
FORMAT_DEFLATE_BIGINT = 2

_COLUMNS = ("id", "source")
"""Envelope attributes stored as columns, not in the payload."""

DICTIONARY_V1: bytes = "".join(
    (
        '"subject":"~p:","fwversion":"1.0","data":{"alias_id":"","order_id":"',
        '","items":[{"sku":"","quantity":1,"amount_minor":100}],"currency":"EUR"',
        ',"channel":"app","category":"other","rating":5,"reason":"",',
        '{"specversion":"1.0","type":"identity.linked","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"person_id":"~p:","alias_id":"~p:"}}',
        '{"specversion":"1.0","type":"referral.completed","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"referrer_id":"~p:","referee_id":"~p:"}}',
        '{"specversion":"1.0","type":"feedback.submitted","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"person_id":"~p:","rating":4,"channel":"app"}}',
        '{"specversion":"1.0","type":"subscription.cancelled","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"person_id":"~p:","product":"","reason":""}}',
        '{"specversion":"1.0","type":"payment.refunded","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"payer_id":"~p:","order_id":"","amount_minor":1000,"currency":"EUR"}}',
        '{"specversion":"1.0","type":"payment.completed","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"payer_id":"~p:","beneficiary_id":"~p:","order_id":"","items":[{"sku":"",',
        '"product":"","amount_minor":1000}],"amount_minor":1000,"currency":"EUR"}}',
        '{"specversion":"1.0","type":"device.deactivated","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"device_id":"dev-","reason":""}}',
        '{"specversion":"1.0","type":"device.activated","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"device_id":"dev-","person_id":"~p:","product":""}}',
        '{"specversion":"1.0","type":"device.used","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"device_id":"dev-","person_id":"~p:","duration_s":60,"feature":""}}',
        '{"specversion":"1.0","type":"device.used","time":"2025-01-01T00:00:00Z",',
        '"datacontenttype":"application/json","ingesttime":"2026-01-01T00:00:00.000000Z",',
        '"data":{"device_id":"dev-","person_id":"~p:","duration_s":',
    )
).encode()
"""The preset deflate dictionary of formats 1 and 2: the contract's attribute and field names
and typical values, the most frequent event type last (deflate reaches the end cheapest).
Frozen: see the module doc."""


class ArchiveFormatError(TenureError, ValueError):
    """A ``payload`` this version cannot decode."""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One event as read from a Kafka record, ready to archive."""

    source: str
    event_id: str
    event_type: str
    event_time: datetime
    record_key: str
    envelope: dict[str, Any]
    ingested_at: datetime | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """An archive row as read back: its sequence number, the whole envelope, and where
    its record was (topic, partition, key)."""

    seq: int
    envelope: dict[str, Any]
    topic: str
    partition: int
    record_key: str


def encode_payload(source: str, event_id: str, envelope: dict[str, Any]) -> bytes:
    """The ``payload`` of an envelope archived under ``(source, event_id)``.

    ``id`` and ``source`` are left out when they equal the row's columns (kept otherwise,
    so decoding always gives back the envelope as it was).
    """
    body = {
        k: v
        for k, v in envelope.items()
        if not (k in _COLUMNS and v == (event_id if k == "id" else source))
    }
    try:
        text, fmt = orjson.dumps(body), FORMAT_DEFLATE
    except orjson.JSONEncodeError:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        fmt = FORMAT_DEFLATE_BIGINT
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1)
    return bytes((fmt,)) + deflate.compress(text) + deflate.flush()


def _inflate(payload: bytes) -> tuple[int, bytes]:
    """The format byte of a ``payload`` and its JSON text (inflated)."""
    if not payload:
        raise ArchiveFormatError("empty archive payload")
    fmt, body = payload[0], memoryview(payload)[1:]
    if fmt == FORMAT_JSON:
        return fmt, bytes(body)
    if fmt not in (FORMAT_DEFLATE, FORMAT_DEFLATE_BIGINT):
        raise ArchiveFormatError(f"unknown archive payload format {fmt}")
    inflate = zlib.decompressobj(-15, DICTIONARY_V1)
    return fmt, inflate.decompress(body) + inflate.flush()


def document_of(source: str, event_id: str, payload: bytes) -> bytes:
    """The envelope archived under ``(source, event_id)`` with ``payload`` as JSON text,
    without decoding it (replay decodes it its own way): the stored text with ``id`` and
    ``source`` put back first (a key the text holds too comes later, and so wins, as in
    :func:`decode_payload`)."""
    fmt, text = _inflate(payload)
    if fmt == FORMAT_JSON:
        return text
    head = b'{"id":' + orjson.dumps(event_id) + b',"source":' + orjson.dumps(source)
    body = text.strip()
    return head + (b"}" if body == b"{}" else b"," + body[1:])


def decode_payload(source: str, event_id: str, payload: bytes) -> dict[str, Any]:
    """The envelope archived under ``(source, event_id)`` with ``payload``."""
    fmt, text = _inflate(payload)
    if fmt == FORMAT_JSON:
        whole: dict[str, Any] = json.loads(text)
        return whole
    rest: dict[str, Any] = orjson.loads(text) if fmt == FORMAT_DEFLATE else json.loads(text)
    if "id" in rest and "source" in rest:
        return rest
    envelope: dict[str, Any] = {}
    if "specversion" in rest:  # the envelope's usual attribute order
        envelope["specversion"] = rest["specversion"]
    envelope["id"] = event_id
    envelope["source"] = source
    envelope.update(rest)
    return envelope


def append(conn: psycopg.Connection[Any], records: Sequence[ArchiveRecord]) -> Counter[str]:
    """Archive records not archived before; return how many rows were new, per topic.

    Runs in the caller's transaction; the caller commits Kafka offsets only after it commits.
    The keys the records name and their event times are recorded too
    (:mod:`tenure.storage.archive_keys`: what ``tenure replay`` plans from), and the rows
    marked ``keys_named``.
    """
    if not records:
        return Counter()
    archive_keys.record(
        conn,
        [(r.record_key, r.envelope) for r in records],
        [(r.topic, r.partition, r.event_type, r.event_time) for r in records],
    )
    rows = conn.execute(
        "INSERT INTO event_archive (identity, source, event_id, record_key, topic, event_type,"
        " kafka_partition, kafka_offset, payload, keys_named)"
        " SELECT *, true FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::int[], %s::bigint[], %s::bytea[])"
        " ON CONFLICT (identity) DO NOTHING RETURNING topic",
        (
            [identity_key(r.source, r.event_id) for r in records],
            [r.source for r in records],
            [r.event_id for r in records],
            [r.record_key for r in records],
            [r.topic for r in records],
            [r.event_type for r in records],
            [r.partition for r in records],
            [r.offset for r in records],
            [encode_payload(r.source, r.event_id, r.envelope) for r in records],
        ),
    ).fetchall()
    return Counter(str(r[0]) for r in rows)


def count(conn: psycopg.Connection[Any]) -> int:
    """How many events the archive holds."""
    row = conn.execute("SELECT count(*) FROM event_archive").fetchone()
    return int(row[0]) if row else 0


_SELECT = (
    "SELECT seq, source, event_id, payload, topic, kafka_partition, record_key FROM event_archive"
)


def _event(row: tuple[Any, ...]) -> ArchivedEvent:
    seq, source, event_id, payload, topic, partition, key = row
    return ArchivedEvent(
        int(seq),
        decode_payload(source, event_id, bytes(payload)),
        str(topic),
        int(partition),
        str(key),
    )


def read_chunks(conn: psycopg.Connection[Any], size: int = 5000) -> Iterator[list[ArchivedEvent]]:
    """Every archived event in archive order, ``size`` at a time (replay); a server-side
    cursor, so the archive is never held in memory."""
    with conn.cursor(name="tenure_archive_chunks") as cur:
        cur.itersize = size
        cur.execute(_SELECT + " ORDER BY seq")
        chunk: list[ArchivedEvent] = []
        for row in cur:
            chunk.append(_event(row))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def read_range(
    conn: psycopg.Connection[Any], after: int, upto: int, limit: int
) -> list[ArchivedEvent]:
    """At most ``limit`` archived events with ``after < seq <= upto``, in order (catch-up)."""
    rows = conn.execute(
        _SELECT + " WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s", (after, upto, limit)
    ).fetchall()
    return [_event(r) for r in rows]


def read_seq(conn: psycopg.Connection[Any], seq: int) -> ArchivedEvent | None:
    """The archived event with sequence number ``seq`` (re-drive), if any."""
    row = conn.execute(_SELECT + " WHERE seq = %s", (seq,)).fetchone()
    return None if row is None else _event(row)


def read_source(conn: psycopg.Connection[Any], source: str) -> list[ArchivedEvent]:
    """Every archived event of one CloudEvents ``source``, in archive order."""
    rows = conn.execute(_SELECT + " WHERE source = %s ORDER BY seq", (source,)).fetchall()
    return [_event(r) for r in rows]


def read_envelopes(
    conn: psycopg.Connection[Any], batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Every archived envelope in archive order (for replay)."""
    for chunk in read_chunks(conn, batch_size):
        for event in chunk:
            yield event.envelope


@dataclass(frozen=True, slots=True)
class ArchivedDocument:
    """An archive row as replay reads it: the envelope as JSON text (UTF-8), not decoded."""

    seq: int
    document: bytes
    topic: str
    partition: int
    record_key: str


def bounds(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    """``(rows, first seq, last seq)`` of the archive in the caller's snapshot (seqs 0 when
    it is empty)."""
    row = conn.execute(
        "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM event_archive"
    ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def read_documents(
    conn: psycopg.Connection[Any], first_seq: int, last_seq: int, chunk: int = 10_000
) -> Iterator[list[ArchivedDocument]]:
    """The archive rows with ``first_seq <= seq <= last_seq`` in seq order, ``chunk`` rows at
    a time, through a server-side cursor (memory stays one chunk, whatever the range)."""
    with conn.cursor(name="tenure_archive_documents") as cur:
        cur.itersize = chunk
        cur.execute(_SELECT + " WHERE seq BETWEEN %s AND %s ORDER BY seq", (first_seq, last_seq))
        while rows := cur.fetchmany(chunk):
            yield [
                ArchivedDocument(
                    int(seq), document_of(source, event_id, bytes(payload)), topic, part, key
                )
                for seq, source, event_id, payload, topic, part, key in rows
            ]


def read_bodies(
    conn: psycopg.Connection[Any],
    first_seq: int,
    last_seq: int,
    chunk: int = 20_000,
    *,
    unnamed_only: bool = False,
) -> Iterator[list[tuple[str, bytes]]]:
    """``(record key, JSON text)`` of the archive rows ``first_seq..last_seq`` (``unnamed_only``:
    those whose keys are not recorded, :mod:`tenure.storage.archive_keys`), ``chunk`` at a
    time, in no particular order (replay's planning pass). The text is the stored envelope
    without ``id`` and ``source`` (both kept when format ``0``)."""
    unnamed = " AND keys_named IS NULL" if unnamed_only else ""
    with conn.cursor(name="tenure_archive_bodies") as cur:
        cur.itersize = chunk
        cur.execute(
            "SELECT record_key, payload FROM event_archive WHERE seq BETWEEN %s AND %s" + unnamed,
            (first_seq, last_seq),
        )
        while rows := cur.fetchmany(chunk):
            yield [(key, _inflate(bytes(payload))[1]) for key, payload in rows]


def record_keys(conn: psycopg.Connection[Any], first_seq: int, last_seq: int) -> Iterator[str]:
    """Each distinct record key of the archive rows ``first_seq..last_seq`` once, through a
    server-side cursor."""
    with conn.cursor(name="tenure_archive_record_keys") as cur:
        cur.itersize = 20_000
        cur.execute(
            "SELECT DISTINCT record_key FROM event_archive WHERE seq BETWEEN %s AND %s",
            (first_seq, last_seq),
        )
        for (key,) in cur:
            yield str(key)


def stage_parts(conn: psycopg.Connection[Any], parts: Iterable[tuple[str, int]]) -> None:
    """Record which part of a replay each record key belongs to (``(record key, part)``
    pairs) in a temporary table of the caller's transaction, for
    :func:`read_documents_by_part`."""
    conn.execute(
        "CREATE TEMP TABLE replay_parts (record_key text PRIMARY KEY, part integer NOT NULL)"
        " ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY replay_parts (record_key, part) FROM STDIN") as copy:
        for row in parts:
            copy.write_row(row)
    conn.execute("ANALYZE replay_parts")


def read_documents_by_part(
    conn: psycopg.Connection[Any], first_seq: int, last_seq: int, chunk: int = 20_000
) -> Iterator[tuple[int, list[ArchivedDocument]]]:
    """The archive rows ``first_seq..last_seq`` part by part (:func:`stage_parts`), as
    ``(part, rows)`` with at most ``chunk`` rows of one part each, through a server-side
    cursor. A row whose record key has no part is not read."""
    with conn.cursor(name="tenure_archive_parts") as cur:
        cur.itersize = chunk
        cur.execute(
            "SELECT p.part, a.seq, a.source, a.event_id, a.payload, a.topic,"
            " a.kafka_partition, a.record_key FROM event_archive a"
            " JOIN replay_parts p ON p.record_key = a.record_key"
            " WHERE a.seq BETWEEN %s AND %s ORDER BY p.part",
            (first_seq, last_seq),
        )
        current: int | None = None
        docs: list[ArchivedDocument] = []
        while rows := cur.fetchmany(chunk):
            for part, seq, source, event_id, payload, topic, partition, key in rows:
                if part != current or len(docs) >= chunk:
                    if docs:
                        assert current is not None
                        yield current, docs
                    current, docs = part, []
                document = document_of(source, event_id, bytes(payload))
                docs.append(ArchivedDocument(int(seq), document, topic, partition, key))
        if docs:
            assert current is not None
            yield current, docs
