"""The event-time instant projections are derived as of (the rule lives in the domain).

Kept so the projection's modules and tests can keep importing it from here; the rule itself is
:mod:`tenure.domain.watermark`, where the analytics stage can reach it without importing up.
"""

from __future__ import annotations

from tenure.domain.watermark import DEFAULT_ALLOWED_LATENESS, watermark

__all__ = ["DEFAULT_ALLOWED_LATENESS", "watermark"]
