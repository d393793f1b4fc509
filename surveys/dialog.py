"""Taking a survey in chat: one question per message.

After an answer the question message is replaced by the question and the chosen option, with
no keyboard, and the next question follows in a new message. Choice questions are answered with
buttons, by typing the option's number or by typing its words (``满意``); ``multiple`` questions
toggle options and finish with *Done*, or take several numbers or labels at once (``1,3``,
``1 3``, ``1，3``, ``1、3``); optional questions can be skipped; ``text`` questions take the
next message. Numbers choose options only on choice questions: the *Skip* button of a
free-text question is not numbered (it is chosen by pressing it or typing its label), so a
comment of ``1`` is kept as the comment. The completed response is stored through
:func:`surveys.submission.submit_response`, the same storage as the mobile page, under a keyed
pseudonym of the chat account — raw chat ids are never stored with answers.

An invitation-only survey (:attr:`~surveys.schema.Survey.invitation_only`: the deputies' and
staff surveys) is started only by the deep link ``t_<token>`` of a single-use invitation token
(``pufa invite residents``); ``/survey <code>`` and ``s_<code>`` explain that it is by
invitation. The token is consumed when the completed response is stored, as on the web.

State (JSON in the conversation row): ``s`` survey code, ``tw`` township code or null, ``a``
answers so far, ``m`` option indexes ticked on the current ``multiple`` question, ``th`` the
keyed hash of the invitation token (never the token itself) or absent.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from core.dialog import BAD_BUTTON, STALE_BUTTON, DialogRegistry, Step
from core.i18n import N_
from core.ids import parse_digits
from storage.models import Township
from storage.models_surveys import SurveyInvitation
from surveys.engine import ErrorCode, next_question, progress, validate_answer
from surveys.respondents import invitation_hash, pseudonym
from surveys.schema import OPEN_AUDIENCES, Question, Survey, localized
from surveys.state import open_and_answered, survey_is_open
from surveys.submission import (
    AlreadyAnswered,
    InvitationRequired,
    SubmitError,
    SurveyClosed,
    TokenInvalid,
    TokenUsed,
    submit_response,
)

__all__ = ["SurveyFlow", "install", "respondent_for", "start_survey"]

log = logging.getLogger(__name__)

FLOW = "survey"
LISTED_AUDIENCES = OPEN_AUDIENCES
"""Audiences whose open surveys ``/survey`` offers to anyone (those not invitation-only)."""
INVITATION_PAYLOAD = "t"
"""Deep-link prefix of an invitation token: ``/start t_<token>``."""
INVITATION_ONLY = N_(
    "This survey is by invitation only. Please use the link or QR code you were given."
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{8,62}")
_SEPARATORS = re.compile(r"[\s,，、;；]+")
_TRAILING = "。.!！"


def _normal(text: str) -> str:
    """Typed text compared with labels: NFKC (full-width digits and letters), case and
    surrounding space and final punctuation ignored."""
    return unicodedata.normalize("NFKC", text).strip().rstrip(_TRAILING).strip().casefold()


def typed_options(question: Question, text: str) -> list[int] | None:
    """The option indexes a typed answer names, in the order typed: option numbers (from 1)
    or labels (in any shipped language), separated by spaces, commas (also ``，``), ``、`` or
    semicolons. ``None`` when some part names no option."""
    labels = {
        _normal(label): index
        for index, option in enumerate(question.options)
        for label in option.label.values()
    }
    whole = labels.get(_normal(text))
    if whole is not None:
        return [whole]
    parts = [part for part in _SEPARATORS.split(unicodedata.normalize("NFKC", text)) if part]
    chosen: list[int] = []
    for part in parts:
        number = parse_digits(part, 4)
        if number is not None:
            index = number - 1
            if not 0 <= index < len(question.options):
                return None
        else:
            found = labels.get(_normal(part))
            if found is None:
                return None
            index = found
        if index not in chosen:
            chosen.append(index)
    return chosen or None


def respondent_for(secret: bytes, channel: str, external_id: str) -> str:
    """The respondent pseudonym of a chat account (what is stored with its answers)."""

    return pseudonym(secret, "chat", f"{channel}:{external_id}")


class SurveyFlow:
    """The survey conversation over a catalog of survey definitions."""

    name = FLOW

    def __init__(self, catalog: Mapping[str, Survey]) -> None:
        self.catalog = catalog

    # ------------------------------------------------------------------ Flow protocol

    def title(self, step: Step) -> str:
        """The survey's title."""
        survey = self.catalog.get(step.state.get("s", ""))
        return localized(survey.title, step.locale) if survey else ""

    async def on_text(self, step: Step, text: str) -> None:
        """Answer a free-text question, or explain how to answer a choice question."""
        survey, question = self._current(step)
        if survey is None or question is None:
            step.end()
            step.say(step._("Send /survey to take a survey, or /help to see what I can do."))
            return
        header = self._header(step, survey) + localized(question.text, step.locale)
        if not question.required and _normal(text) == _normal(step._("Skip")):
            self._record(step, question, None)
            step.say(f"{header}\n✓ {step._('(skipped)')}")
            await self._advance(step, survey)
            return
        if question.type != "text":
            chosen = typed_options(question, text)
            if chosen is None:
                step.say(step._("Please tap one of the options above, or type its number."))
                return
            if question.type != "multiple" and len(chosen) > 1:
                step.say(step._("Please choose only one option."))
                return
            codes = [question.options[i].code for i in chosen]
            self._record(step, question, codes if question.type == "multiple" else codes[0])
            labels = "、".join(localized(question.options[i].label, step.locale) for i in chosen)
            step.say(f"{header}\n✓ {labels}")
            await self._advance(step, survey)
            return
        error = validate_answer(question, text)
        if error is not None:
            if error.code == ErrorCode.TOO_LONG:
                step.say(
                    step._(
                        "Please keep it under {max_length} characters (yours has {length}).",
                        **error.params,
                    )
                )
            else:
                step.say(step._("Please type your answer."))
            return
        self._record(step, question, text.strip())
        await self._advance(step, survey)

    async def on_button(self, step: Step, action: str, arg: str) -> None:
        """Handle an answer (``a``), toggle (``t``), done (``d``) or skip (``s``) button."""
        survey, question = self._current(step)
        if survey is None or question is None:
            step.end()
            step.say(step._(STALE_BUTTON))
            return
        lead = self._opening(step, survey)
        qtext = self._header(step, survey) + localized(question.text, step.locale)
        if action == "a" and question.type in ("single", "scale"):
            option = _option_at(question, arg)
            if option is None:
                step.say(step._(BAD_BUTTON))
                return
            self._record(step, question, option.code)
            label = localized(option.label, step.locale)
            step.say(f"{qtext}\n✓ {label}", kind="edit_source", lead=lead)
            await self._advance(step, survey)
        elif action == "t" and question.type == "multiple":
            if _option_at(question, arg) is None:
                step.say(step._(BAD_BUTTON))
                return
            ticked = set(step.state.get("m", []))
            ticked ^= {int(arg)}
            step.update(m=sorted(ticked))
            self._ask(step, survey, question, kind="edit_source")
        elif action == "d" and question.type == "multiple":
            chosen = sorted(step.state.get("m", []))
            if not chosen and question.required:
                step.say(step._("Please choose at least one option."))
                return
            codes = [question.options[i].code for i in chosen]
            self._record(step, question, codes or None)
            labels = "、".join(localized(question.options[i].label, step.locale) for i in chosen)
            skipped = step._("(skipped)")
            step.say(f"{qtext}\n✓ {labels or skipped}", kind="edit_source", lead=lead)
            await self._advance(step, survey)
        elif action == "s" and not question.required:
            self._record(step, question, None)
            skipped = step._("(skipped)")
            step.say(f"{qtext}\n✓ {skipped}", kind="edit_source", lead=lead)
            await self._advance(step, survey)
        else:
            step.say(step._(BAD_BUTTON))

    async def prompt(self, step: Step) -> None:
        """Ask the current question again."""
        survey, question = self._current(step)
        if survey is None or question is None:
            step.end()
            return
        self._ask(step, survey, question)

    async def restart(self, step: Step) -> None:
        """Forget the answers and start from the first question."""
        survey = self.catalog.get(step.state.get("s", ""))
        if survey is None:
            step.end()
            return
        step.update(a={}, m=[])
        await self._advance(step, survey)

    # ------------------------------------------------------------------ helpers

    def _current(self, step: Step) -> tuple[Survey | None, Question | None]:
        survey = self.catalog.get(step.state.get("s", ""))
        if survey is None:
            return None, None
        return survey, next_question(survey, step.state.get("a", {}))

    def _header(self, step: Step, survey: Survey) -> str:
        done, total = progress(survey, step.state.get("a", {}))
        return f"({min(done + 1, total)}/{total}) "

    def _opening(self, step: Step, survey: Survey) -> str:
        """The survey's title and intro while no answer is recorded (the survey just opened,
        or started again), else "": the lead of the first question's message and of the
        answer that replaces it."""
        if step.state.get("a"):
            return ""
        return f"{localized(survey.title, step.locale)}\n\n{localized(survey.intro, step.locale)}"

    def _record(self, step: Step, question: Question, value: Any) -> None:
        answers = dict(step.state.get("a", {}))
        answers[question.code] = value
        step.update(a=answers, m=[])

    def _ask(self, step: Step, survey: Survey, question: Question, kind: str = "send") -> None:
        lead = self._opening(step, survey)
        text = self._header(step, survey) + localized(question.text, step.locale)
        if not question.required:
            text += " " + step._("(optional)")
        rows: list[list[Any]] = []
        if question.type in ("single", "scale"):
            rows = [
                [step.button(localized(o.label, step.locale), "a", str(i))]
                for i, o in enumerate(question.options)
            ]
            if not question.required:
                rows.append([step.button(step._("Skip"), "s")])
        elif question.type == "multiple":
            ticked = set(step.state.get("m", []))
            rows = [
                [
                    step.button(
                        ("✅ " if i in ticked else "") + localized(o.label, step.locale),
                        "t",
                        str(i),
                    )
                ]
                for i, o in enumerate(question.options)
            ]
            rows.append([step.button(step._("Done"), "d")])
            text += "\n" + step._("Choose any number, then press Done.")
        else:
            text += "\n" + step._("Please type your answer.")
            if not question.required:
                rows.append([step.button(step._("Skip"), "s")])
            # a typed "1" is the answer, never a press of Skip
            step.say(text, rows, kind=kind, numbered=False, lead=lead)  # type: ignore[arg-type]
            return
        step.say(text, rows, kind=kind, lead=lead)  # type: ignore[arg-type]

    async def _advance(self, step: Step, survey: Survey) -> None:
        answers = step.state.get("a", {})
        question = next_question(survey, answers)
        if question is not None:
            self._ask(step, survey, question)
            return
        await self._complete(step, survey, answers)

    async def _complete(self, step: Step, survey: Survey, answers: Mapping[str, Any]) -> None:

        township = step.state.get("tw")
        token_hash = step.state.get("th")
        step.end()
        try:
            await submit_response(
                step.session,
                survey,
                answers,
                respondent=respondent_for(
                    step.runtime.secret, step.inbound.channel, step.inbound.external_id
                ),
                channel=step.inbound.channel,
                township_code=township,
                locale=step.locale,
                now=step.now,
                token_hash=token_hash,
            )
        except AlreadyAnswered:
            step.say(step._("You have already answered this survey. Thank you!"))
            return
        except SurveyClosed:
            step.say(step._("Sorry, this survey has closed, so your answers were not counted."))
            return
        except TokenUsed:
            step.say(
                step._(
                    "Sorry, this invitation link has already been used, so your answers were"
                    " not counted."
                )
            )
            return
        except (TokenInvalid, InvitationRequired):
            step.say(step._(INVITATION_ONLY))
            return
        except SubmitError as exc:
            log.warning("chat survey answers refused", extra={"code": getattr(exc, "code", "")})
            step.say(step._("Sorry, your answers could not be saved. Send /survey to try again."))
            return
        metrics = step.runtime.metrics
        if metrics is not None:
            counter = metrics.survey_responses.labels(survey.code, step.inbound.channel)
            step.on_commit(counter.inc)
        step.say(step._("Thank you! Your answers have been recorded."))


