"""The pure domain core of the lifecycle projections: events -> state -> derived view.

Nothing here imports Kafka, Faust, HTTP or SQL. The streaming workers, the batch replay
and the tests all call these functions. See ``docs/lifecycle.md`` for the definitions.
"""

from tenure.domain.churn import ChurnRisk, churn_risk
from tenure.domain.config import LifecycleConfig
from tenure.domain.contribution import DeviceContribution, device_contributions
from tenure.domain.device import (
    DeviceState,
    DeviceVersion,
    apply_device,
    device_ids_of,
    device_singleton,
    erase_from_device,
    join_devices,
    merge_device,
)
from tenure.domain.erasure import ERASED, tombstone_of
from tenure.domain.events import (
    EVENT_TYPES,
    DeviceActivated,
    DeviceDeactivated,
    DeviceUsed,
    DomainEvent,
    EventId,
    FeedbackSubmitted,
    IdentityLinked,
    PaymentCompleted,
    PaymentItem,
    PaymentRefunded,
    PersonErasureRequested,
    ReferralCompleted,
    SubscriptionCancelled,
    parse_event,
)
from tenure.domain.identity import (
    IdentityGraph,
    apply_identity,
    merge_component,
    merge_identity,
    resolve_persons,
)
from tenure.domain.level import Level
from tenure.domain.person import (
    PersonState,
    VersionedContribution,
    apply_person,
    join_persons,
    merge_person,
    person_ids_of,
    person_singleton,
    rekey,
    with_device_contribution,
)
from tenure.domain.segment import BuyerKind, Segment
from tenure.domain.stage import Stage
from tenure.domain.transitions import Transition, transition_id, transitions
from tenure.domain.view import DEFAULT_CONFIG, PersonView, absent_view, derive
from tenure.domain.world import World, assemble, fold, merge_world, views

__all__ = [
    "DEFAULT_CONFIG",
    "ERASED",
    "EVENT_TYPES",
    "BuyerKind",
    "ChurnRisk",
    "DeviceActivated",
    "DeviceContribution",
    "DeviceDeactivated",
    "DeviceState",
    "DeviceUsed",
    "DeviceVersion",
    "DomainEvent",
    "EventId",
    "FeedbackSubmitted",
    "IdentityGraph",
    "IdentityLinked",
    "Level",
    "LifecycleConfig",
    "PaymentCompleted",
    "PaymentItem",
    "PaymentRefunded",
    "PersonErasureRequested",
    "PersonState",
    "PersonView",
    "ReferralCompleted",
    "Segment",
    "Stage",
    "SubscriptionCancelled",
    "Transition",
    "VersionedContribution",
    "World",
    "absent_view",
    "apply_device",
    "apply_identity",
    "apply_person",
    "assemble",
    "churn_risk",
    "derive",
    "device_contributions",
    "device_ids_of",
    "device_singleton",
    "erase_from_device",
    "fold",
    "join_devices",
    "join_persons",
    "merge_component",
    "merge_device",
    "merge_identity",
    "merge_person",
    "merge_world",
    "parse_event",
    "person_ids_of",
    "person_singleton",
    "rekey",
    "resolve_persons",
    "tombstone_of",
    "transition_id",
    "transitions",
    "views",
    "with_device_contribution",
]
