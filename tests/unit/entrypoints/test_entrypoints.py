"""Entry points in one place: the command line only parses, the bootstrap builds shared parts,
and ``docs/architecture.md`` lists every entry point."""

from __future__ import annotations

import re
from pathlib import Path

from tenure.config import Settings, TenureConfig
from tenure.entrypoints.bootstrap import database_pool, faust_datadir
from tenure.runtime.database import POOL_TIMEOUT_S
from tests.unit.test_layers import module_imports, package_of

ROOT = Path(__file__).resolve().parents[3]
SHARED = {"bootstrap", "logs", "replay_metrics"}
"""Modules of ``tenure/entrypoints`` that are not themselves an entry point."""


def _settings(tmp_path: Path) -> Settings:
    config = TenureConfig.from_env({"TENURE_STATE_DIR": str(tmp_path)})
    return Settings(config, "postgresql://nobody@127.0.0.1:1/none")


def test_the_command_line_starts_services_and_workers_only_through_entry_points() -> None:
    wired_elsewhere = {"services", "streams", "tenure.projection"}
    found = {
        (module, target)
        for module, targets in module_imports().items()
        if module.startswith("tenure.cli")
        for target in targets
        if package_of(target) in wired_elsewhere or target == "tenure.platform.supervisor"
    }
    assert found == set()


def test_every_entry_point_is_listed_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc.split("## Entry points", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)\.", table, flags=re.MULTILINE))
    modules = {p.stem for p in (ROOT / "tenure" / "entrypoints").glob("*.py")}
    assert listed == modules - SHARED - {"__init__"}


def test_service_pools_give_up_within_seconds_and_commands_wait(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    service = database_pool(settings, min_size=1, max_size=2, open=False, check=True)
    command = database_pool(settings, min_size=1, max_size=1, open=False, short_timeouts=False)
    assert service.timeout == POOL_TIMEOUT_S and service.timeout < command.timeout
    assert service.conninfo == command.conninfo == settings.database_url
    assert service.max_size == 2 and command.max_size == 1


def test_faust_data_lives_in_the_state_dir(tmp_path: Path) -> None:
    assert faust_datadir(_settings(tmp_path)) == tmp_path.resolve() / "faust"
