"""The CLI offers every command the docs and the platform supervisor use."""

from __future__ import annotations

from tests.cli_introspection import tenure_commands


def test_commands_exist() -> None:
    commands = tenure_commands()
    expected = {
        ("up",): {"--demo"},
        ("status",): {"--json"},
        ("migrate",): set(),
        ("topics", "create"): set(),
        ("token", "create"): {"--producer"},
        ("token", "list"): set(),
        ("token", "revoke"): set(),
        ("serve", "ingest"): {"--host", "--port"},
        ("worker", "archiver"): {"--metrics-port"},
        ("worker", "sdk-validator"): {"--metrics-port"},
        ("worker", "projector"): {"--metrics-port", "--stages"},
        ("audiences", "list"): {"--all"},
        ("audiences", "show"): set(),
        ("audiences", "export"): {"--format", "--output", "--include-suppressed"},
        ("audiences", "follow"): {"--group", "--from-now", "--idle-timeout", "--max"},
    }
    for path, options in expected.items():
        assert path in commands, path
        assert options <= commands[path], (path, commands[path])


def test_version_is_the_installed_distribution_version() -> None:
    from importlib.metadata import version

    from typer.testing import CliRunner

    from tenure.cli.app import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"tenure {version('tenure')}\n"


def test_projector_stages_are_checked_before_anything_starts() -> None:
    from typer.testing import CliRunner

    from tenure.cli.app import app

    result = CliRunner().invoke(app, ["worker", "projector", "--stages", "both"])
    assert result.exit_code == 2
    assert "must be all or a list of apply,derive,follow" in result.output
