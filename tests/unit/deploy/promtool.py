"""Running Prometheus' ``promtool`` (Debian package ``prometheus``, installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import skip_tier

PROMTOOL_MISSING = "the `promtool` binary is missing (apt-get install prometheus)"


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run ``promtool ARGS`` and return what it printed; fail the test when it exits non-zero.

    Skips the test (fails it under TENURE_REQUIRE_ALL_TIERS=1) when promtool is not installed.
    """
    done = run_promtool(*args, stdin=stdin, cwd=cwd)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def run_promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool ARGS`` whatever its exit code (skip the test when it is missing)."""
    binary = shutil.which("promtool")
    if binary is None:
        skip_tier("prometheus", PROMTOOL_MISSING)
        raise AssertionError("unreachable")  # skip_tier raises
    return subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd
    )
