"""The root of Tenure's exceptions.

Every exception class Tenure defines derives from :class:`TenureError`, so a caller can tell
Tenure's own refusals and failures from a library's or a bug's with one ``except`` clause.
Each also keeps the built-in base it had (``ValueError`` for bad input, ``RuntimeError`` for
a failed operation), so existing handlers keep catching it.
"""

from __future__ import annotations

__all__ = ["TenureError"]


class TenureError(Exception):
    """Base class of every exception Tenure defines."""
