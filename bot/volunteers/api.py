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
from core.http import bearer_token, json_error, request_locale
from core.i18n import N_, translator
from storage.api_tokens import authenticate
from storage.models_surveys import ApiToken

__all__ = ["API_ROUTES", "OPENAPI_PATHS", "setup"]

COVERAGE_ROLES = frozenset({"admin", "analyst", "staff"})
LIST_ROLES = frozenset({"admin", "staff"})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _flag(request: web.Request, name: str) -> bool | None:
    """The boolean query parameter ``name`` (false when absent), or ``None`` when it is neither
    true nor false: a typo must not quietly give the figures without the sample."""
    if name not in request.query:
        return False
    return _FLAGS.get(request.query[name].lower())


def _bad_flag(request: web.Request, name: str) -> web.Response:
    return json_error(
        request,
        422,
        fields={
            name: {
                "code": "invalid",
                "message": translator(request_locale(request))._(
                    N_("Use include_sample=true or include_sample=false.")
                ),
                "params": {},
            }
        },
    )


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
        include_sample = _flag(request, "include_sample")
        if include_sample is None:
            return _bad_flag(request, "include_sample")
        figures = await coverage(session, township=township, include_sample=include_sample)
    return web.json_response(figures.to_dict(), dumps=_dumps)


async def get_liaisons(request: web.Request) -> web.Response:
    """``GET /api/v1/volunteers`` (numbers masked)."""
    keys = Keys(request.app[SETTINGS].secret())
    async with request.app[SESSIONS]() as session:
        _token, township, error = await _authorize(request, session, LIST_ROLES)
        if error is not None:
            return error
        include_sample = _flag(request, "include_sample")
        if include_sample is None:
            return _bad_flag(request, "include_sample")
        found = await list_liaisons(
            session,
            keys,
            township=township,
            village=request.query.get("village") or None,
            include_sample=include_sample,
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
_COVERAGE = {
    "type": "object",
    "required": ["villages", "townships", "include_sample"],
    "properties": {
        "villages": {"type": "array", "items": {"type": "object"}},
        "townships": {"type": "array", "items": {"type": "object"}},
        "include_sample": {"type": "boolean"},
    },
}
_LIAISON = {
    "type": "object",
    "required": ["id", "township", "village", "name", "mobile", "sample"],
    "properties": {
        "id": {"type": "integer"},
        "township": {"type": "string"},
        "village": {"type": "string"},
        "name": {"type": "string"},
        "mobile": {"type": "string", "description": "masked"},
        "sample": {"type": "boolean"},
        "registered_at": {"type": "string", "format": "date-time"},
    },
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/volunteers/coverage": {
        "get": {
            "summary": "法律明白人 coverage per village and township",
            "security": [{"bearer": []}],
            "parameters": _PARAMS,
            "responses": {
                "200": {
                    "description": "villages[] and townships[] (CONTRACT.md)",
                    "content": {"application/json": {"schema": _COVERAGE}},
                },
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
                "422": {
                    "description": "include_sample neither true nor false",
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
                "200": {
                    "description": "liaisons",
                    "content": {
                        "application/json": {"schema": {"type": "array", "items": _LIAISON}}
                    },
                },
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
                "422": {
                    "description": "include_sample neither true nor false",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    },
}
"""These routes in OpenAPI 3 form, for the API description (``/api/v1/openapi.json``)."""
