"""The survey engine: visibility, next question, answer validation, normalization."""

from __future__ import annotations

from typing import Any

import pytest

from surveys.engine import (
    AnswerError,
    ErrorCode,
    is_complete,
    next_question,
    normalize_answers,
    progress,
    validate_answer,
    validate_submission,
    visible_questions,
)
from surveys.schema import Question, Survey, load_catalog

DEPUTIES = load_catalog()["deputies-2026"]
FAZHI = load_catalog()["fazhi-2026"]


def codes(questions: list[Question]) -> list[str]:
    return [q.code for q in questions]


def q(survey: Survey, code: str) -> Question:
    found = survey.question(code)
    assert found is not None
    return found


def option(code: str) -> dict[str, Any]:
    return {"code": code, "label": {"zh_CN": code}}


# q1 -> q2 (if q1 = yes) -> q3 (if q2 contains x); q4 optional text
CHAIN = Survey.model_validate(
    {
        "code": "chain",
        "title": {"zh_CN": "链"},
        "intro": {"zh_CN": "链"},
        "questions": [
            {
                "code": "q1",
                "type": "single",
                "text": {"zh_CN": "1"},
                "options": [option("yes"), option("no")],
            },
            {
                "code": "q2",
                "type": "multiple",
                "text": {"zh_CN": "2"},
                "options": [option("x"), option("y"), option("z")],
                "show_if": {"question": "q1", "in": ["yes"]},
            },
            {
                "code": "q3",
                "type": "scale",
                "text": {"zh_CN": "3"},
                "show_if": {"question": "q2", "in": ["x"]},
            },
            {
                "code": "q4",
                "type": "text",
                "required": False,
                "max_length": 5,
                "text": {"zh_CN": "4"},
            },
        ],
    }
)


# ------------------------------------------------------------------------------------------
# Visibility and flow


def test_follow_up_hidden_until_dissatisfied() -> None:
    assert codes(visible_questions(DEPUTIES, {})) == ["role", "handling", "comment"]
    answers = {"role": "deputy", "handling": "satisfied"}
    assert codes(visible_questions(DEPUTIES, answers)) == ["role", "handling", "comment"]
    for level in ("dissatisfied", "very_dissatisfied"):
        answers = {"role": "deputy", "handling": level}
        assert codes(visible_questions(DEPUTIES, answers)) == [
            "role",
            "handling",
            "aspects",
            "comment",
        ]


def test_multiple_choice_controls_visibility_by_any_chosen_option() -> None:
    assert "q3" in codes(visible_questions(CHAIN, {"q1": "yes", "q2": ["z", "x"]}))
    assert "q3" not in codes(visible_questions(CHAIN, {"q1": "yes", "q2": ["y", "z"]}))
    assert "q3" not in codes(visible_questions(CHAIN, {"q1": "yes", "q2": []}))


def test_hidden_controller_hides_its_dependants() -> None:
    # q2 still holds "x" from before q1 was changed to "no": q3 must not show
    answers = {"q1": "no", "q2": ["x"]}
    assert codes(visible_questions(CHAIN, answers)) == ["q1", "q4"]


def test_malformed_controlling_answers_do_not_crash_or_reveal() -> None:
    for bad in (42, {"x": 1}, [1, 2], None):
        assert codes(visible_questions(CHAIN, {"q1": "yes", "q2": bad})) == ["q1", "q2", "q4"]


def test_next_question_walks_the_deputies_survey() -> None:
    answers: dict[str, Any] = {}
    assert q(DEPUTIES, "role") is next_question(DEPUTIES, answers)
    answers["role"] = "member"
    assert next_question(DEPUTIES, answers) is q(DEPUTIES, "handling")
    answers["handling"] = "very_dissatisfied"
    assert next_question(DEPUTIES, answers) is q(DEPUTIES, "aspects")
    answers["aspects"] = ["timeliness"]
    assert next_question(DEPUTIES, answers) is q(DEPUTIES, "comment")
    assert not is_complete(DEPUTIES, answers)
    answers["comment"] = None  # skipped
    assert next_question(DEPUTIES, answers) is None
    assert is_complete(DEPUTIES, answers)


def test_satisfied_deputy_skips_the_follow_up() -> None:
    answers = {"role": "deputy", "handling": "fairly_satisfied"}
    assert next_question(DEPUTIES, answers) is q(DEPUTIES, "comment")


def test_skipping_a_required_question_asks_it_again() -> None:
    assert next_question(DEPUTIES, {"role": None}) is q(DEPUTIES, "role")
    assert next_question(DEPUTIES, {"role": "deputy", "handling": None}) is q(DEPUTIES, "handling")


