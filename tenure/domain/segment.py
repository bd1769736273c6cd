"""Segments: the two independent roles, customer (pays) and user (uses), combined."""

from __future__ import annotations

from enum import StrEnum


class Segment(StrEnum):
    """Which of the two roles a person holds."""

    CUSTOMER_AND_USER = "customer_and_user"
    CUSTOMER_ONLY = "customer_only"
    USER_ONLY = "user_only"
    PROSPECT = "prospect"


class BuyerKind(StrEnum):
    """Whether a customer bought once or came back."""

    ONE_TIME_BUYER = "one_time_buyer"
    REPEAT_BUYER = "repeat_buyer"


def segment_of(is_customer: bool, is_user: bool) -> Segment:
    """The segment for the two role flags."""
    if is_customer:
        return Segment.CUSTOMER_AND_USER if is_user else Segment.CUSTOMER_ONLY
    return Segment.USER_ONLY if is_user else Segment.PROSPECT


def buyer_kind_of(paid_orders: int, repeat_min_orders: int) -> BuyerKind | None:
    """One-time or repeat buyer for a customer; ``None`` for somebody who never paid."""
    if paid_orders <= 0:
        return None
    if paid_orders >= repeat_min_orders:
        return BuyerKind.REPEAT_BUYER
    return BuyerKind.ONE_TIME_BUYER
