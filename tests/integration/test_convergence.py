"""Every start converges: the archive catch-up from the convergence checkpoint, poison rows
in the archive, and re-driving dead letters (Postgres only)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

from streams.archiver.records import to_archive_record
from tenure.domain.events import parse_event
from tenure.domain.neighbourhood import raw_fold
from tenure.domain.world import fold, views
from tenure.eventlog.deadletter import DEAD_LETTER_COUNT
from tenure.projection.apply import prepare_batch, write_batch
from tenure.projection.catch_up import converge, converge_projection, verify_convergence
from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay import aliases_by_person, replay
from tenure.projection.watermark import DEFAULT_ALLOWED_LATENESS
from tenure.storage import archive, convergence
from tenure.storage.archive import ArchiveRecord
from tenure.storage.raw_states import DEVICES, PERSONS, read_all
from tenure.storage.read_models import PERSON_COLUMNS, person_row
from tests.factories import make_event, scenario
from tests.integration.conftest import env_for
from tests.integration.pipeline import plain_row

END = datetime.now(UTC) - timedelta(hours=2)
TOPIC = "tenure.payment-events.v1"


def poison_payloads(source: str) -> list[bytes]:
    """Two payments the codec cannot store: 2**64 (read as a float, then an int) and 1e30."""
    out = []
    for n, amount in enumerate((18446744073709551616, 1e30)):
        event = make_event("payment.completed", source=source, n=900 + n, at=END)
        event["data"]["items"][0]["amount_minor"] = amount
        out.append(json.dumps(event).encode())
    return out


def archive_payloads(conn: psycopg.Connection[Any], payloads: list[bytes], first: int = 0) -> None:
    """Archive records as the archiver would have, from one partition."""
    records = []
    for offset, value in enumerate(payloads, start=first):
        record = to_archive_record(TOPIC, 0, offset, b"k", value)
        assert isinstance(record, ArchiveRecord)
        records.append(record)
    with conn.transaction():
        archive.append(conn, records)


def dead_letter_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT stage, category, archive_seq, redriven_at IS NOT NULL, occurrences,"
            " envelope ->> 'id' FROM dead_letters ORDER BY id"
        ).fetchall()


def counted(stage: str, category: str) -> float:
    return DEAD_LETTER_COUNT.labels(stage, category)._value.get()  # type: ignore[no-any-return]


def test_catch_up_and_replay_dead_letter_poison_archive_rows_and_apply_the_rest(
    pool: ConnectionPool, database_url: str
) -> None:
    events = scenario(31, 20, source="urn:test:poison-archive", end=END)
    payloads = [orjson.dumps(e) for e in events]
    poison = poison_payloads("urn:test:poison-archive")
    mixed = payloads[:50] + poison[:1] + payloads[50:] + poison[1:]
    with pool.connection() as conn:
        archive_payloads(conn, mixed)
    before = counted("catch-up", "out_of_range")

    done = converge(pool)
    assert (done.applied, done.dead_lettered) == (len(events), 2)
    assert done.checkpoint == len(mixed)  # seqs 1..n
    with pool.connection() as conn:
        # as the projection decodes them: the erased human's ids are its tokens now
        decoded = PersonRefs().resolve(conn, [parse_event(e) for e in events]).events
        want = raw_fold(decoded)
        assert read_all(conn, DEVICES) == dict(want.devices)
        assert read_all(conn, PERSONS) == dict(want.person_states)
    letters = dead_letter_rows(database_url)
    assert [(s, c, r) for s, c, _, r, _, _ in letters] == [("catch-up", "out_of_range", False)] * 2
    assert {seq for _, _, seq, *_ in letters} == {51, len(mixed)}
    assert counted("catch-up", "out_of_range") - before == 2

    result = replay(database_url)  # proceeds too, with the same two rows dead-lettered
    assert (result.events, result.dead_lettered) == (len(events), 2)
    world = fold(decoded)
    as_of = max(e.at for e in decoded) - DEFAULT_ALLOWED_LATENESS
    aliases = aliases_by_person(world)
    want_rows = sorted(person_row(v, aliases.get(p, ())) for p, v in views(world, as_of).items())
    with psycopg.connect(database_url) as conn:
        got = conn.execute(f"SELECT {', '.join(PERSON_COLUMNS)} FROM persons ORDER BY 1").fetchall()
    assert [plain_row(r) for r in got] == [plain_row(r) for r in want_rows]
    stages = [s for s, *_ in dead_letter_rows(database_url)]
    assert stages.count("replay") == 2 and stages.count("catch-up") == 2


def test_convergence_reapplies_exactly_what_follows_the_checkpoint(
    pool: ConnectionPool, database_url: str
) -> None:
    """The issue's restart: 1,000 events archived, none projected (the projector lagged and
    the memory-only broker lost them); the start's convergence restores them all."""
    events = [
        make_event("device.used", source="urn:test:lagging", n=i % 133, at=END - timedelta(hours=i))
        for i in range(900)
    ] + [make_event("device.activated", source="urn:test:lagging", n=i, at=END) for i in range(100)]
    with pool.connection() as conn:
        archive_payloads(conn, [orjson.dumps(e) for e in events])
        assert read_all(conn, DEVICES) == {}
    assert converge_projection(pool) == 1000
    with pool.connection() as conn:
        # as the projection decodes them: the erased human's ids are its tokens now
        decoded = PersonRefs().resolve(conn, [parse_event(e) for e in events]).events
        want = raw_fold(decoded)
        assert read_all(conn, DEVICES) == dict(want.devices)
        assert read_all(conn, PERSONS) == dict(want.person_states)
        mentioned = conn.execute("SELECT count(DISTINCT person_id) FROM device_mentions")
        assert mentioned.fetchone() == (100,)  # the 100 persons are queued for derive
        assert convergence.checkpoint(conn) == 1000
    assert converge_projection(pool) == 0  # cheap when nothing is missing

    late = [make_event("device.used", source="urn:test:lagging", n=500, at=END)]
    with pool.connection() as conn:
        archive_payloads(conn, [orjson.dumps(e) for e in late], first=1000)
    assert converge_projection(pool) == 1  # only the row after the checkpoint
    with pool.connection() as conn:
        assert "d500" in read_all(conn, DEVICES)


