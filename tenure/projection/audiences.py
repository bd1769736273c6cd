"""Live audience membership: the projector's audience stage (docs/audiences.md, "Live
membership").

The stage follows the persons change feed (:mod:`tenure.storage.person_changes`, as the
persons topic relay does) and re-evaluates only the persons whose row changed, plus the
persons whose audience schedule came due (``audience_due``: a time term of a filter, a
quiet period ending, the next UTC day of a churn-risk term), each at the live as-of (the
watermark; a stored row not yet due is read as of it, :func:`person_as_of`). Nobody else
is read: a watermark move costs the due persons, never a scan of everyone. A new audience
(or a new version of one) starts at the beginning of the feed: its first pass over every
person is its backfill.

For every (audience, person) it decides, purely (:func:`decide`), the membership and its
suppression, and writes the entries, exits and suppression changes with a change event
each to the outbox (``audience_changes``), in the transaction that moves the stage's
positions: a page is evaluated exactly once. :func:`publish_changes` then sends the
outbox to ``tenure.audiences.v1`` after commit (at least once, deterministic ids).

*Contacted* means: the person became a contactable (not suppressed) member of the
audience, by entering it or by a suppression lifting. The audience's quiet period counts
from the last such instant, across exits and re-entries; a member already contacted is not
suppressed by its own contact.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tenure.analytics.churn_risk import ChurnRiskTable
from tenure.contract import format_time
from tenure.contract.topics import AUDIENCES
from tenure.domain.audience import (
    ERASED,
    QUIET_PERIOD,
    AudienceDefinition,
    is_member,
    next_membership_change,
    quiet_until,
    suppression_of,
)
from tenure.domain.pseudonymity import is_token
from tenure.domain.view import PersonView
from tenure.eventlog.deadletter import DeadLetterSink
from tenure.eventlog.publisher import EventPublisher, OutgoingRecord
from tenure.projection.outbox import publish_or_park
from tenure.storage import (
    audience_definitions,
    churn_model,
    person_changes,
    progress,
    survival_reads,
)
from tenure.storage import audience_members as store
from tenure.storage.audience_members import Change, Member, Position, Writes
from tenure.storage.churn_risk import model_version
from tenure.storage.connection import Conn, repeatable_read_transaction
from tenure.storage.read_models import STORED_PERSON_COLUMNS, person_as_of, person_view_of

ENTERED = "entered"
EXITED = "exited"
SUPPRESSION_CHANGED = "suppression_changed"
KINDS = (ENTERED, EXITED, SUPPRESSION_CHANGED)
"""The kinds of membership change published on ``tenure.audiences.v1``."""
CHANGE_TYPE_PREFIX = "tenure.audience."
CHANGE_SOURCE = "urn:tenure:audiences"
PAGE = 500
"""Persons one pass evaluates from the change feed (and, separately, from the schedule)."""

Definitions = Callable[[Conn], Sequence[AudienceDefinition]]
"""Where the stage gets the audiences to keep (read at each pass)."""


def stored(conn: Conn) -> list[AudienceDefinition]:
    """The current version of every audience that is not retired
    (``tenure/storage/audience_definitions.py``)."""
    return [s.definition for s in audience_definitions.current(conn)]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one evaluation of one person for one audience concluded."""

    member: Member | None
    """The membership to hold (``None``: not a member)."""
    kind: str | None
    """The change to publish (:data:`KINDS`), ``None`` when nothing a consumer sees
    changed."""
    contacted: bool
    """The person became contactable for the audience now (a contact)."""
    due: datetime | None
    """When the decision may change by time alone (``None``: only with new facts)."""


def decide(
    definition: AudienceDefinition,
    view: PersonView,
    churn_risk: float | None,
    current: Member | None,
    last_contacted_at: datetime | None,
) -> Decision:
    """Membership and suppression of ``view``'s person at ``view.as_of``, given the current
    membership and the last contact for the audience (module doc)."""
    due = next_membership_change(definition, view)
    if not is_member(definition, view, churn_risk):
        return Decision(None, None if current is None else EXITED, False, due)
    contacted_before = current is not None and current.suppressed is None
    last = None if contacted_before else last_contacted_at
    reason = suppression_of(definition, view, last)
    if reason == QUIET_PERIOD:
        until = quiet_until(definition, last)
        if until is not None and (due is None or until < due):
            due = until
    entered_at = view.as_of if current is None else current.entered_at
    member = Member(definition.version, entered_at, reason)
    if current is None:
        kind: str | None = ENTERED
    elif current.suppressed != reason:
        kind = SUPPRESSION_CHANGED
    else:
        kind = None
    return Decision(member, kind, reason is None and not contacted_before, due)


