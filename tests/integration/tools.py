"""Third-party clients the tests drive, installed on first use into the test cache folder.

They are kept out of the project's environment: ``openapi-python-client`` pins
``typer<0.28`` while Tenure pins ``typer==0.29.1``, so it gets its own virtualenv; the
CloudEvents JavaScript SDK is an npm package. Both live under ``TENURE_CACHE_DIR``
(default ``~/.cache/tenure``) and are reused; a machine that cannot install them skips the
test's tier (fails it under ``TENURE_REQUIRE_ALL_TIERS=1``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tenure.runtime.apache_kafka import cache_dir
from tests.conftest import skip_tier

OPENAPI_PYTHON_CLIENT = "openapi-python-client==0.29.1"
CLOUDEVENTS_JS = "cloudevents@10"


def openapi_python_client() -> Path:
    """The ``openapi-python-client`` executable, in its own virtualenv in the cache."""
    venv = cache_dir() / OPENAPI_PYTHON_CLIENT.replace("==", "-")
    executable = venv / "bin" / "openapi-python-client"
    complete = venv / ".complete"
    if complete.exists():
        return executable
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", OPENAPI_PYTHON_CLIENT],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        skip_tier("openapi-client", f"cannot install {OPENAPI_PYTHON_CLIENT}: {exc}")
    complete.touch()
    return executable


def cloudevents_js() -> Path:
    """A folder whose ``node_modules`` holds the CloudEvents JavaScript SDK (npm)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        skip_tier("cloudevents-js", "node or npm is not installed")
    prefix = cache_dir() / "npm-cloudevents-10"
    if (prefix / "node_modules" / "cloudevents" / "package.json").exists():
        return prefix
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [
                str(npm),
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                CLOUDEVENTS_JS,
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        skip_tier("cloudevents-js", f"cannot install {CLOUDEVENTS_JS} from npm: {exc}")
    return prefix