def test_skipped_optional_question_is_not_asked_again() -> None:
    answers: dict[str, Any] = {code: "satisfied" for code in codes(list(FAZHI.questions))[:8]}
    assert next_question(FAZHI, answers) is q(FAZHI, "channels")
    answers["channels"] = None
    assert next_question(FAZHI, answers) is q(FAZHI, "comment")
    answers["comment"] = None
    assert next_question(FAZHI, answers) is None


def test_progress_counts_visible_questions() -> None:
    assert progress(DEPUTIES, {}) == (0, 3)
    assert progress(DEPUTIES, {"role": "deputy", "handling": "dissatisfied"}) == (2, 4)
    assert progress(DEPUTIES, {"role": "deputy", "handling": "satisfied", "comment": None}) == (
        3,
        3,
    )
    assert progress(DEPUTIES, {"role": None}) == (0, 3)


# ------------------------------------------------------------------------------------------
# One answer


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        ("q1", "yes", None),
        ("q1", None, AnswerError(ErrorCode.REQUIRED)),
        ("q1", "maybe", AnswerError(ErrorCode.INVALID_OPTION, {"option": "maybe"})),
        ("q1", ["yes"], AnswerError(ErrorCode.INVALID_TYPE, {"expected": "string"})),
        ("q1", 1, AnswerError(ErrorCode.INVALID_TYPE, {"expected": "string"})),
        ("q2", ["x", "z"], None),
        ("q2", [], AnswerError(ErrorCode.REQUIRED)),
        ("q2", "x", AnswerError(ErrorCode.INVALID_TYPE, {"expected": "list"})),
        ("q2", ["x", 3], AnswerError(ErrorCode.INVALID_TYPE, {"expected": "list"})),
        ("q2", ["x", "w"], AnswerError(ErrorCode.INVALID_OPTION, {"option": "w"})),
        ("q2", ["x", "x"], AnswerError(ErrorCode.DUPLICATE_OPTION, {"option": "x"})),
        ("q3", "very_satisfied", None),
        ("q3", "5", AnswerError(ErrorCode.INVALID_OPTION, {"option": "5"})),
        ("q3", "非常满意", AnswerError(ErrorCode.INVALID_OPTION, {"option": "非常满意"})),
        ("q4", None, None),
        ("q4", "   ", None),
        ("q4", "  12345  ", None),
        ("q4", "123456", AnswerError(ErrorCode.TOO_LONG, {"max_length": 5, "length": 6})),
        ("q4", ["text"], AnswerError(ErrorCode.INVALID_TYPE, {"expected": "string"})),
    ],
)
def test_validate_answer(code: str, value: Any, expected: AnswerError | None) -> None:
    assert validate_answer(q(CHAIN, code), value) == expected


def test_required_text_must_not_be_blank() -> None:
    question = Question.model_validate({"code": "t", "type": "text", "text": {"zh_CN": "t"}})
    assert validate_answer(question, " \n ") == AnswerError(ErrorCode.REQUIRED)
    assert validate_answer(question, "x" * 500) is None
    assert validate_answer(question, "x" * 501) == AnswerError(
        ErrorCode.TOO_LONG, {"max_length": 500, "length": 501}
    )


def test_optional_multiple_accepts_an_empty_list() -> None:
    assert validate_answer(q(FAZHI, "channels"), []) is None
    assert validate_answer(q(FAZHI, "channels"), ["mobile", "hotline"]) is None


def test_comment_limit_in_the_shipped_survey_counts_characters() -> None:
    comment = q(FAZHI, "comment")
    assert validate_answer(comment, "好" * 300) is None
    error = validate_answer(comment, "好" * 301)
    assert error is not None and error.code == ErrorCode.TOO_LONG
    assert error.to_dict() == {"code": "too_long", "params": {"max_length": 300, "length": 301}}


# ------------------------------------------------------------------------------------------
# Whole submissions


def full_fazhi() -> dict[str, Any]:
    answers: dict[str, Any] = {code: "satisfied" for code in codes(list(FAZHI.questions))[:8]}
    answers["channels"] = ["mobile"]
    answers["comment"] = "很好"
    return answers


def test_valid_submissions() -> None:
    assert validate_submission(FAZHI, full_fazhi()) == {}
    minimal = {k: v for k, v in full_fazhi().items() if k not in ("channels", "comment")}
    assert validate_submission(FAZHI, minimal) == {}
    assert validate_submission(DEPUTIES, {"role": "deputy", "handling": "satisfied"}) == {}
    assert (
        validate_submission(
            DEPUTIES, {"role": "deputy", "handling": "dissatisfied", "aspects": ["substance"]}
        )
        == {}
    )


def test_missing_required_answers_are_each_reported() -> None:
    answers = full_fazhi()
    del answers["oversight"]
    answers["law_enforcement"] = None
    errors = validate_submission(FAZHI, answers)
    assert errors == {
        "oversight": AnswerError(ErrorCode.REQUIRED),
        "law_enforcement": AnswerError(ErrorCode.REQUIRED),
    }


