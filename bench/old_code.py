"""A module as it was at an earlier commit, read with ``git show``: the same-run baseline of
benchmarks that compare code with the code it replaced."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType


def module_at(commit: str, path: str, name: str) -> ModuleType:
    """The module at ``path`` (relative to the repository) as of ``commit``, imported under
    ``name`` (its own imports resolve to today's packages)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    file = Path(tempfile.mkdtemp(prefix=f"{name}-")) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
