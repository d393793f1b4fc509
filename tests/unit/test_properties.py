"""Property-based tests (hypothesis) of the pure survey core: the engine and the scoring."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.types import utcnow
from surveys.appraisal import Grade, ballot_score, grade
from surveys.engine import (
    ErrorCode,
    check_submission,
    is_complete,
    next_question,
    normalize_answers,
    progress,
    validate_answer,
    validate_submission,
    visible_questions,
)
from surveys.schema import Question, Survey, load_catalog
from surveys.scoring import Verdict, verdict, wilson_interval
from surveys.submission import Submission, request_fingerprint
from tests.helpers import examples

CATALOG = load_catalog()
SURVEYS = st.sampled_from(sorted(CATALOG.values(), key=lambda s: s.code))
PROFILE = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

STORABLE = st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\t\n\r")
"""Characters a free-text answer may hold (no NUL or other control character)."""
CONTROL = st.sampled_from(
    [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]]
)

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _valid_value(draw: st.DrawFn, question: Question) -> Any:
    codes = list(question.option_codes)
    if question.type in ("single", "scale"):
        return draw(st.sampled_from(codes))
    if question.type == "multiple":
        low = 1 if question.required else 0
        return draw(
            st.lists(st.sampled_from(codes), min_size=low, max_size=len(codes), unique=True)
        )
    limit = question.max_length or 50
    return draw(st.text(STORABLE, min_size=1, max_size=min(limit, 40)).filter(lambda t: t.strip()))


@st.composite
def chat_walk(draw: st.DrawFn, survey: Survey) -> dict[str, Any]:
    """Answers given one question at a time, as the chat flow asks them."""
    answers: dict[str, Any] = {}
    for _ in range(len(survey.questions) + 1):
        question = next_question(survey, answers)
        if question is None:
            break
        skip = not question.required and draw(st.booleans())
        answers[question.code] = None if skip else _valid_value(draw, question)
    return answers


@PROFILE
@given(data=st.data(), survey=SURVEYS)
def test_answering_what_is_asked_always_completes_a_valid_survey(
    data: st.DataObject, survey: Survey
) -> None:
    answers = data.draw(chat_walk(survey))
    assert is_complete(survey, answers)
    assert validate_submission(survey, answers) == {}
    done, total = progress(survey, answers)
    assert done == total == len(visible_questions(survey, answers))
    kept = normalize_answers(survey, answers)
    assert normalize_answers(survey, kept) == kept  # normalising twice changes nothing
    assert (
        validate_submission(survey, {**kept, **{c: None for c in answers if c not in kept}}) == {}
    )


@PROFILE
@given(survey=SURVEYS, junk=st.dictionaries(st.text(max_size=20), JSONISH, max_size=12))
def test_any_submission_is_judged_without_crashing_and_normalises_to_valid_answers(
    survey: Survey, junk: dict[str, Any]
) -> None:
    errors = validate_submission(survey, junk)
    for code, error in errors.items():
        assert isinstance(code, str) and isinstance(error.code, ErrorCode)
    kept = normalize_answers(survey, junk)
    for code, value in kept.items():
        question = survey.question(code)
        assert question is not None
        assert validate_answer(question, value) is None
    # what normalising kept is never refused for its form, only for what is still missing
    assert all(e.code == ErrorCode.REQUIRED for e in validate_submission(survey, kept).values())


@PROFILE
@given(
    data=st.data(), survey=SURVEYS, junk=st.dictionaries(st.text(max_size=20), JSONISH, max_size=12)
)
def test_the_one_pass_check_is_validation_then_normalizing(
    data: st.DataObject, survey: Survey, junk: dict[str, Any]
) -> None:
    """What storing uses (:func:`check_submission`) judges exactly as the two apart do, for
    valid answer sets (as the chat asks them, with some blanks and skips), for them with junk
    mixed in, and for junk alone."""
    walk = data.draw(chat_walk(survey))
    blanks = {
        q.code: data.draw(st.sampled_from([None, "", "  ", []]))
        for q in survey.questions
        if q.code not in walk and data.draw(st.booleans())
    }
    padded = {
        code: f" {value}\n" if isinstance(value, str) and data.draw(st.booleans()) else value
        for code, value in walk.items()
    }  # free text is stored stripped; a padded option code is refused
    wrong = {q.code: data.draw(JSONISH) for q in survey.questions if data.draw(st.booleans())}
    for answers in (walk, {**blanks, **walk}, padded, {**walk, **wrong}, {**walk, **junk}, junk):
        errors = validate_submission(survey, answers)
        expected = None if errors else normalize_answers(survey, answers)
        assert check_submission(survey, answers) == (errors, expected)


@PROFILE
@given(n=st.integers(min_value=1, max_value=5000), data=st.data())
def test_wilson_interval_is_a_proper_interval_around_the_rate(n: int, data: st.DataObject) -> None:
    satisfied = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson_interval(satisfied, n)
    rate = satisfied / n
    assert 0.0 <= low <= rate <= high <= 1.0
    wider_low, wider_high = wilson_interval(satisfied, n, confidence=0.99)
    assert wider_low <= low + 1e-12 and wider_high >= high - 1e-12


@PROFILE
@given(
    n=st.integers(min_value=0, max_value=3000),
    data=st.data(),
    target=st.sampled_from([0.8, 0.9, 0.95]),
)
def test_verdicts_follow_the_interval_and_more_needed_settles_it(
    n: int, data: st.DataObject, target: float
) -> None:
    satisfied = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson_interval(satisfied, n)
    result = verdict(satisfied, n, target)
    if low >= target:
        assert result.verdict is Verdict.MET
    elif high < target:
        assert result.verdict is Verdict.NOT_MET
    else:
        assert result.verdict is Verdict.INCONCLUSIVE
        if n and result.more_needed is not None:
            total = n + result.more_needed
            projected = verdict(satisfied / n * total, total, target)
            assert projected.verdict is not Verdict.INCONCLUSIVE


@PROFILE
@given(counts=st.tuples(*[st.integers(min_value=0, max_value=500)] * 4))
def test_ballot_scores_stay_in_range_and_grades_rise_with_the_score(
    counts: tuple[int, int, int, int],
) -> None:
    score = ballot_score(*counts)
    if sum(counts) == 0:
        assert score is None
        return
    assert score is not None and 40.0 <= score <= 100.0
    order = [Grade.POOR, Grade.FAIR, Grade.GOOD, Grade.EXCELLENT]
    better = ballot_score(counts[0] + 1, counts[1], counts[2], counts[3])
    assert better is not None and better >= score
    assert order.index(grade(better)) >= order.index(grade(score))


@PROFILE
@given(
    survey=SURVEYS,
    before=st.text(STORABLE, max_size=10),
    bad=CONTROL,
    after=st.text(STORABLE, max_size=10),
)
def test_text_with_a_control_character_is_refused_wherever_it_is(
    survey: Survey, before: str, bad: str, after: str
) -> None:
    texts = [q for q in survey.questions if q.type == "text"]
    for question in texts:
        error = validate_answer(question, before + bad + after)
        assert error is not None and error.code == ErrorCode.INVALID_CHARACTERS


def _canonical_sha256(doc: dict[str, Any]) -> str:
    """The fingerprint's definition: SHA-256 of the standard library's canonical JSON."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@PROFILE
@given(
    data=st.data(),
    survey=SURVEYS,
    token=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    src=st.none() | st.text(STORABLE, min_size=1, max_size=12),
)
def test_fingerprints_keep_the_canonical_json_definition(
    data: st.DataObject, survey: Survey, token: str | None, src: str | None
) -> None:
    """Fingerprints of valid answers are written by orjson: byte for byte the standard
    library's canonical form, or a retry of a submission stored before would no longer match."""
    answers = data.draw(chat_walk(survey))
    item = Submission(
        survey=survey, answers=answers, respondent="r" * 64, channel="api",
        township_code=src, locale="zh_CN", now=utcnow(), idempotency_key="k", token_hash=token,
    )  # fmt: skip
    doc = {
        "survey": survey.code,
        "answers": normalize_answers(survey, answers),
        "token": token,
        "src": src,
    }
    assert request_fingerprint(item) == _canonical_sha256(doc)
    # Invalid answers count as sent (floats, long integers): the standard library's form.
    invalid = {**answers, survey.questions[0].code: 1.5e16, "extra": [10**40, None, True]}
    item.answers = invalid
    assert validate_submission(survey, invalid)
    assert request_fingerprint(item) == _canonical_sha256({**doc, "answers": {"invalid": invalid}})
