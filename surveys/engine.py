"""Answering a survey: which questions apply, which comes next, whether answers are valid.

Pure functions over a :class:`~surveys.schema.Survey` and an *answers* mapping
``{question code: value}`` where a value is

- an option code (``str``) for ``single`` and ``scale`` questions,
- a list of option codes for ``multiple`` questions,
- a string for ``text`` questions,
- ``None`` when the respondent skipped the question (only meaningful for optional ones).

A question code that is absent from the mapping has not been asked yet. Chat flows call
:func:`next_question` after each answer; the H5 page and the API submit everything at once and
store what :func:`check_submission` returns: the errors and, with none, the normalized answers
(:func:`validate_submission` and :func:`normalize_answers` are its two halves apart).

Errors are :class:`AnswerError` values with a machine ``code`` and ``params``; the HTTP and chat
edges turn them into localized text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from core.text import text_is_storable
from surveys.schema import Question, Survey

__all__ = [
    "AnswerError",
    "AnswerValue",
    "Answers",
    "ErrorCode",
    "check_submission",
    "is_complete",
    "is_visible",
    "next_question",
    "normalize_answers",
    "progress",
    "validate_answer",
    "validate_submission",
    "visible_questions",
]

AnswerValue = str | list[str]
"""A stored answer: an option code, a list of option codes, or free text."""

Answers = Mapping[str, Any]
"""``{question code: value or None}`` as received; values are checked, not trusted."""


class ErrorCode(StrEnum):
    """Why an answer was rejected."""

    REQUIRED = "required"
    """A required question has no answer (absent, ``None``, empty text or empty list)."""
    INVALID_OPTION = "invalid_option"
    """An option code that the question does not offer. ``params``: ``option``."""
    DUPLICATE_OPTION = "duplicate_option"
    """The same option twice in a ``multiple`` answer. ``params``: ``option``."""
    INVALID_TYPE = "invalid_type"
    """Wrong JSON type. ``params``: ``expected`` (``"string"`` or ``"list"``)."""
    TOO_LONG = "too_long"
    """Free text over the limit. ``params``: ``max_length``, ``length`` (characters)."""
    NOT_APPLICABLE = "not_applicable"
    """An answer to a question hidden by its ``show_if``. ``params``: ``depends_on``."""
    UNKNOWN_QUESTION = "unknown_question"
    """An answer keyed by a code that is not a question of the survey."""
    INVALID_CHARACTERS = "invalid_characters"
    """Free text with characters no database keeps: NUL and other control characters
    (tab and line breaks are fine) or unpaired surrogates."""


@dataclass(frozen=True, slots=True)
class AnswerError:
    """A rejected answer: machine-readable ``code`` and the ``params`` a message needs."""

    code: ErrorCode
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"code": ..., "params": {...}}`` for JSON."""
        return {"code": str(self.code), "params": dict(self.params)}


