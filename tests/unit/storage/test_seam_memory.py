"""The storage seam's contract (``tests/seam_contract.py``) on the memory backend."""

from __future__ import annotations

import pytest

from tenure.storage.memory_store import memory_store
from tenure.storage.seam import ProjectionStore
from tests.seam_contract import SeamContract


class TestMemorySeam(SeamContract):
    """Every contract test, on :func:`tenure.storage.memory_store.memory_store`."""

    @pytest.fixture
    def store(self) -> ProjectionStore:
        return memory_store()
