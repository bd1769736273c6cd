"""The audience routes: definitions and sizes, members (pages and changes), create and retire.

Reads need a ``read`` token; ``PUT`` and ``DELETE`` a token of scope ``audiences:write``
(``tenure token create --scope audiences:write``). See ``docs/audiences.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import anyio.to_thread
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from services.auth import require_scope
from services.query.audience_models import (
    NAME_DOC,
    NAME_REGEX,
    Audience,
    AudienceBody,
    AudienceList,
    MemberChanges,
    MemberPage,
)
from services.query.params import ERROR_RESPONSES, MAX_ID_LENGTH, NO_NUL, ErrorBody
from tenure.domain.audience import AudienceError
from tenure.storage import audience_definitions, audience_reads
from tenure.storage.audience_definitions import StoredAudience
from tenure.storage.connection import Conn, read_only_snapshot
from tenure.storage.person_changes import ChangeCursor, InvalidCursor

WRITE_SCOPE: Final = "audiences:write"
"""The scope of the tokens that may create, change and retire audiences."""
NO_AUDIENCE: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorBody, "description": "No such audience"}
}


class UnreadableBody(BaseModel):
    """A body that is not JSON text (FastAPI's own answer, before any other check)."""

    detail: str


WRITE_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    **ERROR_RESPONSES,
    403: {"model": ErrorBody, "description": f"Revoked token, or not of scope {WRITE_SCOPE}"},
    422: {"model": ErrorBody, "description": "Not a valid audience (the field is named)"},
}


def audience_body(stored: StoredAudience, size: audience_reads.AudienceSize) -> dict[str, Any]:
    """The answer for one audience: its document, provenance and size."""
    return {
        **stored.definition.to_document(),
        "source": stored.source,
        "created_at": stored.created_at,
        "retired_at": stored.retired_at,
        "size": {
            "members": size.members,
            "contactable": size.contactable,
            "suppressed": size.suppressed,
        },
    }


def list_body(conn: Conn) -> dict[str, Any]:
    """``GET /v1/audiences``: every current audience with its size."""
    with read_only_snapshot(conn):
        stored = audience_definitions.current(conn)
        sizes = audience_reads.sizes(conn)
    empty = audience_reads.AudienceSize()
    return {"audiences": [audience_body(s, sizes.get(s.definition.name, empty)) for s in stored]}


def one_body(conn: Conn, name: str) -> dict[str, Any] | None:
    """``GET /v1/audiences/{name}`` (``None``: no such audience)."""
    with read_only_snapshot(conn):
        stored = audience_definitions.get(conn, name)
        sizes = audience_reads.sizes(conn, name) if stored is not None else {}
    if stored is None:
        return None
    return audience_body(stored, sizes.get(name, audience_reads.AudienceSize()))


def members_body(
    conn: Conn, name: str, after: str | None, limit: int, include_suppressed: bool
) -> dict[str, Any] | None:
    """A page of members (``None``: no such audience)."""
    with read_only_snapshot(conn):
        if audience_definitions.get(conn, name) is None:
            return None
        rows = audience_reads.members_page(
            conn, name, after, limit, include_suppressed=include_suppressed
        )
    next_cursor = rows[-1]["person_id"] if len(rows) == limit else None
    return {"audience": name, "members": rows, "next": next_cursor}


def member_changes_body(
    conn: Conn, name: str, cursor: ChangeCursor, limit: int
) -> dict[str, Any] | None:
    """The member changes after ``cursor`` (``None``: no such audience)."""
    with read_only_snapshot(conn):
        if audience_definitions.get(conn, name) is None:
            return None
        page = audience_reads.members_changed(conn, name, cursor, limit)
    return {
        "audience": name,
        "members": page.members,
        "exited": page.exited,
        "next": page.next.encode(),
    }


def _missing(name: str) -> JSONResponse:
    return JSONResponse({"error": f"no such audience: {name!r}"}, status_code=404)


