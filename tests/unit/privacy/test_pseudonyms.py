"""Tokens of person ids, and tokenising envelopes at the publish boundary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenure.contract.topics import ROUTES
from tenure.domain.pseudonymity import PERSON_FIELDS, is_token
from tenure.privacy.boundary import tokenised
from tenure.privacy.pseudonyms import Pseudonymiser
from tests.factories import make_event

SECRET = bytes(range(32))


def test_a_token_is_deterministic_keyed_and_short() -> None:
    p = Pseudonymiser(SECRET)
    token = p.token("alice@example.com")
    assert token == p.token("alice@example.com") == Pseudonymiser(SECRET).token("alice@example.com")
    assert is_token(token) and len(token) == 35 and "alice" not in token
    assert Pseudonymiser(bytes(32)).token("alice@example.com") != token
    assert p.token(token) == token  # tokenising twice changes nothing


@given(st.lists(st.text(min_size=1, max_size=50), min_size=2, max_size=50, unique=True))
def test_distinct_ids_get_distinct_tokens(ids: list[str]) -> None:
    p = Pseudonymiser(SECRET)
    assert len({p.token(i) for i in ids}) == len(ids)


def test_every_person_field_and_the_record_key_become_tokens() -> None:
    p = Pseudonymiser(SECRET)
    registry: dict[str, str] = {}
    gift = make_event(
        "payment.completed",
        data={
            "order_id": "o-1",
            "payer_id": "alice",
            "beneficiary_id": "bob",
            "items": [{"sku": "w", "category": "hardware", "amount_minor": 1, "currency": "EUR"}],
        },
    ) | {"subject": "alice"}
    envelope, key = tokenised(p, gift, "alice", registry)
    assert envelope["data"]["payer_id"] == key == p.token("alice")
    assert envelope["data"]["beneficiary_id"] == p.token("bob")
    assert envelope["subject"] == p.token("alice")
    assert envelope["data"]["order_id"] == "o-1" and gift["data"]["payer_id"] == "alice"
    assert registry == {p.token("alice"): "alice", p.token("bob"): "bob"}


def test_device_events_keep_the_device_key() -> None:
    p = Pseudonymiser(SECRET)
    used = make_event("device.used", data={"device_id": "d-1", "person_id": "alice"})
    envelope, key = tokenised(p, used, "d-1", {})
    assert key == "d-1" and envelope["data"]["person_id"] == p.token("alice")


def test_the_person_fields_cover_every_route_key_that_names_a_person() -> None:
    assert {r.key_field for r in ROUTES.values()} - {"device_id"} <= set(PERSON_FIELDS)
