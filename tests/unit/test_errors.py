"""Every exception class Tenure defines derives from ``tenure.errors.TenureError``.

Read from the source (AST): a class is an exception when one of its bases is a built-in
exception or another exception class defined here; each must reach ``TenureError``.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

from tenure.errors import TenureError

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def defined_classes() -> dict[str, tuple[str, list[str]]]:
    """``name -> (where, base names)`` of every class under tenure/, services/, streams/."""
    found: dict[str, tuple[str, list[str]]] = {}
    for source in ("tenure", "services", "streams"):
        for path in sorted((ROOT / source).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found[node.name] = (where, [_base_name(b) for b in node.bases])
    return found


def outside_the_root(classes: dict[str, tuple[str, list[str]]]) -> list[str]:
    """Exception classes that do not derive from ``TenureError`` (where and name)."""

    def is_exception(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name in BUILTIN_EXCEPTIONS or name == "TenureError":
            return True
        if name not in classes or name in seen:
            return False
        return any(is_exception(b, seen | {name}) for b in classes[name][1])

    def is_rooted(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "TenureError":
            return True
        if name not in classes or name in seen:
            return False
        return any(is_rooted(b, seen | {name}) for b in classes[name][1])

    return sorted(
        f"{where} {name}"
        for name, (where, _) in classes.items()
        if name != "TenureError" and is_exception(name) and not is_rooted(name)
    )


def test_every_tenure_exception_derives_from_the_root() -> None:
    assert outside_the_root(defined_classes()) == []


def test_the_check_finds_an_exception_outside_the_root() -> None:
    classes = {
        "Rooted": ("a.py:1", ["TenureError", "ValueError"]),
        "Loose": ("a.py:2", ["RuntimeError"]),
        "LooseChild": ("a.py:3", ["Loose"]),
        "Plain": ("a.py:4", ["object"]),
    }
    assert outside_the_root(classes) == ["a.py:2 Loose", "a.py:3 LooseChild"]


def test_the_root_keeps_the_builtin_bases_handlers_catch() -> None:
    from tenure.contract.codec import MalformedBody
    from tenure.runtime.process import StartupError

    assert issubclass(MalformedBody, TenureError) and issubclass(MalformedBody, ValueError)
    assert issubclass(StartupError, TenureError) and issubclass(StartupError, RuntimeError)
