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
- ``GET /api/v1/openapi.json`` — the OpenAPI 3 description of these routes.

:func:`setup` loads the catalog into ``app[SURVEYS]``, starts the group committer and adds
these routes and the mobile pages.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aiohttp import web

from bot.context import SESSIONS, SETTINGS
from bot.i18n import N_, Translator, negotiate
from bot.web.errors import MAX_BODY, json_error, request_locale
from storage.models_surveys import SurveyState
from surveys.committer import GroupCommitter
from surveys.engine import AnswerError, ErrorCode
from surveys.schema import Survey, load_catalog
from surveys.service import (
    AlreadyAnswered,
    IdempotencyKeyReused,
    InvalidAnswers,
    InvitationRequired,
    Submission,
    SubmitError,
    SubmitResult,
    SurveyClosed,
    TokenInvalid,
    TokenUsed,
    invitation_hash,
    pseudonym,
    state_is_open,
)

SURVEYS = web.AppKey("surveys", dict[str, Survey])
"""The loaded survey catalog ``{code: Survey}``."""
COMMITTER = web.AppKey("survey_committer", GroupCommitter)
"""The group committer storing submissions."""

RESPONDENT_COOKIE = "pufa_rid"
MAX_IDEMPOTENCY_KEY = 128
_CODE_RE = re.compile(r"[A-Za-z0-9-]{1,24}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_KEY_RE = re.compile(r"[\x21-\x7e]{1,128}")

ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.REQUIRED: N_("Please answer this question."),
    ErrorCode.INVALID_OPTION: N_("Please choose one of the options offered."),
    ErrorCode.DUPLICATE_OPTION: N_("The same option was chosen twice."),
    ErrorCode.INVALID_TYPE: N_("This answer is not in the expected form."),
    ErrorCode.TOO_LONG: N_("Please keep it to {max_length} characters (this has {length})."),
    ErrorCode.NOT_APPLICABLE: N_("This question does not apply given your other answers."),
    ErrorCode.UNKNOWN_QUESTION: N_("This survey has no such question."),
}


@lru_cache(maxsize=16)
def translator(locale: str | None) -> Translator:
    """A shared :class:`Translator` per locale (building one parses Babel locale data, which
    is too slow to repeat on every request)."""
    return Translator(locale)


def answer_error_message(error: AnswerError, t: Translator) -> str:
    """The localized message for one rejected answer."""
    template = ERROR_MESSAGES.get(error.code, ERROR_MESSAGES[ErrorCode.INVALID_TYPE])
    params = {k: v for k, v in error.params.items() if isinstance(v, int | str)}
    try:
        return t._(template, **params)
    except (KeyError, IndexError):
        return t._(template)


def field_errors(errors: dict[str, AnswerError], t: Translator) -> dict[str, Any]:
    """``{question: {"code", "message", "params"}}`` for a 422 body."""
    return {
        code: {
            "code": str(err.code),
            "message": answer_error_message(err, t),
            "params": dict(err.params),
        }
        for code, err in errors.items()
    }


class RateLimiter:
    """A token bucket per client: ``burst`` submissions at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: float = 20.0, burst: int = 10, max_clients: int = 50_000):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str, now: float | None = None) -> float:
        """``0.0`` when allowed (and counted), else the seconds to wait."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate


RATE_LIMITER = web.AppKey("survey_rate_limiter", RateLimiter)
"""Per-client limit on open-link submissions (those without an invitation token)."""
TOWNSHIP_CACHE = web.AppKey("survey_township_cache", dict[str, Any])
"""Known township codes, refreshed every minute."""


def utcnow() -> datetime:
    """The current time (UTC). The HTTP edge reads the clock; everything below takes ``now``."""
    return datetime.now(UTC)


def client_key(request: web.Request) -> str:
    """Who is asking, for rate limiting: the peer address."""
    return request.remote or "unknown"


def get_survey(request: web.Request) -> Survey:
    """The survey named in the path, or 404."""
    survey = request.app[SURVEYS].get(request.match_info["survey"])
    if survey is None:
        raise web.HTTPNotFound()
    return survey


async def survey_states(app: web.Application) -> dict[str, SurveyState]:
    """The stored state row of every survey."""
    from sqlalchemy import select

    async with app[SESSIONS]() as session:
        rows = (await session.execute(select(SurveyState))).scalars().all()
    return {row.code: row for row in rows}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


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


def respondent_for(
    request: web.Request, secret: bytes, token: str | None
) -> tuple[str, str | None]:
    """``(pseudonym, new cookie value or None)``: the invitation token identifies the respondent;
    else the browser cookie; else a fresh cookie is issued (one response per browser)."""
    if token:
        return pseudonym(secret, "token", token), None
    cookie = request.cookies.get(RESPONDENT_COOKIE)
    if cookie and _TOKEN_RE.fullmatch(cookie):
        return pseudonym(secret, "web", cookie), None
    fresh = secrets.token_urlsafe(16)
    return pseudonym(secret, "web", fresh), fresh