def change_id(audience: str, version: int, person_id: str, kind: str, at: datetime,
              suppressed: str | None) -> str:  # fmt: skip
    """The deterministic event id of a membership change: the same change (audience,
    version, person, kind, instant, suppression) always gets the same id."""
    key = "\x1f".join((audience, str(version), person_id, kind, format_time(at),
                       suppressed or ""))  # fmt: skip
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _change(audience: str, version: int, person_id: str, kind: str, at: datetime,
            suppressed: str | None) -> Change:  # fmt: skip
    return Change(
        change_id(audience, version, person_id, kind, at, suppressed),
        audience, version, person_id, kind, suppressed, at,
    )  # fmt: skip


@dataclass
class AudienceTotals:
    """Running counts (for metrics and tests), from committed passes."""

    flows: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(audience, kind) -> changes written."""
    suppressions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(audience, reason) -> members suppressed (on entry or a suppression change)."""
    evaluated: int = 0
    """Persons evaluated (from the feed, the schedule or a removal)."""
    published: int = 0


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one pass did."""

    evaluated: int
    changes: int
    persons: frozenset[str] = frozenset()
    """The persons evaluated (removed ones included)."""


class RiskSource:
    """Churn risk of stored rows at an as-of day, reading the live model once per day and
    model version (``tenure/analytics/churn_risk.py``, as the persons routes compute it)."""

    def __init__(self) -> None:
        self._table: tuple[Any, ChurnRiskTable] | None = None

    def table(self, conn: Conn, as_of: datetime) -> ChurnRiskTable:
        """The risk table at ``as_of``'s UTC day."""
        day = as_of.astimezone(UTC).date()
        key = (day, model_version(conn))
        if self._table is None or self._table[0] != key:
            window = survival_reads.aggregate_state(conn).churn_window_days
            self._table = (key, churn_model.read_risk_table(conn, day, window))
        return self._table[1]


def churn_risk_of(table: ChurnRiskTable, view: PersonView) -> float | None:
    """A view's churn risk read against ``table``."""
    last = view.last_engagement_at
    day = None if last is None else last.astimezone(UTC).date()
    return table.estimate(view.churn.bucket, day).probability


