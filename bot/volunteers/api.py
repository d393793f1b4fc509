"""The registry's JSON API (bearer token, see :mod:`storage.api_tokens`).

- ``GET /api/v1/volunteers/coverage`` — coverage per village and township (CONTRACT.md shape);
  ``?township=CODE`` for one township, ``?include_sample=true`` to count sample (demo) data.
  Roles ``admin`` and ``analyst`` see every township; a ``staff`` token sees its own township
  only (another township is 403).
- ``GET /api/v1/volunteers`` — registered liaisons, mobile numbers masked; ``?township=``,
  ``?village=``, ``?include_sample=true``. Roles ``admin`` and ``staff`` (own township).

Errors use the JSON error shape of :func:`core.http.json_error`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.volunteers.reports import liaison_dict
from bot.volunteers.store import Keys, coverage, list_liaisons, township_by_code
from core.appkeys import SESSIONS, SETTINGS
from core.http import bearer_token, json_error
from core.i18n import N_
from storage.api_tokens import authenticate
from storage.models_surveys import ApiToken

__all__ = ["API_ROUTES", "OPENAPI_PATHS", "setup"]

COVERAGE_ROLES = frozenset({"admin", "analyst", "staff"})
LIST_ROLES = frozenset({"admin", "staff"})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


async def _authorize(
    request: web.Request, session: AsyncSession, roles: frozenset[str]
) -> tuple[ApiToken | None, str | None, web.Response | None]:
    """The token and the township it may see (``None`` = all), or the error to answer."""
    presented = bearer_token(request)
    if presented is None:
        return (
            None,
            None,
            json_error(request, 401, headers={"WWW-Authenticate": 'Bearer realm="pufa"'}),
        )
    token = await authenticate(session, presented)
    if token is None:
        return (
            None,
            None,
            json_error(request, 401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}),
        )
    if token.role not in roles:
        return token, None, json_error(request, 403)
    wanted = request.query.get("township") or None
    if token.role == "staff":
        if wanted is not None and wanted != token.township:
            return (
                token,
                None,
                json_error(
                    request,
                    403,
                    "other_township",
                    N_("A staff token sees its own township only."),
                ),
            )
        wanted = token.township
    if wanted is not None and await township_by_code(session, wanted) is None:
        return (
            token,
            None,
            json_error(request, 404, "unknown_township", N_("Unknown township code.")),
        )
    return token, wanted, None


async def get_coverage(request: web.Request) -> web.Response:
    """``GET /api/v1/volunteers/coverage``."""
    async with request.app[SESSIONS]() as session:
        _token, township, error = await _authorize(request, session, COVERAGE_ROLES)
        if error is not None:
            return error
        figures = await coverage(
            session, township=township, include_sample=_flag(request, "include_sample")
        )
    return web.json_response(figures.to_dict(), dumps=_dumps)


async def get_liaisons(request: web.Request) -> web.Response:
    """``GET /api/v1/volunteers`` (numbers masked)."""
    keys = Keys(request.app[SETTINGS].secret())
    async with request.app[SESSIONS]() as session:
        _token, township, error = await _authorize(request, session, LIST_ROLES)
        if error is not None:
            return error
        found = await list_liaisons(
            session,
            keys,
            township=township,
            village=request.query.get("village") or None,
            include_sample=_flag(request, "include_sample"),
        )
    return web.json_response([liaison_dict(x) for x in found], dumps=_dumps)


API_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/volunteers/coverage", get_coverage),
    ("GET", "/api/v1/volunteers", get_liaisons),
]
"""The registry's routes: method, path, handler."""


def setup(app: web.Application, catalog: None = None) -> None:
    """Add the registry's routes to ``app``."""
    for method, path, handler in API_ROUTES:
        app.router.add_route(method, path, handler)


_ERROR = {"$ref": "#/components/schemas/Error"}
_PARAMS = [
    {"name": "township", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "include_sample", "in": "query", "required": False, "schema": {"type": "boolean"}},
]
OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/volunteers/coverage": {
        "get": {
            "summary": "法律明白人 coverage per village and township",
            "security": [{"bearer": []}],
            "parameters": _PARAMS,
            "responses": {
                "200": {"description": "villages[] and townships[] (CONTRACT.md)"},
                "401": {
                    "description": "no or bad token",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "403": {
                    "description": "role or township not allowed",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "404": {
                    "description": "unknown township",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    },
    "/api/v1/volunteers": {
        "get": {
            "summary": "Registered liaisons, mobile numbers masked",
            "security": [{"bearer": []}],
            "parameters": [
                *_PARAMS,
                {"name": "village", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "liaisons"},
                "401": {
                    "description": "no or bad token",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "403": {
                    "description": "role or township not allowed",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "404": {
                    "description": "unknown township",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    },
}
"""These routes in OpenAPI 3 form, for the API description (``/api/v1/openapi.json``)."""
