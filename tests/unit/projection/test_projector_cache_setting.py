"""TENURE_PROJECTOR_CACHE_MB reaches the projector's caches: their bounds add up to it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenure.config import TenureConfig
from tenure.projection.projector import Projector
from tenure.storage.state_cache import RAW_STATES_SHARE


def test_the_setting_bounds_every_cache_of_the_projector() -> None:
    mib = TenureConfig.from_env({"TENURE_PROJECTOR_CACHE_MB": "40"}).projector_cache_mb
    none: Any = None  # no database or broker is touched by the constructor
    projector = Projector(none, none, allowed_lateness=timedelta(0), cache_bytes=mib << 20)
    caches = projector.caches
    total = caches.devices.limit_bytes + caches.persons.limit_bytes + projector.refs.limit_bytes
    assert total == 40 << 20
    assert projector.refs.limit_bytes == (40 << 20) - int((40 << 20) * RAW_STATES_SHARE)