def test_follow_up_required_once_shown() -> None:
    errors = validate_submission(DEPUTIES, {"role": "deputy", "handling": "dissatisfied"})
    assert errors == {"aspects": AnswerError(ErrorCode.REQUIRED)}


def test_answer_to_a_hidden_question_is_not_applicable() -> None:
    answers: dict[str, Any] = {"role": "deputy", "handling": "satisfied", "aspects": ["timeliness"]}
    errors = validate_submission(DEPUTIES, answers)
    assert errors == {"aspects": AnswerError(ErrorCode.NOT_APPLICABLE, {"depends_on": "handling"})}
    # declaring a hidden question skipped is fine
    answers["aspects"] = None
    assert validate_submission(DEPUTIES, answers) == {}


def test_unknown_question_codes() -> None:
    answers = full_fazhi()
    answers["township"] = "xx"
    assert validate_submission(FAZHI, answers) == {
        "township": AnswerError(ErrorCode.UNKNOWN_QUESTION)
    }


def test_many_errors_at_once() -> None:
    answers = full_fazhi()
    answers["business_env"] = "good"
    answers["public_service"] = 5
    answers["channels"] = ["mobile", "mobile"]
    answers["comment"] = "x" * 301
    errors = validate_submission(FAZHI, answers)
    assert {code: e.code for code, e in errors.items()} == {
        "business_env": ErrorCode.INVALID_OPTION,
        "public_service": ErrorCode.INVALID_TYPE,
        "channels": ErrorCode.DUPLICATE_OPTION,
        "comment": ErrorCode.TOO_LONG,
    }


def test_error_codes_are_the_documented_strings() -> None:
    assert {str(c) for c in ErrorCode} == {
        "required",
        "invalid_option",
        "duplicate_option",
        "invalid_type",
        "too_long",
        "not_applicable",
        "unknown_question",
        "invalid_characters",
    }


# ------------------------------------------------------------------------------------------
# Normalization


def test_normalize_drops_hidden_skipped_unknown_and_cleans_values() -> None:
    answers = {
        "q1": "no",
        "q2": ["z", "x", "z"],  # hidden (q1 = no)
        "q3": "satisfied",  # hidden
        "q4": "  hi  ",
        "extra": "ignored",
    }
    assert normalize_answers(CHAIN, answers) == {"q1": "no", "q4": "hi"}
    answers["q1"] = "yes"
    answers["q2"] = ["z", "x"]
    assert normalize_answers(CHAIN, answers) == {
        "q1": "yes",
        "q2": ["x", "z"],
        "q3": "satisfied",
        "q4": "hi",
    }


def test_normalize_never_lets_an_invalid_controller_reveal_a_follow_up() -> None:
    answers = {"q1": "yes", "q2": ["x", "bogus"], "q3": "satisfied", "q4": None}
    assert normalize_answers(CHAIN, answers) == {"q1": "yes"}


def test_normalize_drops_blank_text_and_empty_lists() -> None:
    answers = {**full_fazhi(), "channels": [], "comment": "   "}
    normalized = normalize_answers(FAZHI, answers)
    assert "channels" not in normalized
    assert "comment" not in normalized
    assert len(normalized) == 8


# ------------------------------------------------------------------------------------------
# "Don't know"


def _fazhi_complete(**overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {
        question.code: "satisfied" for question in FAZHI.questions if question.type == "scale"
    }
    answers.update(channels=None, comment=None)
    answers.update(overrides)
    return answers


def test_dont_know_is_accepted_where_offered() -> None:
    assert validate_answer(q(FAZHI, "major_decisions"), "unknown") is None
    answers = _fazhi_complete(major_decisions="unknown", oversight="unknown")
    assert validate_submission(FAZHI, answers) == {}
    stored = normalize_answers(FAZHI, answers)
    assert stored["major_decisions"] == "unknown" and stored["oversight"] == "unknown"


def test_dont_know_is_rejected_where_not_offered() -> None:
    error = AnswerError(ErrorCode.INVALID_OPTION, {"option": "unknown"})
    assert validate_answer(q(DEPUTIES, "handling"), "unknown") == error
    answers = {"role": "deputy", "handling": "unknown", "comment": None}
    assert validate_submission(DEPUTIES, answers) == {"handling": error}
    assert "handling" not in normalize_answers(DEPUTIES, answers)


def test_dont_know_answers_a_required_question() -> None:
    answers = _fazhi_complete(
        **{code: "unknown" for code in _fazhi_complete() if code not in ("channels", "comment")}
    )
    assert is_complete(FAZHI, answers)
    assert validate_submission(FAZHI, answers) == {}
