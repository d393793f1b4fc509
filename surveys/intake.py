"""Taking a survey submission over HTTP: what the JSON API and the mobile pages share.

Both edges check the survey, identify the respondent (invitation token, else the browser's
cookie), limit open-link answers (per respondent, then per client address: see
:mod:`surveys.ratelimit`) and store through the group committer (:mod:`surveys.committer`),
which answers only after the commit.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlmodel import col

from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.http import client_address
from core.i18n import N_, Translator
from storage.models import Township
from storage.models_surveys import SurveyState
from surveys.engine import AnswerError, ErrorCode
from surveys.keys import COMMITTER, RATE_LIMITER, SURVEYS, TOWNSHIP_CACHE
from surveys.respondents import invitation_hash, pseudonym
from surveys.schema import Survey
from surveys.state import has_answered
from surveys.submission import InvitationRequired, Submission, SubmitError, SubmitResult

__all__ = [
    "ERROR_MESSAGES",
    "RESPONDENT_COOKIE",
    "TOKEN_RE",
    "RateLimited",
    "already_answered",
    "answer_error_message",
    "browser_respondent",
    "field_errors",
    "get_survey",
    "respondent_for",
    "set_respondent_cookie",
    "submit_request",
    "survey_states",
    "township_exists",
]

RESPONDENT_COOKIE = "pufa_rid"
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
"""An invitation token or respondent cookie as pufa issues them."""

ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.REQUIRED: N_("Please answer this question."),
    ErrorCode.INVALID_OPTION: N_("Please choose one of the options offered."),
    ErrorCode.DUPLICATE_OPTION: N_("The same option was chosen twice."),
    ErrorCode.INVALID_TYPE: N_("This answer is not in the expected form."),
    ErrorCode.TOO_LONG: N_("Please keep it to {max_length} characters (this has {length})."),
    ErrorCode.NOT_APPLICABLE: N_("This question does not apply given your other answers."),
    ErrorCode.UNKNOWN_QUESTION: N_("This survey has no such question."),
    ErrorCode.INVALID_CHARACTERS: N_(
        "Please remove the control characters (such as NUL) from this answer."
    ),
}


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


class RateLimited(SubmitError):
    """Too many open-link submissions just now from this respondent or this address."""

    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limited")
        self.retry_after = max(1, round(retry_after))


def get_survey(request: web.Request) -> Survey:
    """The survey named in the path, or 404."""
    survey = request.app[SURVEYS].get(request.match_info["survey"])
    if survey is None:
        raise web.HTTPNotFound()
    return survey


async def survey_states(app: web.Application) -> dict[str, SurveyState]:
    """The stored state row of every survey."""
    async with app[SESSIONS]() as session:
        rows = (await session.execute(select(SurveyState))).scalars().all()
    return {row.code: row for row in rows}


def respondent_for(
    request: web.Request, secret: bytes, token: str | None
) -> tuple[str, str | None]:
    """``(pseudonym, new cookie value or None)``: the invitation token identifies the respondent;
    else the browser cookie; else a fresh cookie is issued (one response per browser)."""
    if token:
        return pseudonym(secret, "token", token), None
    cookie = browser_respondent(request)
    if cookie:
        return pseudonym(secret, "web", cookie), None
    fresh = secrets.token_urlsafe(16)
    return pseudonym(secret, "web", fresh), fresh


def browser_respondent(request: web.Request) -> str | None:
    """The browser's respondent cookie value, if it sent a well-formed one."""
    cookie = request.cookies.get(RESPONDENT_COOKIE)
    return cookie if cookie and TOKEN_RE.fullmatch(cookie) else None


async def already_answered(request: web.Request, survey: str, respondent: str) -> bool:
    """Whether ``respondent`` (a pseudonym) has a stored response to ``survey``
    (:func:`surveys.state.has_answered` in a session of its own)."""
    async with request.app[SESSIONS]() as session:
        return await has_answered(session, survey, respondent)


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
    cache = request.app[TOWNSHIP_CACHE]
    now = time.monotonic()
    if cache.get("at", -1e9) + 60 < now:
        async with request.app[SESSIONS]() as session:
            codes = set((await session.execute(select(col(Township.code)))).scalars())
        cache["codes"], cache["at"] = codes, now
    return code in cache["codes"]


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
) -> tuple[SubmitResult | SubmitError, str | None]:
    """Identify the respondent, limit open-link answers and store through the group committer.

    Returns the outcome (:class:`RateLimited` when a limit hit; nothing was stored) and a new
    respondent cookie to set, if any. An invitation-only survey without a token is refused
    here, before any database work.
    """
    if survey.invitation_only and not token:
        return InvitationRequired("invitation required"), None
    settings = request.app[SETTINGS]
    secret = settings.secret()
    respondent, cookie = respondent_for(request, secret, token)
    if not token:
        wait = await request.app[RATE_LIMITER].check(
            None if cookie else respondent, client_address(request, settings.trusted_proxies)
        )
        if wait > 0:
            return RateLimited(wait), None
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
    outcome = await request.app[COMMITTER].submit(item)
    if not isinstance(outcome, SubmitResult):
        cookie = None
    return outcome, cookie
