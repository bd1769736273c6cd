"""Bounds of the query API's parameters, and the 422 answer when a request breaks them.

Every free-text parameter (ids in the path, ``after``, ``tier``, ``groups``, ``as_of``) has a
maximum length and may not contain the NUL character (Postgres refuses it in ``text``); the
bounds are declared on the parameters, so they are in the OpenAPI document too. A request
that breaks one is answered ``422 {"error": "<parameter>: <why>"}``, like every other refusal
of the API, never a 500.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

MAX_ID_LENGTH: Final = 256
"""Longest person or device id (path) and ``after`` cursor accepted (event ids are <= 200)."""
MAX_TEXT_LENGTH: Final = 256
"""Longest value of the other free-text parameters (``tier``, ``as_of``)."""
MAX_GROUPS: Final = 20
"""Most group selectors one analytics request may ask for."""
MAX_GROUPS_LENGTH: Final = 4096
"""Longest ``groups`` value (20 selectors of up to 200 characters)."""
NO_NUL: Final = r"^[^\x00]*$"
"""Pattern of every free-text parameter: anything but the NUL character (U+0000)."""


class ErrorBody(BaseModel):
    """A refused request: why, in one sentence."""

    error: str


ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown bearer token"},
    403: {"model": ErrorBody, "description": "Revoked token, or a token without the read scope"},
    422: {"model": ErrorBody, "description": "A parameter is out of its documented bounds"},
}
"""The refusals every route of the query API may answer with (``{"error": ...}``)."""
NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorBody, "description": "No such person or device"}
}

_REASONS: Final[dict[str, str]] = {
    "string_pattern_mismatch": "must not contain the NUL character (U+0000)",
}


def _message(error: dict[str, Any]) -> str:
    location = [str(part) for part in error.get("loc", ()) if part not in ("path", "query")]
    name = ".".join(location) or "request"
    kind = str(error.get("type", ""))
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") != NO_NUL:
        reason = str(error.get("msg", "is not valid"))
    else:
        reason = _REASONS.get(kind) or str(error.get("msg", "is not valid"))
    return f"{name}: {reason}"


async def _refuse(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    message = "; ".join(_message(e) for e in errors) or "the request is not valid"
    return JSONResponse({"error": message}, status_code=422)


def answer_invalid_parameters(app: FastAPI) -> None:
    """Answer parameter validation errors of ``app`` with ``422 {"error": ...}``."""
    app.add_exception_handler(RequestValidationError, _refuse)


def check_group_count(groups: str | None) -> str | None:
    """Why ``groups`` asks for too many selectors, or ``None`` if it does not."""
    if groups is None:
        return None
    count = sum(1 for part in groups.split(",") if part.strip())
    if count > MAX_GROUPS:
        return f"groups: {count} group selectors; at most {MAX_GROUPS} per request"
    return None