def _chosen(value: Any) -> set[str]:
    """The option codes in a raw answer value, ignoring anything malformed."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | tuple):
        return {item for item in value if isinstance(item, str)}
    return set()


def is_visible(question: Question, answers: Answers, visible_codes: Collection[str]) -> bool:
    """Whether ``question`` applies given the answers and the codes of the earlier questions
    already known to be visible. A question whose controlling question is itself hidden is
    hidden."""
    cond = question.show_if
    if cond is None:
        return True
    if cond.question not in visible_codes:
        return False
    return bool(_chosen(answers.get(cond.question)) & set(cond.in_))


def visible_questions(survey: Survey, answers: Answers) -> list[Question]:
    """The questions that apply given ``answers``, in survey order.

    A question with ``show_if`` is visible only when its (earlier, visible) controlling question
    has been answered with one of the listed options. Questions after an unanswered controlling
    question are therefore hidden until it is answered.
    """
    visible: list[Question] = []
    codes: set[str] = set()
    for question in survey.questions:
        if is_visible(question, answers, codes):
            visible.append(question)
            codes.add(question.code)
    return visible


def _handled(question: Question, answers: Answers) -> bool:
    if question.code not in answers:
        return False
    return answers[question.code] is not None or not question.required


def next_question(survey: Survey, answers: Answers) -> Question | None:
    """The next question to ask one at a time, or ``None`` when the survey is complete.

    It is the first visible question that is neither answered nor (if optional) explicitly
    skipped with ``None``. A required question marked ``None`` is asked again. The function
    does not validate the values; check each with :func:`validate_answer` as it arrives.
    """
    for question in visible_questions(survey, answers):
        if not _handled(question, answers):
            return question
    return None


def is_complete(survey: Survey, answers: Answers) -> bool:
    """Whether every visible question is answered or (if optional) skipped."""
    return next_question(survey, answers) is None


def progress(survey: Survey, answers: Answers) -> tuple[int, int]:
    """``(handled, total)`` over the currently visible questions, for "第 2/9 题" displays.
    ``total`` can grow when an answer reveals a follow-up question."""
    visible = visible_questions(survey, answers)
    return sum(1 for q in visible if _handled(q, answers)), len(visible)


def validate_answer(question: Question, value: Any) -> AnswerError | None:
    """Check one value for one question (ignoring ``show_if``); ``None`` when it is acceptable.

    ``None``, blank text and an empty list are "no answer": an error only for a required
    question.
    """
    if value is None:
        return AnswerError(ErrorCode.REQUIRED) if question.required else None
    if question.type in ("single", "scale"):
        if not isinstance(value, str):
            return AnswerError(ErrorCode.INVALID_TYPE, {"expected": "string"})
        if value not in question.option_codes:
            return AnswerError(ErrorCode.INVALID_OPTION, {"option": value})
        return None
    if question.type == "multiple":
        if not isinstance(value, list | tuple):
            return AnswerError(ErrorCode.INVALID_TYPE, {"expected": "list"})
        if not value:
            return AnswerError(ErrorCode.REQUIRED) if question.required else None
        seen: set[str] = set()
        for item in value:
            if not isinstance(item, str):
                return AnswerError(ErrorCode.INVALID_TYPE, {"expected": "list"})
            if item not in question.option_codes:
                return AnswerError(ErrorCode.INVALID_OPTION, {"option": item})
            if item in seen:
                return AnswerError(ErrorCode.DUPLICATE_OPTION, {"option": item})
            seen.add(item)
        return None
    # text
    if not isinstance(value, str):
        return AnswerError(ErrorCode.INVALID_TYPE, {"expected": "string"})
    if not text_is_storable(value):
        return AnswerError(ErrorCode.INVALID_CHARACTERS)
    text = value.strip()
    if not text:
        return AnswerError(ErrorCode.REQUIRED) if question.required else None
    limit = question.max_length
    if limit is not None and len(text) > limit:
        return AnswerError(ErrorCode.TOO_LONG, {"max_length": limit, "length": len(text)})
    return None


def validate_submission(survey: Survey, answers: Answers) -> dict[str, AnswerError]:
    """Check a complete submission; ``{question code: error}``, empty when it is valid.

    Reports unknown question codes, missing required answers, malformed values, and answers to
    questions that ``show_if`` hides given the other answers (skipping such a question with
    ``None`` is fine). The errors of :func:`check_submission`.
    """
    return check_submission(survey, answers)[0]


def normalize_answers(survey: Survey, answers: Answers) -> dict[str, AnswerValue]:
    """The answers worth storing: only visible questions, no skipped or blank answers, text
    stripped, multiple choices de-duplicated in the survey's option order, unknown codes and
    invalid values dropped. Validate first; this does not report anything."""
    result: dict[str, AnswerValue] = {}
    shown: set[str] = set()
    for question in survey.questions:
        # Visibility is judged on the cleaned answers kept so far, so an invalid controlling
        # answer never reveals a follow-up.
        if not is_visible(question, result, shown):
            continue
        shown.add(question.code)
        value = answers.get(question.code)
        if value is None or validate_answer(question, value) is not None:
            continue
        clean = _clean(question, value)
        if clean is not None:
            result[question.code] = clean
    return result


def _clean(question: Question, value: Any) -> AnswerValue | None:
    """A valid, non-null ``value`` in its stored form (``None``: nothing worth storing)."""
    if question.type == "multiple":
        chosen = _chosen(value)
        return [c for c in question.option_codes if c in chosen] if chosen else None
    if question.type == "text":
        return value.strip() or None
    return cast(str, value)


def check_submission(
    survey: Survey, answers: Answers
) -> tuple[dict[str, AnswerError], dict[str, AnswerValue] | None]:
    """``(errors, normal)``: :func:`validate_submission`'s errors and, when there are none,
    :func:`normalize_answers`' result (else ``None``), in one pass over the questions, each
    answer checked once (what storing a submission needs; the two apart check every answer
    twice).

    For valid answers, judging visibility on the answers as sent (as validation does) and on
    the cleaned ones (as normalizing does) agree: a valid choice keeps its options when
    cleaned, and only choice questions control others."""
    errors: dict[str, AnswerError] = {}
    for code in answers:
        if survey.question(code) is None:
            errors[code] = AnswerError(ErrorCode.UNKNOWN_QUESTION)
    normal: dict[str, AnswerValue] = {}
    visible: set[str] = set()
    for question in survey.questions:
        value = answers.get(question.code)
        if not is_visible(question, answers, visible):
            if value is not None and question.show_if is not None:
                errors[question.code] = AnswerError(
                    ErrorCode.NOT_APPLICABLE, {"depends_on": question.show_if.question}
                )
            continue
        visible.add(question.code)
        error = validate_answer(question, value)
        if error is not None:
            errors[question.code] = error
        elif value is not None and not errors:
            clean = _clean(question, value)
            if clean is not None:
                normal[question.code] = clean
    return errors, (None if errors else normal)
