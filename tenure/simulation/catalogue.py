"""What the simulated maker sells: devices, accessories, plans and services, with prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    """One sellable item: its SKU, payment category and price in minor units."""

    sku: str
    category: str
    amount_minor: int


DEVICES: tuple[Product, ...] = (
    Product("watch-s2", "hardware", 19900),
    Product("tracker-3", "hardware", 7900),
    Product("scale-x", "hardware", 9900),
)
"""Connected devices a buyer pays for (the SKU is also the activated ``product``)."""

FREE_DEVICE = "companion-hub"
"""The device free users get bound to without paying (bundled by a partner)."""

ACCESSORIES: tuple[Product, ...] = (
    Product("band-sport", "accessory", 2900),
    Product("charger-dock", "accessory", 3900),
    Product("case-pro", "accessory", 1900),
)
"""Accessories bought by people already using a device."""

SUBSCRIPTIONS: tuple[Product, ...] = (
    Product("care-plus-12m", "subscription", 4900),
    Product("cloud-1m", "subscription", 499),
)
"""Service plans; a subscriber may later cancel (``subscription.cancelled``)."""

SERVICES: tuple[Product, ...] = (
    Product("coach-session", "service", 2500),
    Product("premium-insights", "service", 999),
)
"""One-off value-added services."""

FEATURES: tuple[str, ...] = ("steps", "sleep", "heart-rate", "workout", "sync")
"""What a ``device.used`` event says the device was used for."""

FEEDBACK_CHANNELS: tuple[str, ...] = ("app", "web", "support")
"""Where feedback comes from."""

DEACTIVATION_REASONS: tuple[str, ...] = ("reset", "resale", "returned", "other")
"""Why a device is deactivated when its user stops."""
