"""Dead letters: records that cannot be applied, parked with the reason in headers."""

from __future__ import annotations

from dataclasses import dataclass

from tenure.contract.topics import DEAD_LETTERS, REASON_HEADER
from tenure.eventlog.publisher import OutgoingRecord

CATEGORY_HEADER = "tenure-reason-category"
FIELD_HEADER = "tenure-reason-field"
ORIGIN_HEADER = "tenure-origin"
"""Header naming where the record came from: ``topic/partition/offset``."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be applied and why."""

    key: bytes | None
    value: bytes
    category: str
    reason: str
    field: str
    origin: str

    def to_record(self) -> OutgoingRecord:
        """The record to publish on the dead-letter topic (original value, reason in headers)."""
        return OutgoingRecord(
            topic=DEAD_LETTERS,
            key=(self.key or b"").decode(errors="replace"),
            value=self.value,
            headers=(
                (REASON_HEADER, self.reason.encode()),
                (CATEGORY_HEADER, self.category.encode()),
                (FIELD_HEADER, self.field.encode()),
                (ORIGIN_HEADER, self.origin.encode()),
            ),
        )