def set_respondent_cookie(response: web.StreamResponse, value: str | None) -> None:
    """Remember the browser for one year (no personal data: a random id)."""
    if value:
        response.set_cookie(
            RESPONDENT_COOKIE,
            value,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            path="/",
        )


async def township_exists(request: web.Request, code: str) -> bool:
    """Whether a township code is known (cached for a minute)."""
    from sqlalchemy import select

    from storage.models import Township

    cache = request.app[TOWNSHIP_CACHE]
    now = time.monotonic()
    if cache.get("at", -1e9) + 60 < now:
        async with request.app[SESSIONS]() as session:
            codes = set((await session.execute(select(Township.code))).scalars())
        cache["codes"], cache["at"] = codes, now
    return code in cache["codes"]


async def submit_via_committer(
    app: web.Application, item: Submission
) -> SubmitResult | SubmitError:
    """Store one submission through the app's group committer."""
    return await app[COMMITTER].submit(item)


async def post_response(request: web.Request) -> web.Response:
    """``POST /api/v1/surveys/{survey}/responses``."""
    survey = get_survey(request)
    t = translator(request_locale(request))
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
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
    if token is not None and (not isinstance(token, str) or not _TOKEN_RE.fullmatch(token)):
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
    if fields:
        return json_error(request, 422, fields=fields)
    outcome, cookie = await submit_request(
        request, survey, answers, token=token, src=src, locale=locale, key=key, channel="api"
    )
    return render_outcome(request, outcome, cookie, t)


async def submit_request(
    request: web.Request,
    survey: Survey,
    answers: dict[str, Any],
    *,
    token: str | None,
    src: str | None,
    locale: str,
    key: str | None,
    channel: str,
) -> tuple[SubmitResult | SubmitError | web.Response, str | None]:
    """Rate-limit, identify the respondent and store through the group committer.

    Returns the outcome (or a ready 429 response) and a new respondent cookie to set, if any.
    An invitation-only survey without a token is refused here, before any database work.
    """
    if survey.invitation_only and not token:
        return InvitationRequired("invitation required"), None
    secret = request.app[SETTINGS].secret()
    if not token:
        wait = request.app[RATE_LIMITER].allow(client_key(request))
        if wait > 0:
            return (
                json_error(request, 429, headers={"Retry-After": str(max(1, round(wait)))}),
                None,
            )
    respondent, cookie = respondent_for(request, secret, token)
    item = Submission(
        survey=survey,
        answers=answers,
        respondent=respondent,
        channel=channel,
        township_code=src,
        locale=locale,
        now=utcnow(),
        token=token,
        idempotency_key=key,
        token_hash=invitation_hash(secret, token) if token else None,
    )
    outcome = await submit_via_committer(request.app, item)
    if not isinstance(outcome, SubmitResult):
        cookie = None
    return outcome, cookie


def render_outcome(
    request: web.Request,
    outcome: SubmitResult | SubmitError | web.Response,
    cookie: str | None,
    t: Translator,
) -> web.Response:
    """The JSON response for a submission outcome."""
    if isinstance(outcome, web.Response):
        return outcome
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
    from surveys.results import compute_results
    from surveys.tokens import RESULTS_ROLES, authenticate

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
    async with request.app[SESSIONS]() as session:
        token = await authenticate(session, presented.strip())
        if token is None:
            return json_error(
                request, 401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        if token.role not in RESULTS_ROLES:
            return json_error(request, 403)
        township = token.township if token.role == "staff" else None
        report = await compute_results(
            session,
            survey,
            locale=request_locale(request),
            township=township,
            baseline=request.query.get("baseline"),
        )
    return web.json_response(report.to_dict(by), dumps=_dumps)


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``."""
    from surveys.openapi import document

    return web.json_response(document(request.app[SETTINGS].public_url), dumps=_dumps)


# --------------------------------------------------------------------------------------------
# Wiring


async def _committer_ctx(app: web.Application) -> AsyncIterator[None]:
    committer = GroupCommitter(app[SESSIONS])
    app[COMMITTER] = committer
    committer.start()
    yield
    await committer.stop()


API_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/surveys", list_surveys),
    ("GET", "/api/v1/surveys/{survey}", get_definition),
    ("POST", "/api/v1/surveys/{survey}/responses", post_response),
    ("GET", "/api/v1/surveys/{survey}/results", get_results),
    ("GET", "/api/v1/openapi.json", openapi),
]
"""Every ``/api/v1`` route: method, path, handler (the OpenAPI document is checked against it)."""


def setup(app: web.Application) -> None:
    """Add the survey feature to ``app``: catalog, group committer, API routes, mobile pages."""
    from surveys.h5.views import setup as setup_pages

    app[SURVEYS] = load_catalog()
    app[RATE_LIMITER] = RateLimiter()
    app[TOWNSHIP_CACHE] = {}
    app.cleanup_ctx.append(_committer_ctx)
    for method, path, handler in API_ROUTES:
        app.router.add_route(method, path, handler)
    setup_pages(app)
