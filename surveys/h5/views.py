"""The mobile (H5) survey pages: ``GET/POST /s/{survey}`` and ``/s/{survey}/thanks``.

Server-rendered, no JavaScript: a plain HTML form that posts back to the same URL, so it works
in WeChat's in-app browser and on old phones. Follow-up questions (``show_if``) are hidden with
CSS ``:has()`` where the browser supports it and otherwise shown with a note saying when to
answer them; answers to questions that do not apply are dropped before validation. A failed
validation re-renders the form with what the resident already answered and a message next to
each question at fault. Each rendered form carries a random idempotency key, so pressing
"submit" twice stores one response.

Opening the form issues the browser's respondent cookie, so a browser that has already
answered is told so at once instead of after filling in the form, and the limits on open-link
answers can tell the phones on one network apart (:mod:`surveys.ratelimit`). When a limit
hits, the form comes back with the answers still on it. The thanks page says the answers were
saved only to the browser that just sent them (a signed, short-lived cookie).
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlmodel import col

from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.crypto import keyed_hash
from core.http import read_form, request_locale
from core.i18n import N_, negotiate, translator
from core.ids import parse_digits
from storage.models_surveys import SurveyInvitation, SurveyState
from surveys.engine import AnswerError, visible_questions
from surveys.intake import (
    RateLimited,
    already_answered,
    answer_error_message,
    browser_respondent,
    set_respondent_cookie,
    submit_request,
    township_exists,
)
from surveys.keys import SURVEYS
from surveys.respondents import invitation_hash, pseudonym
from surveys.schema import Survey, localized
from surveys.state import state_is_open
from surveys.submission import (
    AlreadyAnswered,
    IdempotencyKeyReused,
    InvalidAnswers,
    InvitationRequired,
    SubmitResult,
    SurveyClosed,
    TokenInvalid,
    TokenUsed,
)

HERE = Path(__file__).resolve().parent
SAVED_COOKIE = "pufa_saved"
"""Set with the redirect after a stored submission; the thanks page reads it."""
SAVED_FOR = 600
"""Seconds the thanks page keeps saying "your answers have been saved"."""
H5_ENV = web.AppKey("survey_h5_env", jinja2.Environment)
"""The Jinja2 environment of the mobile pages."""


def make_env() -> jinja2.Environment:
    """A Jinja2 environment for the pages (autoescaped, i18n extension, CSS inlined)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["inline_css"] = (HERE / "static" / "survey.css").read_text(encoding="utf-8")
    return env


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """Render a page in the request's locale."""
    locale = context.pop("locale", None) or request_locale(request)
    t = translator(locale)
    html = (
        request.app[H5_ENV]
        .get_template(template)
        .render(
            _=t._,
            gettext=t._,
            ngettext=t.ngettext,
            locale=t.locale,
            lang_attr=_lang_attr(t.locale),
            **context,
        )
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _lang_attr(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else locale


def _page_locale(request: web.Request, form: MultiDictProxy[Any] | None = None) -> str:
    if form is not None and form.get("lang"):
        return negotiate(str(form["lang"]), request_locale(request))
    return request_locale(request)


def _message(
    request: web.Request,
    status: int,
    title: str,
    text: str,
    survey: Survey | None = None,
    locale: str | None = None,
    link: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    locale = locale or request_locale(request)
    t = translator(locale)
    response = render(
        request,
        "message.html",
        status=status,
        locale=locale,
        heading=t._(title),
        text=t._(text),
        survey_title=localized(survey.title, locale) if survey else "",
        link_url=link[1] if link else "",
        link_text=t._(link[0]) if link else "",
    )
    response.headers.update(headers or {})
    return response


async def _state_open(request: web.Request, code: str) -> bool:
    async with request.app[SESSIONS]() as session:
        row = (
            await session.execute(
                select(
                    col(SurveyState.status), col(SurveyState.opens_at), col(SurveyState.closes_at)
                ).where(col(SurveyState.code) == code)
            )
        ).one_or_none()
    return row is not None and state_is_open(row.status, row.opens_at, row.closes_at, utcnow())


async def _token_state(request: web.Request, survey: Survey, token: str) -> str:
    """``ok``, ``used`` or ``invalid`` for an invitation token."""
    digest = invitation_hash(request.app[SETTINGS].secret(), token)
    async with request.app[SESSIONS]() as session:
        row = (
            await session.execute(
                select(col(SurveyInvitation.survey), col(SurveyInvitation.used_at)).where(
                    col(SurveyInvitation.token_hash) == digest
                )
            )
        ).one_or_none()
    if row is None or row.survey != survey.code:
        return "invalid"
    return "used" if row.used_at is not None else "ok"


def question_numbers(survey: Survey) -> dict[str, str]:
    """The number shown before each question: ``1``, ``2``, … for the questions everybody
    answers, and ``2.1``, ``2.2``, … for follow-ups (``show_if``) after question 2. A hidden
    follow-up therefore leaves no gap (1, 2, 3), and a shown one reads as part of the question
    before it (1, 2, 2.1, 3), with or without the CSS that hides it."""
    numbers: dict[str, str] = {}
    main = sub = 0
    for question in survey.questions:
        if question.show_if is None or main == 0:
            main, sub = main + 1, 0
            numbers[question.code] = str(main)
        else:
            sub += 1
            numbers[question.code] = f"{main}.{sub}"
    return numbers


def _questions_view(
    survey: Survey, locale: str, answers: dict[str, Any], errors: dict[str, str]
) -> list[dict[str, Any]]:
    items = []
    numbers = question_numbers(survey)
    for question in survey.questions:
        value = answers.get(question.code)
        chosen = set(value) if isinstance(value, list) else ({value} if value else set())
        cond = None
        if question.show_if is not None:
            ref = survey.question(question.show_if.question)
            labels = [
                localized(opt.label, locale)
                for opt in (ref.options if ref else ())
                if opt.code in question.show_if.in_
            ]
            cond = {
                "question": question.show_if.question,
                "number": numbers.get(question.show_if.question, ""),
                "options": question.show_if.in_,
                "labels": labels,
            }
        items.append(
            {
                "code": question.code,
                "number": numbers[question.code],
                "type": question.type,
                "text": localized(question.text, locale),
                "required": question.required,
                "max_length": question.max_length,
                "options": [
                    {
                        "code": opt.code,
                        "label": localized(opt.label, locale),
                        "checked": opt.code in chosen,
                    }
                    for opt in question.options
                ],
                "value": value if isinstance(value, str) else "",
                "error": errors.get(question.code),
                "show_if": cond,
            }
        )
    return items


def _form_page(
    request: web.Request,
    survey: Survey,
    *,
    locale: str,
    token: str,
    src: str,
    answers: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    idem: str | None = None,
    status: int = 200,
    notice: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    errors = errors or {}
    query = {k: v for k, v in (("t", token), ("src", src)) if v}
    other = "en" if locale == "zh_CN" else "zh_CN"
    page = render(
        request,
        "form.html",
        status=status,
        locale=locale,
        notice=translator(locale)._(notice) if notice else "",
        survey_code=survey.code,
        title=localized(survey.title, locale),
        intro=localized(survey.intro, locale),
        questions=_questions_view(survey, locale, answers or {}, errors),
        error_count=len(errors),
        token=token,
        src=src,
        idem=idem or secrets.token_urlsafe(16),
        action=f"/s/{survey.code}",
        other_lang=other,
        other_lang_url=f"/s/{survey.code}?" + urlencode({**query, "lang": other}),
    )
    page.headers.update(headers or {})
    return page


def _survey_or_404(request: web.Request) -> Survey | web.Response:
    survey = request.app[SURVEYS].get(request.match_info["survey"])
    if survey is None:
        return _message(
            request,
            404,
            N_("Survey not found"),
            N_("Please check the link or scan the QR code again."),
        )
    return survey


def _clean_param(value: str | None, limit: int = 64) -> str:
    if not value:
        return ""
    value = value.strip()
    if len(value) > limit or not all(c.isalnum() or c in "-_" for c in value):
        return ""
    return value


async def survey_page(request: web.Request) -> web.Response:
    """``GET /s/{survey}``: the form (or a page saying why it cannot be answered)."""
    survey = _survey_or_404(request)
    if isinstance(survey, web.Response):
        return survey
    locale = _page_locale(request)
    token = _clean_param(request.query.get("t"))
    src = _clean_param(request.query.get("src"), 24)
    if not await _state_open(request, survey.code):
        return _closed(request, survey, locale)
    if survey.invitation_only and not token:
        return _invitation_only(request, survey, locale)
    if token:
        state = await _token_state(request, survey, token)
        if state == "used":
            return _used(request, survey, locale)
        if state == "invalid":
            return _invalid(request, survey, locale)
        return _form_page(request, survey, locale=locale, token=token, src=src)
    cookie = browser_respondent(request)
    if cookie is not None:
        respondent = pseudonym(request.app[SETTINGS].secret(), "web", cookie)
        if await already_answered(request, survey.code, respondent):
            return _already(request, survey, locale, 200)
        return _form_page(request, survey, locale=locale, token=token, src=src)
    # a new browser: its respondent id from now on, so its answer can be recognised
    page = _form_page(request, survey, locale=locale, token=token, src=src)
    set_respondent_cookie(page, secrets.token_urlsafe(16))
    return page


def _already(request: web.Request, survey: Survey, locale: str, status: int) -> web.Response:
    return _message(
        request,
        status,
        N_("You have already answered"),
        N_("Thank you! Each person answers this survey once, and we already have your answers."),
        survey,
        locale,
    )


def _closed(request: web.Request, survey: Survey, locale: str) -> web.Response:
    return _message(
        request,
        410,
        N_("This survey is closed"),
        N_("Thank you for your interest. This survey no longer takes answers."),
        survey,
        locale,
    )


def _invitation_only(request: web.Request, survey: Survey, locale: str) -> web.Response:
    return _message(
        request,
        403,
        N_("This survey is by invitation"),
        N_(
            "Only invited respondents can answer this survey. Please open it with the link or"
            " QR code you were given."
        ),
        survey,
        locale,
    )


def _used(request: web.Request, survey: Survey, locale: str) -> web.Response:
    return _message(
        request,
        409,
        N_("This invitation has been used"),
        N_("Each invitation link can be used once, and this one has already been used to answer."),
        survey,
        locale,
    )


def _invalid(request: web.Request, survey: Survey, locale: str) -> web.Response:
    return _message(
        request,
        404,
        N_("This invitation link is not valid"),
        N_("Please check the link or scan the QR code again."),
        survey,
        locale,
    )


def _form_answers(survey: Survey, form: MultiDictProxy[Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for question in survey.questions:
        if question.type == "multiple":
            chosen = [str(v) for v in form.getall(question.code, [])]
            answers[question.code] = chosen or None
        else:
            value = form.get(question.code)
            answers[question.code] = str(value) if value not in (None, "") else None
    visible = {q.code for q in visible_questions(survey, answers)}
    return {code: value for code, value in answers.items() if code in visible}


async def survey_submit(request: web.Request) -> web.StreamResponse:
    """``POST /s/{survey}``: store the answers, or show the form again with the errors."""
    survey = _survey_or_404(request)
    if isinstance(survey, web.Response):
        return survey
    try:
        form = await read_form(request)
    except web.HTTPBadRequest:
        return _message(
            request,
            400,
            N_("Your answers could not be read"),
            N_("The form arrived garbled. Please open the survey again and resend your answers."),
            survey,
            _page_locale(request),
            link=(N_("Back to the survey"), f"/s/{survey.code}"),
        )
    except web.HTTPRequestEntityTooLarge:
        return _message(
            request,
            413,
            N_("Your answers are too long to send"),
            N_(
                "All answers together may be at most 64 KiB. Please shorten the longest answer"
                " and send the form again."
            ),
            survey,
            _page_locale(request),
            link=(N_("Back to the survey"), f"/s/{survey.code}"),
        )
    locale = _page_locale(request, form)
    t = translator(locale)
    token = _clean_param(str(form.get("t", "")))
    src = _clean_param(str(form.get("src", "")), 24)
    idem = _clean_param(str(form.get("idem", ""))) or None
    answers = _form_answers(survey, form)
    if src and not await township_exists(request, src):
        src = ""
    outcome, cookie = await submit_request(
        request,
        survey,
        answers,
        token=token or None,
        src=src or None,
        locale=locale,
        key=f"h5:{idem}" if idem else None,
        channel="h5",
    )
    if isinstance(outcome, SubmitResult):
        response = web.Response(
            status=303,
            headers={"Location": f"/s/{survey.code}/thanks?" + urlencode({"lang": locale})},
        )
        set_respondent_cookie(response, cookie)
        response.set_cookie(
            SAVED_COOKIE,
            _saved_marker(request, survey.code, int(time.time())),
            max_age=SAVED_FOR,
            httponly=True,
            samesite="Lax",
            path=f"/s/{survey.code}/thanks",
        )
        return response
    if isinstance(outcome, RateLimited):
        # nothing was stored: the same form comes back with everything the resident chose
        return _form_page(
            request,
            survey,
            locale=locale,
            token=token,
            src=src,
            answers=answers,
            idem=idem,
            status=429,
            notice=N_(
                "Too many answers were sent from this network just now, so yours were not"
                " saved yet. They are kept below: please press Submit again in a minute."
            ),
            headers={"Retry-After": str(outcome.retry_after)},
        )
    if isinstance(outcome, InvalidAnswers):
        messages = {
            code: answer_error_message(err, t)
            for code, err in outcome.errors.items()
            if isinstance(err, AnswerError)
        }
        return _form_page(
            request,
            survey,
            locale=locale,
            token=token,
            src=src,
            answers=answers,
            errors=messages,
            idem=idem,
            status=422,
        )
    if isinstance(outcome, SurveyClosed):
        return _closed(request, survey, locale)
    if isinstance(outcome, TokenUsed):
        return _used(request, survey, locale)
    if isinstance(outcome, TokenInvalid):
        return _invalid(request, survey, locale)
    if isinstance(outcome, InvitationRequired):
        return _invitation_only(request, survey, locale)
    if isinstance(outcome, AlreadyAnswered | IdempotencyKeyReused):
        # a form sent again with changed answers (back button) after it was stored: the
        # browser's respondent has answered, and the first answers stand
        return _already(request, survey, locale, 409)
    return _message(
        request,
        500,
        N_("Something went wrong"),
        N_("Your answers could not be saved. Please go back and send them again."),
        survey,
        locale,
    )


def _saved_marker(request: web.Request, survey: str, at: int) -> str:
    """``"{at}.{signature}"``: proof that this browser's answers to ``survey`` were stored at
    unix time ``at`` (keyed with the secret, so it cannot be made up)."""
    secret = request.app[SETTINGS].secret()
    return f"{at}.{keyed_hash(secret, 'h5-saved', f'{survey}:{at}')[:32]}"


def _just_saved(request: web.Request, survey: str) -> bool:
    at_text, _, _signature = request.cookies.get(SAVED_COOKIE, "").partition(".")
    at = parse_digits(at_text, 12)  # a unix time
    if at is None:
        return False
    if not 0 <= time.time() - at <= SAVED_FOR:
        return False
    expected = _saved_marker(request, survey, at)
    return hmac.compare_digest(expected, request.cookies.get(SAVED_COOKIE, ""))


async def thanks_page(request: web.Request) -> web.Response:
    """``GET /s/{survey}/thanks``: "your answers have been saved" to the browser that just sent
    them; anyone else (the address opened directly) is pointed to the survey instead."""
    survey = _survey_or_404(request)
    if isinstance(survey, web.Response):
        return survey
    if _just_saved(request, survey.code):
        return _message(
            request,
            200,
            N_("Thank you!"),
            N_("Your answers have been saved. They help the district improve its work."),
            survey,
        )
    return _message(
        request,
        200,
        N_("No answers from this browser just now"),
        N_("This page confirms answers just sent from this phone. To answer the survey, open it."),
        survey,
        link=(N_("Open the survey"), f"/s/{survey.code}"),
    )


def setup(app: web.Application) -> None:
    """Add the mobile pages to ``app``."""
    app[H5_ENV] = make_env()
    app.router.add_get("/s/{survey}", survey_page)
    app.router.add_post("/s/{survey}", survey_submit)
    app.router.add_get("/s/{survey}/thanks", thanks_page)