def _option_at(question: Question, arg: str) -> Any:
    if not arg.isdigit() or int(arg) >= len(question.options):
        return None
    return question.options[int(arg)]


async def start_survey(
    step: Step, code: str, township: str | None = None, *, token_hash: str | None = None
) -> None:
    """Open survey ``code`` for the person of ``step`` (checking it is open and unanswered).

    An invitation-only survey needs ``token_hash``, the keyed hash of a checked invitation
    token (see :func:`_start_invitation_link`); without it the person is told the survey is by
    invitation.
    """

    flow = step.runtime.flows[FLOW]
    assert isinstance(flow, SurveyFlow)
    survey = flow.catalog.get(code)
    if survey is None:
        step.say(step._("Sorry, I do not know that survey. Send /survey to see the open ones."))
        return
    if survey.invitation_only and token_hash is None:
        step.say(step._(INVITATION_ONLY))
        return
    respondent = respondent_for(step.runtime.secret, step.inbound.channel, step.inbound.external_id)
    is_open, answered = await open_and_answered(step.session, code, respondent, step.now)
    if not is_open:
        step.say(step._("Sorry, this survey is not open."))
        return
    if answered:
        step.say(step._("You have already answered this survey. Thank you!"))
        return
    if township is not None:
        found = (
            await step.session.execute(
                select(col(Township.code)).where(col(Township.code) == township)
            )
        ).scalar_one_or_none()
        township = found
    state: dict[str, Any] = {"s": code, "tw": township, "a": {}, "m": []}
    if token_hash is not None:
        state["th"] = token_hash
    step.begin(FLOW, state)
    await flow._advance(step, survey)


