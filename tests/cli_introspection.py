"""The `tenure` commands and their options, read from the real Typer app."""

from __future__ import annotations

from typing import Any

import typer.main

from tenure.cli.app import app


def tenure_commands() -> dict[tuple[str, ...], frozenset[str]]:
    """Every leaf command path and the long option names it accepts."""
    found: dict[tuple[str, ...], frozenset[str]] = {}

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
            return
        options = {
            opt
            for param in cmd.params
            for opt in getattr(param, "opts", ())
            if opt.startswith("--")
        }
        found[path] = frozenset(options)

    walk(typer.main.get_command(app), ())
    return found
