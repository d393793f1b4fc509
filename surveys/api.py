"""The survey JSON API (``/api/v1``) and the wiring of the survey feature into the app.

Routes (CONTRACT.md):

- ``GET /api/v1/surveys`` — surveys accepting answers now;
- ``GET /api/v1/surveys/{survey}`` — a definition, localized (``?lang=`` / ``Accept-Language``);
- ``POST /api/v1/surveys/{survey}/responses`` — submit; 201 created, 200 replay of the same
  ``Idempotency-Key`` with the same submission (422 ``idempotency_key_reused`` when the key
  comes back with different answers, token or ``src``), 403 ``invitation_required`` (an
  invitation-only survey without a token), 409 already answered / token used, 410 closed,
  422 invalid (one error per field), 413 over 64 KiB, 429 too many open-link submissions from
  one client;
- ``GET /api/v1/surveys/{survey}/results`` — bearer token; ``?by=township|channel``;
  sample (demo) responses only with ``?include_sample=true`` (the body's ``sample_included``
  says whether they are in the figures);
- their OpenAPI description is :data:`surveys.openapi.PART` (merged into
  ``/api/v1/openapi.json`` by the composition root).

The survey feature's ``routes`` hook (:func:`surveys.routes.setup`) adds these with the mobile
pages; what both share lives in :mod:`surveys.intake`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from core.appkeys import SESSIONS
from core.clock import utcnow
from core.http import MAX_BODY, json_error, parse_json, request_locale
from core.i18n import N_, Translator, negotiate, translator
from storage.api_tokens import authenticate
from surveys.intake import (
    TOKEN_RE,
    RateLimited,
    field_errors,
    get_survey,
    set_respondent_cookie,
    submit_request,
    survey_states,
    township_exists,
)
from surveys.keys import SURVEYS
from surveys.results import compute_results, has_answers
from surveys.state import state_is_open
from surveys.submission import (
    AlreadyAnswered,
    IdempotencyKeyReused,
    InvalidAnswers,
    InvitationRequired,
    SubmitError,
    SubmitResult,
    SurveyClosed,
    TokenInvalid,
    TokenUsed,
)

__all__ = ["API_ROUTES"]

RESULTS_ROLES: frozenset[str] = frozenset({"admin", "analyst", "staff"})
"""Roles that may read survey results (``staff`` only their own township's)."""
MAX_IDEMPOTENCY_KEY = 128
_CODE_RE = re.compile(r"[A-Za-z0-9-]{1,24}")
_KEY_RE = re.compile(r"[\x21-\x7e]{1,128}")
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _dumps(obj: Any) -> str:
    # orjson: UTF-8 as is (no \u escapes), a tenth of the standard library's time.
    return orjson.dumps(obj).decode()


# --------------------------------------------------------------------------------------------
# Handlers


async def list_surveys(request: web.Request) -> web.Response:
    """``GET /api/v1/surveys``: the surveys that accept answers now."""
    locale = request_locale(request)
    states = await survey_states(request.app)
    now = utcnow()
    out = []
    for code, survey in request.app[SURVEYS].items():
        state = states.get(code)
        if state is None or not state_is_open(state.status, state.opens_at, state.closes_at, now):
            continue
        public = survey.to_public(locale)
        out.append(
            {
                "code": code,
                "title": public["title"],
                "opens_at": public["opens_at"],
                "closes_at": public["closes_at"],
            }
        )
    return web.json_response(out, dumps=_dumps)


async def get_definition(request: web.Request) -> web.Response:
    """``GET /api/v1/surveys/{survey}``: the definition in the request's locale."""
    survey = get_survey(request)
    return web.json_response(survey.to_public(request_locale(request)), dumps=_dumps)


async def post_response(request: web.Request) -> web.Response:
    """``POST /api/v1/surveys/{survey}/responses``."""
    survey = get_survey(request)
    t = translator(request_locale(request))
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    raw = await request.read()
    try:
        body = parse_json(raw)
    except ValueError:
        return json_error(request, 400, "bad_json", N_("The body is not valid JSON."))
    if not isinstance(body, dict):
        return json_error(request, 400, "bad_json", N_("The body must be a JSON object."))
    fields: dict[str, Any] = {}
    answers = body.get("answers")
    if not isinstance(answers, dict):
        fields["answers"] = {
            "code": "invalid_type",
            "message": t._(N_("Send the answers as an object keyed by question code.")),
            "params": {},
        }
    token = body.get("token")
    if token is not None and (not isinstance(token, str) or not TOKEN_RE.fullmatch(token)):
        fields["token"] = {
            "code": "token_invalid",
            "message": t._(N_("This invitation link is not valid.")),
            "params": {},
        }
    src = body.get("src")
    if src is not None and (
        not isinstance(src, str)
        or not _CODE_RE.fullmatch(src)
        or not await township_exists(request, src)
    ):
        fields["src"] = {
            "code": "unknown_township",
            "message": t._(N_("Unknown township code.")),
            "params": {},
        }
    lang = body.get("lang")
    locale = negotiate(lang, t.locale) if isinstance(lang, str) and lang else t.locale
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY_RE.fullmatch(key):
        fields["Idempotency-Key"] = {
            "code": "invalid",
            "message": t._(N_("The Idempotency-Key header must be 1 to 128 visible characters.")),
            "params": {},
        }
    if fields or not isinstance(answers, dict):
        return json_error(request, 422, fields=fields)
    outcome, cookie = await submit_request(
        request, survey, answers, token=token, src=src, locale=locale, key=key, channel="api"
    )
    return render_outcome(request, outcome, cookie, t)


def render_outcome(
    request: web.Request,
    outcome: SubmitResult | SubmitError,
    cookie: str | None,
    t: Translator,
) -> web.Response:
    """The JSON response for a submission outcome."""
    if isinstance(outcome, RateLimited):
        return json_error(
            request,
            429,
            "rate_limited",
            N_("Too many answers were sent just now. Please try again in a minute."),
            headers={"Retry-After": str(outcome.retry_after)},
        )
    if isinstance(outcome, SubmitResult):
        body = {
            "response_id": outcome.response_id,
            "survey": outcome.survey,
            "township": outcome.township,
            "created": outcome.created,
        }
        response = web.json_response(body, status=201 if outcome.created else 200, dumps=_dumps)
        set_respondent_cookie(response, cookie)
        return response
    if isinstance(outcome, SurveyClosed):
        return json_error(
            request, 410, "survey_closed", N_("This survey is closed and takes no more answers.")
        )
    if isinstance(outcome, AlreadyAnswered):
        return json_error(
            request, 409, "already_answered", N_("You have already answered this survey.")
        )
    if isinstance(outcome, TokenUsed):
        return json_error(
            request, 409, "token_used", N_("This invitation link has already been used.")
        )
    if isinstance(outcome, InvitationRequired):
        return json_error(
            request,
            403,
            "invitation_required",
            N_("This survey is by invitation only. Please use the link or QR code you were given."),
        )
    if isinstance(outcome, TokenInvalid):
        return json_error(
            request,
            422,
            fields={
                "token": {
                    "code": "token_invalid",
                    "message": t._(N_("This invitation link is not valid.")),
                    "params": {},
                }
            },
        )
    if isinstance(outcome, InvalidAnswers):
        return json_error(request, 422, fields=field_errors(outcome.errors, t))
    if isinstance(outcome, IdempotencyKeyReused):
        return json_error(
            request,
            422,
            "idempotency_key_reused",
            N_(
                "This Idempotency-Key was already used for a different submission."
                " Send a new key with new answers."
            ),
        )
    return json_error(request, 500)


async def get_results(request: web.Request) -> web.Response:
    """``GET /api/v1/surveys/{survey}/results`` (bearer token)."""
    survey = get_survey(request)
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return json_error(request, 401, headers={"WWW-Authenticate": 'Bearer realm="pufa"'})
    by = request.query.get("by")
    if by not in (None, "township", "channel"):
        return json_error(
            request,
            422,
            fields={
                "by": {
                    "code": "invalid",
                    "message": translator(request_locale(request))._(
                        N_("Use by=township or by=channel.")
                    ),
                    "params": {},
                }
            },
        )
    flag = request.query.get("include_sample", "false").lower()
    if flag not in _FLAGS:
        return json_error(
            request,
            422,
            fields={
                "include_sample": {
                    "code": "invalid",
                    "message": translator(request_locale(request))._(
                        N_("Use include_sample=true or include_sample=false.")
                    ),
                    "params": {},
                }
            },
        )
    include_sample = _FLAGS[flag]
    baseline = request.query.get("baseline")
    async with request.app[SESSIONS]() as session:
        token = await authenticate(session, presented.strip())
        if token is None:
            return json_error(
                request, 401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        if token.role not in RESULTS_ROLES:
            return json_error(request, 403)
        if baseline and not await has_answers(session, baseline, include_sample=include_sample):
            return json_error(
                request,
                422,
                fields={
                    "baseline": {
                        "code": "unknown_baseline",
                        "message": translator(request_locale(request))._(
                            N_("The baseline survey has no responses to compare with.")
                        ),
                        "params": {},
                    }
                },
            )
        township = token.township if token.role == "staff" else None
        report = await compute_results(
            session,
            survey,
            locale=request_locale(request),
            township=township,
            baseline=baseline,
            include_sample=include_sample,
        )
    return web.json_response(report.to_dict(by), dumps=_dumps)


API_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/surveys", list_surveys),
    ("GET", "/api/v1/surveys/{survey}", get_definition),
    ("POST", "/api/v1/surveys/{survey}/responses", post_response),
    ("GET", "/api/v1/surveys/{survey}/results", get_results),
]
"""Every ``/api/v1`` route: method, path, handler (the OpenAPI document is checked against it)."""
