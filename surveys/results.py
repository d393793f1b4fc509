"""Satisfaction results computed by the database.

One ``GROUP BY question, value, township, channel`` over ``survey_answer`` (served by the
covering index ``ix_answer_agg``) gives every count needed: per indicator overall, per township
and per channel. The rates, Wilson intervals and verdicts then come from the pure functions of
:mod:`surveys.scoring` on those few hundred counts, never on the raw answers.

A "don't know" answer (``unknown``) is counted in SQL like any other value and then kept out of
the indicator's ``n``: it is reported as the indicator's ``unknown`` count only.

A "显著提高" indicator (no numeric target) is compared with the same indicator in a baseline
survey: by default the survey whose code has the previous year (``fazhi-2026`` →
``fazhi-2025``), when it has answers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Township
from storage.models_surveys import SurveyAnswer, SurveyResponse
from storage.types import table_of
from surveys.schema import SCALE_WEIGHTS, UNKNOWN_CODE, Indicator, Survey, localized
from surveys.scoring import IndicatorResult, Tally, indicator_result, weighted_index

__all__ = ["Counts", "SurveyReport", "baseline_code", "compute_results", "fetch_counts"]

_YEAR = re.compile(r"(\d{4})$")

Counts = dict[tuple[str, str, str | None, str], int]
"""``{(question, option, township, channel): answers}``."""


def baseline_code(code: str) -> str | None:
    """The previous period's survey code by the year in the code (``fazhi-2026`` →
    ``fazhi-2025``), or ``None`` when the code ends in no year."""
    match = _YEAR.search(code)
    if not match:
        return None
    return code[: match.start()] + str(int(match.group(1)) - 1)


async def fetch_counts(
    session: AsyncSession,
    survey: str,
    questions: set[str],
    township: str | None = None,
    *,
    include_sample: bool = True,
) -> Counts:
    """Answer counts per question, option, township and channel, computed in SQL
    (without the answers of sample responses when ``include_sample`` is false)."""
    a = table_of(SurveyAnswer).c
    stmt = (
        select(a.question, a.value, a.township, a.channel, func.count())
        .where(a.survey == survey, a.question.in_(sorted(questions)), a.value.is_not(None))
        .group_by(a.question, a.value, a.township, a.channel)
    )
    if township is not None:
        stmt = stmt.where(a.township == township)
    if not include_sample:
        r = table_of(SurveyResponse).c
        stmt = stmt.join(table_of(SurveyResponse), r.id == a.response_id).where(r.sample.is_(False))
    rows = await session.execute(stmt)
    return {(q, v, t, c): n for q, v, t, c, n in rows.all()}


def _tally(indicator: Indicator, counts: Mapping[tuple[str, str], int]) -> Tally:
    """Like :func:`surveys.scoring.tally_counts`, over ``{(question, value): answers}``."""
    satisfied = n = unknown = 0
    wanted = set(indicator.satisfied)
    for qcode in indicator.questions:
        for (question, value), count in counts.items():
            if question != qcode:
                continue
            if value == UNKNOWN_CODE:
                unknown += count
                continue
            n += count
            if value in wanted:
                satisfied += count
    return Tally(satisfied, n, unknown)


def _levels(indicator: Indicator, counts: Mapping[tuple[str, str], int]) -> dict[str, int]:
    levels: dict[str, int] = defaultdict(int)
    for (question, value), count in counts.items():
        if question in indicator.questions and value in SCALE_WEIGHTS:
            levels[value] += count
    return dict(levels)


@dataclass
class IndicatorRow:
    """An indicator's result with its localized title and weighted index."""

    title: str
    result: IndicatorResult
    index: float | None
    levels: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the results API."""
        body = self.result.to_dict()
        return {
            "code": body.pop("code"),
            "title": self.title,
            **body,
            "weighted_index": self.index,
            "levels": self.levels,
        }


@dataclass
class SurveyReport:
    """Results of one survey: overall, and broken down by township and by channel."""

    survey: str
    title: str
    baseline: str | None
    indicators: list[IndicatorRow]
    by_township: dict[str | None, list[IndicatorRow]] = field(default_factory=dict)
    by_channel: dict[str, list[IndicatorRow]] = field(default_factory=dict)
    township_names: dict[str, str] = field(default_factory=dict)
    responses: int = 0

    def to_dict(self, by: str | None = None) -> dict[str, Any]:
        """The JSON shape of ``GET /api/v1/surveys/{survey}/results`` and ``pufa results``."""
        out: dict[str, Any] = {
            "survey": self.survey,
            "title": self.title,
            "baseline": self.baseline,
            "indicators": [row.to_dict() for row in self.indicators],
            "by": {},
        }
        if by == "township":
            out["by"]["township"] = [
                {
                    "township": code,
                    "township_name": self.township_names.get(code or "", None),
                    "indicators": [row.to_dict() for row in rows],
                }
                for code, rows in sorted(self.by_township.items(), key=lambda kv: kv[0] or "~")
            ]
        elif by == "channel":
            out["by"]["channel"] = [
                {"channel": code, "indicators": [row.to_dict() for row in rows]}
                for code, rows in sorted(self.by_channel.items())
            ]
        return out


def _rows(
    survey: Survey,
    counts: Mapping[tuple[str, str], int],
    baselines: Mapping[str, tuple[int, int]],
    locale: str,
) -> list[IndicatorRow]:
    rows = []
    for indicator in survey.indicators:
        counted = _tally(indicator, counts)
        levels = _levels(indicator, counts)
        result = indicator_result(
            indicator.code,
            counted.satisfied,
            counted.n,
            indicator.target,
            baseline=baselines.get(indicator.code) if indicator.target is None else None,
            unknown=counted.unknown,
        )
        rows.append(
            IndicatorRow(localized(indicator.title, locale), result, weighted_index(levels), levels)
        )
    return rows


def _collapse(counts: Counts, keep: int | None = None) -> dict[Any, dict[tuple[str, str], int]]:
    out: dict[Any, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for key, n in counts.items():
        group = key[keep] if keep is not None else None
        out[group][(key[0], key[1])] += n
    return out


async def compute_results(
    session: AsyncSession,
    survey: Survey,
    *,
    locale: str = "zh_CN",
    township: str | None = None,
    baseline: str | None = None,
    include_sample: bool = True,
) -> SurveyReport:
    """Results of ``survey`` (optionally only one township's answers).

    ``baseline`` is the survey code of the previous period for "显著提高" indicators
    (default: :func:`baseline_code`). With ``include_sample`` false, sample (demo) responses
    are left out of every figure, the baseline's included.
    """
    questions = {q for ind in survey.indicators for q in ind.questions}
    counts = await fetch_counts(
        session, survey.code, questions, township, include_sample=include_sample
    )
    base_code = baseline if baseline is not None else baseline_code(survey.code)
    baselines: dict[str, tuple[int, int]] = {}
    increase = [ind for ind in survey.indicators if ind.target is None]
    if increase and base_code:
        base_counts = _collapse(
            await fetch_counts(
                session, base_code, questions, township, include_sample=include_sample
            )
        ).get(None, {})
        for ind in increase:
            s, n, _unknown = _tally(ind, base_counts)
            if n:
                baselines[ind.code] = (s, n)
    if not baselines:
        base_code = None
    overall = _collapse(counts).get(None, {})
    report = SurveyReport(
        survey=survey.code,
        title=localized(survey.title, locale),
        baseline=base_code,
        indicators=_rows(survey, overall, baselines, locale),
    )
    report.by_township = {
        code: _rows(survey, c, {}, locale) for code, c in _collapse(counts, 2).items()
    }
    report.by_channel = {
        code: _rows(survey, c, {}, locale) for code, c in _collapse(counts, 3).items()
    }
    names = await session.execute(select(col(Township.code), col(Township.name)))
    report.township_names = {code: name for code, name in names.all()}
    if survey.indicators:
        first = survey.indicators[0].questions[0]
        report.responses = sum(n for (q, _v), n in overall.items() if q == first)
    return report