async def _cmd_survey(step: Step, args: str) -> None:
    code = args.strip()
    if code:
        await start_survey(step, code)
        return

    flow = step.runtime.flows[FLOW]
    assert isinstance(flow, SurveyFlow)
    # Surveys for a closed group (deputies, staff) are reached by their own link or code,
    # not offered to everybody who sends /survey.
    open_surveys = [
        s
        for s in flow.catalog.values()
        if not s.invitation_only and await survey_is_open(step.session, s.code, step.now)
    ]
    if not open_surveys:
        step.say(step._("There is no open survey at the moment. Thank you for your interest!"))
        return
    if len(open_surveys) == 1:
        await start_survey(step, open_surveys[0].code)
        return
    step.say(
        step._("Which survey would you like to take?"),
        [[step.button(localized(s.title, step.locale), "o", s.code)] for s in open_surveys],
    )


async def _act_open(step: Step, code: str) -> None:
    await start_survey(step, code)


async def _start_survey_link(step: Step, rest: str) -> None:
    code, _, township = rest.partition("_")
    await start_survey(step, code, township or None)


async def _start_invitation_link(step: Step, token: str) -> None:
    """``/start t_<token>``: open the survey of a single-use invitation token."""

    if not _TOKEN_RE.fullmatch(token):
        step.say(step._("This invitation link is not valid."))
        return
    digest = invitation_hash(step.runtime.secret, token)
    row = (
        await step.session.execute(
            select(
                col(SurveyInvitation.survey),
                col(SurveyInvitation.township),
                col(SurveyInvitation.used_at),
            ).where(col(SurveyInvitation.token_hash) == digest)
        )
    ).one_or_none()
    if row is None:
        step.say(step._("This invitation link is not valid."))
        return
    if row.used_at is not None:
        step.say(step._("This invitation link has already been used."))
        return
    await start_survey(step, row.survey, row.township, token_hash=digest)


def install(registry: DialogRegistry, catalog: Mapping[str, Survey]) -> None:
    """Register the survey flow, ``/survey``, the ``s_`` and ``t_`` deep links and
    survey-picker buttons."""
    registry.add_flow(SurveyFlow(catalog))
    registry.add_command("survey", _cmd_survey, N_("Take a satisfaction survey"))
    registry.add_start_payload("s", _start_survey_link)
    registry.add_start_payload(INVITATION_PAYLOAD, _start_invitation_link)
    registry.add_action("o", _act_open)
