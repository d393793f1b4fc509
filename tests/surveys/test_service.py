"""The domain entry point the chat dialogs and the HTTP edge share, on a real database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from storage.db import transaction
from storage.models_surveys import SurveyAnswer, SurveyInvitation, SurveyResponse, SurveyState
from surveys.engine import ErrorCode
from surveys.respondents import invitation_hash, pseudonym
from surveys.schema import load_catalog
from surveys.state import survey_is_open, sync_catalog
from surveys.submission import (
    AlreadyAnswered,
    IdempotencyKeyReused,
    InvalidAnswers,
    Submission,
    SurveyClosed,
    TokenInvalid,
    TokenUsed,
    request_fingerprint,
    submit_many,
    submit_response,
)
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, make_invitations, seed_surveys

CATALOG = load_catalog()
FAZHI = CATALOG["fazhi-2026"]


def test_pseudonym_is_keyed_and_separates_kinds() -> None:
    a = pseudonym(b"k1", "chat", "telegram:42")
    assert len(a) == 64 and int(a, 16) >= 0
    assert a == pseudonym(b"k1", "chat", "telegram:42")
    assert a != pseudonym(b"k2", "chat", "telegram:42")
    assert a != pseudonym(b"k1", "token", "telegram:42")
    assert "42" not in a


async def _submit(sessions: Any, answers: dict[str, Any] | None = None, **kw: Any) -> Any:
    values: dict[str, Any] = {
        "respondent": pseudonym(SECRET, "chat", "telegram:1001"),
        "channel": "telegram",
        "township_code": None,
        "locale": "zh_CN",
        "now": NOW,
    }
    values.update(kw)
    async with transaction(sessions) as session:
        return await submit_response(session, FAZHI, answers or fazhi_answers(), **values)


async def test_submit_writes_in_the_callers_transaction(sessions: Any) -> None:
    await seed_surveys(sessions)
    async with sessions() as session, session.begin():
        result = await submit_response(
            session,
            FAZHI,
            fazhi_answers(),
            respondent=pseudonym(SECRET, "chat", "wecom:zhangsan"),
            channel="wecom",
            township_code="zbp",
            locale="zh_CN",
            now=NOW,
        )
        assert result.created and result.township == "zbp"
        await session.rollback()  # the caller decides: nothing was committed
    async with sessions() as session:
        assert (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one() == 0


async def test_errors_are_typed(sessions: Any) -> None:
    await seed_surveys(sessions)
    first = await _submit(sessions)
    assert first.created
    with pytest.raises(AlreadyAnswered) as again:
        await _submit(sessions)
    assert again.value.response_id == first.response_id
    with pytest.raises(InvalidAnswers) as bad:
        await _submit(
            sessions,
            fazhi_answers(oversight=None),
            respondent=pseudonym(SECRET, "chat", "telegram:2"),
        )
    assert bad.value.errors["oversight"].code is ErrorCode.REQUIRED
    async with transaction(sessions) as session:
        await session.execute(
            update(SurveyState).where(SurveyState.code == "fazhi-2026").values(status="closed")
        )
    with pytest.raises(SurveyClosed):
        await _submit(sessions, respondent=pseudonym(SECRET, "chat", "telegram:3"))


async def test_window_and_manual_state(sessions: Any) -> None:
    await seed_surveys(sessions)
    async with sessions() as session:
        assert await survey_is_open(session, "fazhi-2026", NOW)
        assert not await survey_is_open(session, "fazhi-2026", NOW + timedelta(days=400))
        assert not await survey_is_open(session, "fazhi-2026", NOW - timedelta(days=400))
        assert not await survey_is_open(session, "no-such", NOW)
    async with transaction(sessions) as session:
        await session.execute(
            update(SurveyState).where(SurveyState.code == "fazhi-2026").values(status="open")
        )
    async with sessions() as session:
        assert await survey_is_open(session, "fazhi-2026", NOW + timedelta(days=400))


async def test_tokens_single_use_and_township(sessions: Any) -> None:
    await seed_surveys(sessions)
    (token,) = await make_invitations(sessions, 1, township="xj")
    ok = await _submit(
        sessions, token=token, secret=SECRET, respondent=pseudonym(SECRET, "token", token)
    )
    assert ok.township == "xj"
    with pytest.raises(TokenUsed):
        await _submit(
            sessions, token=token, secret=SECRET, respondent=pseudonym(SECRET, "web", "other")
        )
    with pytest.raises(TokenInvalid):
        await _submit(sessions, token="nope-nope-nope", secret=SECRET)
    async with sessions() as session:
        row = (await session.execute(select(SurveyInvitation))).scalar_one()
    assert row.used_at is not None
    assert row.token_hash == invitation_hash(SECRET, token) != token


async def test_idempotency_key_replays(sessions: Any) -> None:
    await seed_surveys(sessions)
    first = await _submit(sessions, idempotency_key="retry-1")
    again = await _submit(sessions, idempotency_key="retry-1")
    assert again.response_id == first.response_id and not again.created


async def test_idempotency_key_reused_with_other_answers_is_refused(sessions: Any) -> None:
    await seed_surveys(sessions)
    first = await _submit(sessions, idempotency_key="retry-2")
    # the same submission, keys in another order and a blank answer: still a replay
    same = dict(reversed(list(fazhi_answers(oversight="satisfied").items())))
    again = await _submit(sessions, same, idempotency_key="retry-2")
    assert again.response_id == first.response_id and not again.created
    with pytest.raises(IdempotencyKeyReused) as refused:
        await _submit(sessions, fazhi_answers("dissatisfied"), idempotency_key="retry-2")
    assert refused.value.code == "idempotency_key_reused"
    assert refused.value.response_id == first.response_id
    with pytest.raises(IdempotencyKeyReused):  # other src
        await _submit(sessions, idempotency_key="retry-2", township_code="T01")
    with pytest.raises(IdempotencyKeyReused):  # invalid answers never match a stored response
        await _submit(sessions, fazhi_answers(business_env="great"), idempotency_key="retry-2")
    async with sessions() as session:
        n = (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one()
        stored = (await session.execute(select(SurveyAnswer.value).distinct())).scalars().all()
        row = (await session.execute(select(SurveyResponse))).scalar_one()
    assert n == 1 and "dissatisfied" not in stored
    assert row.request_hash is not None and len(row.request_hash) == 64


async def test_idempotency_key_reused_with_other_token_is_refused(sessions: Any) -> None:
    await seed_surveys(sessions)
    tokens = await make_invitations(sessions, 2)
    first = await _submit(sessions, token=tokens[0], secret=SECRET, idempotency_key="tk")
    assert first.created
    again = await _submit(sessions, token=tokens[0], secret=SECRET, idempotency_key="tk")
    assert again.response_id == first.response_id and not again.created
    with pytest.raises(IdempotencyKeyReused):
        await _submit(sessions, token=tokens[1], secret=SECRET, idempotency_key="tk")
    async with sessions() as session:
        unused = (
            await session.execute(
                select(func.count(SurveyInvitation.id)).where(SurveyInvitation.used_at.is_(None))
            )
        ).scalar_one()
    assert unused == 1  # the second token was not spent


async def test_rows_without_fingerprint_keep_replaying(sessions: Any) -> None:
    await seed_surveys(sessions)
    first = await _submit(sessions, idempotency_key="old-row")
    async with transaction(sessions) as session:  # as stored before fingerprints existed
        await session.execute(update(SurveyResponse).values(request_hash=None))
    again = await _submit(sessions, fazhi_answers("dissatisfied"), idempotency_key="old-row")
    assert again.response_id == first.response_id and not again.created


def test_fingerprint_ignores_respondent_channel_and_locale() -> None:
    def item(**kw: Any) -> Submission:
        values: dict[str, Any] = {
            "survey": FAZHI,
            "answers": fazhi_answers(),
            "respondent": "a" * 64,
            "channel": "api",
            "township_code": None,
            "locale": "zh_CN",
            "now": NOW,
            "idempotency_key": "k",
        }
        values.update(kw)
        return Submission(**values)

    base = request_fingerprint(item())
    assert len(base) == 64
    assert base == request_fingerprint(item(respondent="b" * 64, channel="h5", locale="en"))
    assert base == request_fingerprint(item(answers=fazhi_answers(channels=["website", "mobile"])))
    assert base != request_fingerprint(item(answers=fazhi_answers(comment="一般")))
    assert base != request_fingerprint(item(token_hash="c" * 64))
    assert base != request_fingerprint(item(township_code="T01"))


async def test_batch_checks_items_against_each_other(sessions: Any) -> None:
    await seed_surveys(sessions)
    tokens = await make_invitations(sessions, 2)
    hashes = [invitation_hash(SECRET, t) for t in tokens]

    def item(respondent: str, **kw: Any) -> Submission:
        return Submission(
            survey=FAZHI,
            answers=kw.pop("answers", fazhi_answers()),
            respondent=respondent,
            channel="h5",
            township_code=None,
            locale="zh_CN",
            now=NOW,
            **kw,
        )

    batch = [
        item("a" * 64, idempotency_key="k1"),
        item("a" * 64, idempotency_key="k1"),  # retry inside the same batch: replay
        item("f" * 64, idempotency_key="k1", answers=fazhi_answers("dissatisfied")),  # reused
        item("a" * 64),  # same respondent again
        item("b" * 64, token=tokens[0], token_hash=hashes[0]),
        item("c" * 64, token=tokens[0], token_hash=hashes[0]),  # token reused in the batch
        item("d" * 64, answers={"business_env": "satisfied"}),
        item("e" * 64, token=tokens[1], token_hash=hashes[1]),
    ]
    async with transaction(sessions) as session:
        out = await submit_many(session, batch)
    assert out[0].created and not out[1].created and out[1].response_id == out[0].response_id
    assert isinstance(out[2], IdempotencyKeyReused)
    assert isinstance(out[3], AlreadyAnswered)
    assert out[4].created
    assert isinstance(out[5], TokenUsed)
    assert isinstance(out[6], InvalidAnswers)
    assert out[7].created
    async with sessions() as session:
        n = (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one()
        answers = (await session.execute(select(func.count(SurveyAnswer.id)))).scalar_one()
    assert n == 3
    assert answers == 3 * 11


async def test_sync_catalog_keeps_operator_state(sessions: Any) -> None:
    async with transaction(sessions) as session:
        assert await sync_catalog(session, CATALOG) == (2, 0)
        await session.execute(
            update(SurveyState).where(SurveyState.code == "fazhi-2026").values(status="closed")
        )
    async with transaction(sessions) as session:
        assert await sync_catalog(session, CATALOG) == (0, 0)
        row = await session.get(SurveyState, "fazhi-2026")
    assert row is not None and row.status == "closed"
    assert row.title_zh == "2026年西夏区法治政府建设满意度调查"
