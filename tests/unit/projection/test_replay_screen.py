"""Replay's fast decode and screen gives exactly what the catch-up's exact path gives."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import UTC, datetime

from tenure.domain.events import DeviceUsed
from tenure.domain.pseudonymity import is_token, person_ids_named
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.projection.catch_up import screen_archived
from tenure.projection.person_refs import PersonRefs
from tenure.projection.replay_fold import decodes_alike, screen_documents, storable
from tenure.projection.screen import unstorable
from tenure.storage.archive import ArchivedDocument, ArchivedEvent
from tests.factories import example_data, make_event


def _documents() -> list[bytes]:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    kinds = ("device.used", "device.activated", "payment.completed", "identity.linked",
             "person.erasure_requested", "feedback.submitted")  # fmt: skip
    plain = [
        json.dumps(make_event(t, n=n, at=at, event_id=f"e-{n}")).encode()
        for n, t in enumerate(kinds)
    ]
    used = make_event("device.used", n=1, at=at)

    def variant(**data: object) -> bytes:
        return json.dumps(used | {"data": example_data("device.used", 1) | data}).encode()

    pay = make_event("payment.completed", n=2, at=at)
    big = json.loads(json.dumps(pay))
    big["data"]["items"][0]["amount_minor"] = 2**64  # beyond 64 bits: out_of_range
    digits = json.loads(json.dumps(pay))
    digits["data"]["items"][0]["amount_minor"] = "9_999_999_999_999_999_999"
    exponent = json.loads(json.dumps(pay))
    exponent["data"]["items"][0]["amount_minor"] = 1e19  # int(1e19) is past 64 bits
    under = make_event("payment.completed", n=2, at=at, event_id="pay-under")
    under["data"]["items"][0]["amount_minor"] = "9_999_999_999_999_999_999"  # int() reads it
    arabic = make_event("payment.completed", n=2, at=at, event_id="pay-arabic")
    arabic["data"]["items"][0]["amount_minor"] = "\u0661" * 20  # raw UTF-8 digits, int() reads
    just = json.loads(json.dumps(pay))
    just["data"]["items"][0]["amount_minor"] = 2**63 - 1  # the largest storable
    return [
        *plain,
        variant(duration_s="inf"),  # a float from a string: not finite
        variant(duration_s="nan"),
        variant(duration_s=1.5e300),
        variant(feature="nul\u0000here"),
        variant(feature="info about inf"),  # suspect text, but storable
        variant(duration_s="1e400"),
        variant(duration_s=" -Infinity"),
        variant(duration_s="1_0"),
        variant(duration_s="\u0661\u0662"),  # Arabic-Indic digits: float() reads 12
        variant(duration_s=1e308),
        variant(duration_s="1e19"),
        variant(duration_s=".5E+400"),
        variant(duration_s="12_3"),
        json.dumps(big).encode(),
        json.dumps(digits).encode(),
        json.dumps(exponent).encode(),
        json.dumps(just).encode(),
        json.dumps(under).encode(),
        json.dumps(arabic, ensure_ascii=False).encode(),
        b'{"specversion": "1.0", "type": "no.such.type", "id": "x", "source": "s"}',
        b'{"specversion": "1.0"}',
        b'{"a": 1e400}',
    ]


def test_fast_screen_equals_the_exact_one() -> None:
    rows = [ArchivedDocument(n, d, "t", 0, "k") for n, d in enumerate(_documents(), start=1)]
    events, dead = screen_documents(rows)
    archived = [ArchivedEvent(r.seq, json.loads(r.document), "t", 0, "k") for r in rows]
    kept, letters = screen_archived(archived)
    assert events == [e for _, e in kept]
    assert dead == letters
    assert len(events) >= 7 and len(dead) >= 5
    assert not decodes_alike(b'{"amount_minor": 18446744073709551616}')
    assert all(decodes_alike(d) for d in _documents()[:6])  # plain events: the fast path


def test_the_device_used_check_is_the_generic_walk() -> None:
    assert [f.name for f in fields(DeviceUsed)] == [
        "event_id",
        "at",
        "device_id",
        "person_id",
        "duration_s",
        "feature",
    ]  # fmt: skip  (a new field needs its check in replay_fold.storable)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    cases = [
        DeviceUsed(("s", "e"), at, "d", person, duration, feature)
        for person in (None, "p", "p\x00")
        for duration in (None, 1.5, float("nan"), float("inf"), float("-inf"), 1e308)
        for feature in (None, "f", "\x00")
    ]
    cases += [DeviceUsed(("s\x00", "e"), at, "d"), DeviceUsed(("s", "e\x00"), at, "d\x00")]
    for event in cases:
        assert storable(event) == (unstorable(event) is None), event
    assert any(storable(e) for e in cases) and not all(storable(e) for e in cases)


def test_names_resolved_in_the_envelopes_equal_the_events_resolved_after() -> None:
    pseudonymiser = Pseudonymiser(b"replay-screen-test-secret")
    tokens: dict[str, str] = {}
    documents = []
    for document in _documents():
        named = re.findall(rb'"(?:person|payer|beneficiary|alias)_id": "([^"]+)"', document)
        for value in set(named):
            token = pseudonymiser.token(value.decode())
            tokens[token] = value.decode()
            document = document.replace(b'"' + value + b'"', f'"{token}"'.encode())
        documents.append(document)
    rows = [ArchivedDocument(n, d, "t", 0, "k") for n, d in enumerate(documents, start=1)]
    refs = PersonRefs()
    refs.warm(pseudonymiser, tokens)
    events, dead = screen_documents(rows, lambda values: refs.resolve_names(None, values))
    plain_events, plain_dead = screen_documents(rows)
    assert events == refs.resolve(None, plain_events).events
    assert dead == plain_dead
    assert len(tokens) >= 4 and not any(is_token(p) for e in events for p in person_ids_named(e))