def audiences_router(pool: ConnectionPool) -> APIRouter:
    """The ``/v1/audiences`` routes over ``pool``."""
    router = APIRouter(prefix="/v1/audiences", tags=["audiences"])
    read = [require_scope(pool, "read")]
    write = [require_scope(pool, WRITE_SCOPE)]

    def fetch(fn: Any, *args: Any) -> Any:
        with pool.connection() as conn:
            return fn(conn, *args)

    async def run(fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fetch, fn, *args)

    any_name = Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL, description=NAME_DOC)

    @router.get(
        "",
        summary="Every audience: its definition and size (contactable, suppressed by reason)",
        response_model=AudienceList,
        dependencies=read,
        responses=ERROR_RESPONSES,
    )
    async def list_audiences() -> Any:
        return await run(list_body)

    @router.get(
        "/{name}",
        summary="One audience (retired ones too): definition and size",
        response_model=Audience,
        dependencies=read,
        responses={**ERROR_RESPONSES, **NO_AUDIENCE},
    )
    async def get_audience(name: str = any_name) -> Any:
        body = await run(one_body, name)
        return _missing(name) if body is None else body

    @router.get(
        "/{name}/members",
        summary="The audience's members in person id order, or their changes since a "
        "cursor (updated_since)",
        response_model=MemberChanges | MemberPage,
        dependencies=read,
        responses={**ERROR_RESPONSES, **NO_AUDIENCE},
    )
    async def list_members(
        name: str = any_name,
        cursor: str | None = Query(
            None,
            max_length=MAX_ID_LENGTH,
            pattern=NO_NUL,
            description="The 'next' of the previous page (the last person_id).",
        ),
        limit: int = Query(100, ge=1, le=1000),
        include_suppressed: bool | None = Query(
            None, description="Pages: also members not to be contacted now (default false)."
        ),
        updated_since: str | None = Query(
            None,
            max_length=MAX_ID_LENGTH * 2,
            pattern=NO_NUL,
            description="Follow changes: '0' for all, then the 'next' of the previous answer. "
            "Answers the members that entered or changed (suppressed ones too, with their "
            "reason) and the people who left, in change order; not with cursor or "
            "include_suppressed.",
        ),
    ) -> Any:
        if updated_since is None:
            body = await run(members_body, name, cursor, limit, bool(include_suppressed))
            return _missing(name) if body is None else body
        if cursor is not None or include_suppressed is not None:
            error = "updated_since: not with cursor or include_suppressed"
            return JSONResponse({"error": error}, status_code=422)
        try:
            since = ChangeCursor.decode(updated_since)
        except InvalidCursor as exc:
            return JSONResponse({"error": f"updated_since: {exc}"}, status_code=422)
        body = await run(member_changes_body, name, since, limit)
        return _missing(name) if body is None else body

    @router.put(
        "/{name}",
        summary="Create an audience or give it a new version (scope audiences:write)",
        response_model=Audience,
        dependencies=write,
        responses={
            **WRITE_ERRORS,
            201: {"model": Audience, "description": "A new version"},
            400: {"model": UnreadableBody, "description": "The body is not JSON text"},
        },
    )
    async def put_audience(
        name: Annotated[str, Path(pattern=NAME_REGEX, max_length=63, description=NAME_DOC)],
        body: AudienceBody,
    ) -> Any:
        document = {"name": name, **body.model_dump(exclude_none=True, mode="json")}
        try:
            _, written = await run(audience_definitions.save, document)
        except AudienceError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        answer = Audience.model_validate(await run(one_body, name))
        return JSONResponse(answer.model_dump(mode="json"), status_code=201 if written else 200)

    @router.delete(
        "/{name}",
        summary="Retire an audience (scope audiences:write); its definitions are kept",
        response_model=Audience,
        dependencies=write,
        responses={**WRITE_ERRORS, **NO_AUDIENCE},
    )
    async def delete_audience(name: str = any_name) -> Any:
        stored = await run(audience_definitions.retire, name)
        if stored is None:
            return _missing(name)
        return await run(one_body, name)

    return router