def test_the_checkpoint_advances_over_offsets_the_projector_applied_and_no_further(
    pool: ConnectionPool,
) -> None:
    events = [make_event("device.used", source="urn:test:verify", n=i, at=END) for i in range(30)]
    with pool.connection() as conn:
        archive_payloads(conn, [orjson.dumps(e) for e in events])  # offsets 0..29 of TOPIC/0
        # The projector applied offsets 0..19 from Kafka (written with the batch).
        batch = prepare_batch(
            [parse_event(e) for e in events[:20]], {(TOPIC, 0): END}, offsets={(TOPIC, 0): 20}
        )
        with conn.transaction():
            write_batch(conn, batch)
    assert verify_convergence(pool) == 20
    with pool.connection() as conn:
        batch = prepare_batch(
            [parse_event(e) for e in events[20:]], {(TOPIC, 0): END}, offsets={(TOPIC, 0): 30}
        )
        with conn.transaction():
            write_batch(conn, batch)
    assert verify_convergence(pool) == 30
    with pool.connection() as conn:  # a row the projector has not applied yet
        archive_payloads(conn, [orjson.dumps(make_event("device.used", at=END))], first=30)
    assert verify_convergence(pool) == 30
    done = converge(pool)  # converges it, and forgets the offsets (a new broker counts from 0)
    assert (done.checkpoint_before, done.checkpoint, done.applied) == (30, 31, 1)
    with pool.connection() as conn:
        row = conn.execute("SELECT applied_offset FROM projection_progress").fetchone()
    assert row == (None,)


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = env_for("", database_url)
    env.pop("TENURE_KAFKA_BOOTSTRAP")
    return subprocess.run(
        [sys.executable, "-m", "tenure.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dead_letters_are_listed_and_an_archive_letter_is_reapplied_by_redrive(
    pool: ConnectionPool, database_url: str
) -> None:
    good = make_event("device.activated", source="urn:test:redrive", n=7, at=END)
    with pool.connection() as conn:
        archive_payloads(conn, [*poison_payloads("urn:test:redrive"), orjson.dumps(good)])
        # As if a stage had dead-lettered the valid event (say, a bug since fixed).
        from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink

        with conn.transaction():
            DeadLetterSink("catch-up").store(
                conn,
                [DeadLetter(b"k", orjson.dumps(good), "malformed", "a bug", "", "archive/3", 3)],
            )
            convergence.advance(conn, 3)  # the catch-up had passed it
    converge(pool, from_start=True)  # dead-letters the two poison rows (the valid one applied)
    with pool.connection() as conn:
        conn.execute("DELETE FROM raw_device_deltas")  # the bug: the event never got in
        conn.commit()

    listed = _cli(database_url, "deadletters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(d["stage"], d["archive_seq"]) for d in letters] == [
        ("catch-up", 3), ("catch-up", 1), ("catch-up", 2)
    ]  # fmt: skip
    assert letters[1]["category"] == "out_of_range" and letters[1]["reason"]

    wanted = str(letters[0]["id"])
    redriven = _cli(database_url, "deadletters", "redrive", wanted)
    assert redriven.returncode == 0, redriven.stderr
    assert "1 re-applied" in redriven.stderr
    with pool.connection() as conn:
        assert "d7" in read_all(conn, DEVICES)
    again = _cli(database_url, "deadletters", "redrive", "--all", "--stage", "catch-up")
    assert again.returncode == 1  # the poison rows fail again: left pending, counted again
    rows = dead_letter_rows(database_url)
    assert [(r[3], r[4]) for r in rows] == [(True, 1), (False, 2), (False, 2)]
    pending = _cli(database_url, "deadletters", "list")
    assert pending.returncode == 0 and "2 dead letter(s)" in pending.stderr


def test_any_payload_can_be_dead_lettered(database_url: str) -> None:
    """A dead letter is always recorded, whatever its bytes: jsonb when Postgres can hold
    the payload, bytes only otherwise."""
    from tenure.eventlog.deadletter import DeadLetter, DeadLetterSink

    payloads = [
        b'{"id": "a", "n": 18446744073709551616}',  # jsonb holds big numbers
        b'{"id": "b", "n": NaN}',
        b'{"id": "c\\u0000"}',
        b'{"id": "\\ud800"}',  # a lone surrogate: Postgres refuses it as jsonb
        b"\xff\xfe not utf-8",
    ]
    letters = [
        DeadLetter(b"k\x00", value, "malformed", "why\x00", "", f"t/0/{n}")
        for n, value in enumerate(payloads)
    ]
    with psycopg.connect(database_url) as conn, conn.transaction():
        DeadLetterSink("archiver").store(conn, letters)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload, envelope IS NOT NULL FROM dead_letters ORDER BY kafka_offset"
        ).fetchall()
    assert [bytes(p) for p, _ in rows] == payloads
    assert [has for _, has in rows] == [True, False, False, False, False]
