"""The embedded Postgres's settings: shared buffers sized to the machine."""

from __future__ import annotations

import pytest

from tenure.runtime.postgres import SERVER_SETTINGS, server_settings, shared_buffers_mb

MB = 1024 * 1024
GB = 1024 * MB


@pytest.mark.parametrize(
    ("memory", "expected_mb"),
    [(256 * MB, 128), (512 * MB, 128), (2 * GB, 512), (16 * GB, 4096), (23 * GB, 5888),
     (32 * GB, 8192), (256 * GB, 8192)],
)  # fmt: skip
def test_shared_buffers_are_a_quarter_of_memory_within_bounds(
    memory: int, expected_mb: int
) -> None:
    assert shared_buffers_mb(memory) == expected_mb


def test_every_setting_is_one_dash_c_pair() -> None:
    args = server_settings(16 * GB)
    assert args[::2] == ["-c"] * (len(SERVER_SETTINGS) + 1)
    pairs = dict(arg.split("=", 1) for arg in args[1::2])
    assert pairs == {**dict(SERVER_SETTINGS), "shared_buffers": "4096MB"}
