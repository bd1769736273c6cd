"""Money: paid orders, refunds and net spend as of an instant.

An order is paid unless it is fully refunded: it has at least one refund and, for every
currency in the order, the refunds in that currency reach the order's amount. Refunds are
capped per order and currency at the order's amount; refunds in a currency the order
does not have, or for an order this person did not pay, are ignored.
"""

from __future__ import annotations

from datetime import datetime

from tenure.domain.person import Order, PersonState, Refund


def refunds_by_order(state: PersonState, as_of: datetime) -> dict[str, list[Refund]]:
    """Refunds known at ``as_of``, grouped by order id."""
    grouped: dict[str, list[Refund]] = {}
    for refund in state.refunds.values():
        if refund.at <= as_of:
            grouped.setdefault(refund.order_id, []).append(refund)
    return grouped


def refunded_amounts(order: Order, refunds: list[Refund]) -> dict[str, int]:
    """Refunded amount per currency of the order, capped at the order's amount."""
    amounts = order.amounts()
    refunded: dict[str, int] = {}
    for refund in refunds:
        if refund.currency in amounts:
            refunded[refund.currency] = refunded.get(refund.currency, 0) + refund.amount_minor
    return {c: min(amounts[c], max(0, value)) for c, value in refunded.items()}


def is_fully_refunded(order: Order, refunds: list[Refund]) -> bool:
    """Whether refunds cover the whole order in every currency it was paid in."""
    if not refunds:
        return False
    refunded = refunded_amounts(order, refunds)
    return all(refunded.get(c, 0) >= amount for c, amount in order.amounts().items())


def paid_orders(state: PersonState, as_of: datetime) -> list[Order]:
    """Orders completed at or before ``as_of`` and not fully refunded, by time then id."""
    refunds = refunds_by_order(state, as_of)
    orders = [
        order
        for order in state.orders.values()
        if order.at <= as_of and not is_fully_refunded(order, refunds.get(order.order_id, []))
    ]
    return sorted(orders, key=lambda o: (o.at, o.order_id))


def refunded_orders(state: PersonState, as_of: datetime) -> list[Order]:
    """Orders completed at or before ``as_of`` that are fully refunded by then."""
    refunds = refunds_by_order(state, as_of)
    return sorted(
        (
            order
            for order in state.orders.values()
            if order.at <= as_of and is_fully_refunded(order, refunds.get(order.order_id, []))
        ),
        key=lambda o: (o.at, o.order_id),
    )


def net_spend(state: PersonState, as_of: datetime) -> dict[str, int]:
    """Net spend per currency (minor units): orders minus capped refunds, sorted by currency."""
    refunds = refunds_by_order(state, as_of)
    totals: dict[str, int] = {}
    for order in state.orders.values():
        if order.at > as_of:
            continue
        refunded = refunded_amounts(order, refunds.get(order.order_id, []))
        for currency, amount in order.amounts().items():
            totals[currency] = totals.get(currency, 0) + amount - refunded.get(currency, 0)
    return dict(sorted(totals.items()))
