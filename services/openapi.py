"""What both HTTP services declare alike in their OpenAPI documents: auth scheme, operation ids."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

BEARER = HTTPBearer(
    auto_error=False,  # the routes answer 401/403 themselves, with the reason
    scheme_name="bearerAuth",
    description="A Tenure token (`tenure token create`): scope `ingest` for `POST /v1/events`, "
    "scope `read` (`--scope read`) for the query API, scope `audiences:write` for "
    "`PUT`/`DELETE /v1/audiences/{name}`.",
)
"""The security scheme of both services: add ``Security(BEARER)`` to every protected route.

It only declares the scheme (so the docs page can send a token and generated clients know
it); :func:`services.auth.require_scope` (query) and :class:`services.auth.TokenAuthenticator`
(ingest) check the header and answer 401/403.
"""


def operation_id(route: APIRoute) -> str:
    """The ``operationId`` of a route: its name (``get_person``, ``post_events``).

    Generated clients name their functions after it; route names are unique per service.
    """
    return route.name
