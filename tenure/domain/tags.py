"""Profile tags: short labels that together build a 360-degree view of a person."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagInputs:
    """Facts about a person (as of an instant) that tags are read from."""

    gift_payer: bool = False
    gift_recipient: bool = False
    sponsor: bool = False
    referrer: bool = False
    referred: bool = False
    feedback_giver: bool = False
    subscriber: bool = False
    subscription_cancelled: bool = False
    hardware_owner: bool = False
    multi_device: bool = False
    never_activated: bool = False
    refunded: bool = False
    repeat_buyer: bool = False
    super_user: bool = False


TAG_NAMES: tuple[str, ...] = tuple(TagInputs.__dataclass_fields__)
"""Every tag that can appear on a person, in alphabetical order once sorted."""


def profile_tags(inputs: TagInputs) -> tuple[str, ...]:
    """The sorted tags whose flag is set."""
    return tuple(sorted(name for name in TAG_NAMES if getattr(inputs, name)))
