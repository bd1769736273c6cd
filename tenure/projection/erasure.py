"""The purge: an erased human's ids become their tokens everywhere the projection stored them.

Runs when a batch erases a person id the vault still resolves, in its own transaction
before that batch is applied (docs/design/erasure.md). It takes the erasure lock
exclusively, clears the vault rows of every id of the human, and renames each id to its
token in the raw states (device deltas and rows mentioning it, the human's own states,
moved to the token keys, and the states of everyone they name), the key graph, the derive
queue, the transitions outbox and the survival bookkeeping; it deletes the human's read-model
rows and writes ``~erased`` (users: none) for them in device rows. Renaming commutes with
the fold, so the projection then equals the fold of the archive as it decodes after the
erasure.

The renames themselves are in :mod:`tenure.storage.erased_ids` (tables added later that hold
event payloads are listed in its ``PAYLOAD_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tenure.domain.person import erased_person
from tenure.domain.pseudonymity import is_token, rename_device_state, rename_person_state
from tenure.privacy.pseudonyms import Pseudonymiser
from tenure.storage import (
    audience_members,
    derive_queue,
    erased_ids,
    key_graph,
    person_changes,
    person_pseudonyms,
    read_model_rows,
)
from tenure.storage.connection import Conn
from tenure.storage.raw_states import DEVICES, PERSONS


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge renamed."""

    tokens: Mapping[str, str]
    """Each erased person id and its token."""
    devices: int
    persons: int
    """Other people's raw states rewritten (gift and referral counterparts)."""


def purge(
    conn: Conn,
    pseudonymiser: Pseudonymiser,
    erasures: Mapping[str, datetime],
    payload_columns: Iterable[erased_ids.PayloadColumn] | None = None,
    *,
    linked: Mapping[str, datetime] | None = None,
) -> PurgeResult:
    """Erase the humans of ``erasures`` (person id -> erasure time; their tokens get the
    erasure's tombstone) and of ``linked`` (ids linked to an erased token: the domain erases
    them with it) from the projection's storage, in one transaction of its own; see the
    module doc. ``payload_columns`` defaults to
    :data:`tenure.storage.erased_ids.PAYLOAD_COLUMNS` (read at call time)."""
    linked = linked or {}
    with conn.transaction():
        person_pseudonyms.hold_exclusive(conn)
        human, _ = key_graph.components(conn, [*erasures, *linked])
        members = sorted(p for p in human if not is_token(p))
        mapping = {m: pseudonymiser.token(m) for m in members}
        if not mapping:
            return PurgeResult({}, 0, 0)
        at = min([*erasures.values(), *linked.values()])
        person_pseudonyms.mark_erased(conn, {t: at for t in mapping.values()})
        devices = sorted(key_graph.devices_mentioning(conn, members))
        others = sorted(erased_ids.move_members(conn, members, mapping))
        # The erasure itself, so the tokens are never live, even if the batch that carries
        # the erasure is only applied after a restart (it then adds the same tombstone).
        erased_ids.append_states(
            conn,
            PERSONS,
            (
                (mapping[p], erased_person(mapping[p], t))
                for p, t in sorted(erasures.items())
                if p in mapping
            ),
        )
        erased_ids.rewrite_in_place(
            conn, PERSONS, others, lambda s: rename_person_state(s, mapping)
        )
        erased_ids.rewrite_in_place(
            conn, DEVICES, devices, lambda s: rename_device_state(s, mapping)
        )
        erased_ids.rename_column(conn, "device_mentions", "person_id", mapping, ("device_id",))
        erased_ids.rename_column(conn, "identity_links", "person_id", mapping, ("other_id",))
        erased_ids.rename_column(conn, "identity_links", "other_id", mapping, ("person_id",))
        erased_ids.rename_column(conn, "dirty_persons", "person_id", mapping, None)
        erased_ids.rename_column(conn, "lifecycle_transitions", "person_id", mapping, None)
        read_model_rows.delete_persons(conn, members)
        person_changes.erase(conn, mapping)  # followers see the erasure by token
        audience_members.erase(conn, mapping)  # the audience stage exits them by token
        erased_ids.rename_column(conn, "survival_dirty", "person_id", mapping, ())
        erased_ids.rename_column(conn, "survival_contributions", "person_id", mapping, ())
        erased_ids.rename_column(conn, "churn_gap_contributions", "person_id", mapping, ())
        erased_ids.rename_column(conn, "churn_pending", "person_id", mapping, None)  # marks
        erased_ids.redact_device_rows(conn, devices, members)
        erased_ids.rename_in_payloads(
            conn,
            mapping,
            erased_ids.PAYLOAD_COLUMNS if payload_columns is None else payload_columns,
        )
        queued = sorted({*mapping.values(), *others})
        derive_queue.enqueue(conn, "person", queued)
        derive_queue.enqueue(conn, "device", devices)
        return PurgeResult(mapping, len(devices), len(others))