class AudienceStage:
    """Keeps ``audience_members`` in step with ``persons`` for a set of definitions."""

    def __init__(self, definitions: Definitions = stored) -> None:
        self.definitions = definitions
        self.risks = RiskSource()
        self.totals = AudienceTotals()

    def run_pass(self, conn: Conn, lateness: timedelta, limit: int = PAGE) -> PassResult:
        """One pass in one repeatable-read transaction: a page of the change feed and up to
        ``limit`` due persons (nothing when another pass holds the stage or no audience is
        defined)."""
        with repeatable_read_transaction(conn):
            found = store.claim_stage(conn)
            if found is None:  # another pass holds the stage
                return PassResult(0, 0)
            definitions = sorted(self.definitions(conn), key=lambda d: d.name)
            as_of = progress.projection_watermark(conn, lateness)
            if as_of is None:
                return PassResult(0, 0)
            names = {d.name for d in definitions}
            retired = sorted(a for a in found if a not in names)
            if retired:  # no longer current: its members exit, a page per pass
                return self._retire(conn, retired[0], as_of, limit)
            if not definitions:
                return PassResult(0, 0)
            cursors = {d.name: store.position_or_start(found, d.name, d.version)
                       for d in definitions}  # fmt: skip
            start = min(cursors.values())
            page = person_changes.changes_after(conn, start, limit, STORED_PERSON_COLUMNS)
            rows = {str(r["person_id"]): r for r in page.persons}
            due = [p for p in store.due_persons(conn, as_of, limit) if p not in rows]
            rows.update((str(r["person_id"]), r) for r in store.persons_by_id(conn, due))
            gone = [p for p in due if p not in rows]  # scheduled, then removed
            writes, flows, suppressed = self._evaluate(
                conn, definitions, rows, [*page.removed, *gone], as_of
            )
            store.write(conn, writes)
            store.move_positions(
                conn,
                {d.name: Position(d.version, max(cursors[d.name], page.next))
                 for d in definitions},
            )  # fmt: skip
        self.totals.flows.update(flows)
        self.totals.suppressions.update(suppressed)
        persons = frozenset((*rows, *page.removed, *gone))
        self.totals.evaluated += len(persons)
        return PassResult(len(persons), len(writes.changes), persons)

    def _retire(self, conn: Conn, audience: str, as_of: datetime, limit: int) -> PassResult:
        """Exit up to ``limit`` members of an audience that is no longer current; forget
        its position once it has none (in the caller's transaction)."""
        page = store.members_page(conn, audience, limit)
        writes = Writes({}, {}, {}, {}, [], set())
        for person_id, version in sorted(page.items()):
            writes.exited[(audience, person_id)] = as_of
            writes.changes.append(_change(audience, version, person_id, EXITED, as_of, None))
        store.write(conn, writes)
        if len(page) < limit:
            store.forget_position(conn, audience)
        self.totals.flows[(audience, EXITED)] += len(page)
        return PassResult(max(1, len(page)), len(page), frozenset(page))

    def _evaluate(
        self,
        conn: Conn,
        definitions: Sequence[AudienceDefinition],
        rows: dict[str, dict[str, Any]],
        removed: Iterable[str],
        as_of: datetime,
    ) -> tuple[Writes, Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        removed = sorted(set(removed))
        current = store.members_of(conn, [*rows, *removed])
        contacts = store.last_contacts(conn, rows)
        writes = Writes({}, {}, {}, {}, [], set())
        flows: Counter[tuple[str, str]] = Counter()
        suppressed: Counter[tuple[str, str]] = Counter()
        needs_risk = any(d.filter.churn_risk is not None for d in definitions)
        table = self.risks.table(conn, as_of) if needs_risk and rows else None
        for person_id, row in sorted(rows.items()):
            view = person_view_of(person_as_of(row, as_of))
            risk = None if table is None else churn_risk_of(table, view)
            earliest: datetime | None = None
            for d in definitions:
                key = (d.name, person_id)
                decision = decide(d, view, risk, current.get(key), contacts.get(key))
                if decision.due is not None and (earliest is None or decision.due < earliest):
                    earliest = decision.due
                if decision.contacted:
                    writes.contacts[key] = view.as_of
                if decision.member is None:
                    if decision.kind == EXITED:
                        writes.exited[key] = view.as_of
                elif decision.member != current.get(key):
                    writes.entered[key] = decision.member
                if decision.kind is not None:
                    reason = None if decision.member is None else decision.member.suppressed
                    writes.changes.append(
                        _change(d.name, d.version, person_id, decision.kind, view.as_of, reason)
                    )
                    flows[(d.name, decision.kind)] += 1
                    if reason is not None:
                        suppressed[(d.name, reason)] += 1
            writes.due[person_id] = earliest
        for person_id in removed:  # merged into another person, or erased (a token)
            erased = is_token(person_id)
            for (audience, member_id), membership in sorted(current.items()):
                if member_id != person_id:
                    continue
                writes.exited[(audience, person_id)] = None if erased else as_of
                writes.changes.append(
                    _change(audience, membership.version, person_id, EXITED, as_of, None)
                )
                flows[(audience, EXITED)] += 1
                if erased:
                    suppressed[(audience, ERASED)] += 1
            writes.forget.add(person_id)
        return writes, flows, suppressed


def change_event(change: Change, person_ref: str) -> dict[str, Any]:
    """The CloudEvent of one membership change (``person_ref``: the person's token)."""
    return {
        "specversion": "1.0",
        "id": change.event_id,
        "source": CHANGE_SOURCE,
        "type": CHANGE_TYPE_PREFIX + change.kind,
        "time": format_time(change.at),
        "subject": person_ref,
        "datacontenttype": "application/json",
        "data": {
            "audience": change.audience,
            "version": change.version,
            "person_id": person_ref,
            "change": change.kind,
            "suppressed": change.suppressed,
            "as_of": format_time(change.at),
        },
    }


def publish_changes(
    conn: Conn,
    publisher: EventPublisher,
    token: Callable[[str], str],
    limit: int = 1000,
    dead_letters: DeadLetterSink | None = None,
) -> int:
    """Publish up to ``limit`` unpublished membership changes in outbox order, keyed by
    the person's token; return how many left the outbox (published or dead-lettered)."""
    sink = dead_letters or DeadLetterSink("audiences", publisher)
    with conn.transaction():
        pending = store.pending_changes(conn, limit)
        if not pending:
            return 0
        records = []
        for _, change in pending:
            ref = token(change.person_id)
            records.append(OutgoingRecord(AUDIENCES, ref, orjson.dumps(change_event(change, ref))))
        parked = publish_or_park(conn, records, publisher, sink, f"outbox/{AUDIENCES}")
        store.mark_published(conn, [seq for seq, _ in pending])
    sink.count([letter for _, letter in parked])
    return len(pending)
