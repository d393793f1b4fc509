"""Whether a survey takes answers, and keeping ``survey_state`` in step with the catalog.

A survey's row holds its answering window (from the YAML catalog, synced by
:func:`sync_catalog`) and the operator's override (``pufa surveys open|close``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models_surveys import SurveyResponse, SurveyState
from surveys.schema import Survey
from surveys.submission_sql import Lookup, submission_sql

__all__ = [
    "has_answered",
    "open_and_answered",
    "open_by_code",
    "open_states",
    "response_counts",
    "state_is_open",
    "survey_is_open",
    "sync_catalog",
]


def state_is_open(
    status: str, opens_at: datetime | None, closes_at: datetime | None, now: datetime
) -> bool:
    """Whether a survey in ``status`` accepts answers at ``now``: ``closed`` never, ``open``
    always (an operator opened it by hand, outside its window too), ``scheduled`` when
    ``opens_at <= now < closes_at`` (an unset bound is no limit)."""
    if status == "closed":
        return False
    if status == "open":
        return True
    if opens_at is not None and now < opens_at:
        return False
    return closes_at is None or now < closes_at


def open_by_code(rows: Iterable[Any], now: datetime) -> dict[str, bool]:
    """``{code: takes answers at now}`` for ``(code, status, opens_at, closes_at)`` rows."""
    return {code: state_is_open(status, opens, closes, now) for code, status, opens, closes in rows}


async def survey_is_open(session: AsyncSession, code: str, now: datetime) -> bool:
    """Whether survey ``code`` accepts answers at ``now`` (``False`` for an unknown code).

    One statement on the session's driver connection (a chat step asks it for every survey
    link, and through SQLAlchemy's SQLite adapter a query costs several trips to the driver's
    thread)."""
    found = await (await submission_sql(session)).lookup(Lookup(codes=[code]))
    return open_by_code(found.states, now).get(code, False)


async def has_answered(session: AsyncSession, survey: str, respondent: str) -> bool:
    """Whether ``respondent`` (a pseudonym) has a stored response to ``survey``: one lookup on
    the unique index ``(survey, respondent)``, the statement a submission batch checks with."""
    found = await (await submission_sql(session)).lookup(Lookup(respondents=[(survey, respondent)]))
    return bool(found.answered)


async def open_and_answered(
    session: AsyncSession, code: str, respondent: str, now: datetime
) -> tuple[bool, bool]:
    """``(`` :func:`survey_is_open` ``,`` :func:`has_answered` ``)`` for survey ``code`` and
    ``respondent`` in one statement (what a chat asks before it opens a survey)."""
    found = await (await submission_sql(session)).lookup(
        Lookup(codes=[code], respondents=[(code, respondent)])
    )
    return open_by_code(found.states, now).get(code, False), bool(found.answered)


async def open_states(session: AsyncSession, codes: set[str], now: datetime) -> dict[str, bool]:
    """:func:`open_by_code` for ``codes``, read through the session (so, on PostgreSQL, it is
    the statement that starts the session's transaction)."""
    rows = await session.execute(
        select(
            col(SurveyState.code),
            col(SurveyState.status),
            col(SurveyState.opens_at),
            col(SurveyState.closes_at),
        ).where(col(SurveyState.code).in_(codes))
    )
    return open_by_code(rows, now)


async def response_counts(session: AsyncSession, *, sample: bool = False) -> dict[str, int]:
    """Stored responses per survey code: real ones, or with ``sample`` the demo ones."""
    rows = await session.execute(
        select(col(SurveyResponse.survey), func.count())
        .where(col(SurveyResponse.sample).is_(sample))
        .group_by(col(SurveyResponse.survey))
    )
    return {code: n for code, n in rows.all()}


async def sync_catalog(session: AsyncSession, surveys: Mapping[str, Survey]) -> tuple[int, int]:
    """Make ``survey_state`` match the catalog (titles, window); keep operators' open/closed.

    Returns ``(created, updated)`` row counts. Surveys no longer in the catalog keep their row
    (their responses stay scoreable).
    """
    existing = {
        s.code: s
        for s in (
            await session.execute(select(SurveyState).where(col(SurveyState.code).in_(surveys)))
        ).scalars()
    }
    created = updated = 0
    for code, survey in surveys.items():
        values: dict[str, Any] = {
            "title_zh": survey.title.get("zh_CN", code)[:200],
            "title_en": survey.title.get("en", "")[:200],
            "opens_at": survey.opens_at,
            "closes_at": survey.closes_at,
        }
        row = existing.get(code)
        if row is None:
            session.add(SurveyState(code=code, status="scheduled", **values))
            created += 1
            continue
        changed = False
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed = True
        if changed:
            updated += 1
    await session.flush()
    return created, updated
