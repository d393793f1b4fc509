"""民主测评 (democratic evaluation) and the composite appraisal scores.

From 《西夏区领导班子和领导干部年度考核实施办法》 (FACTS.md §2): :func:`ballot_score`,
:func:`grade`, :func:`check_excellent_quota` (at most 30% of those evaluated may score 90 or
more), the composite schemes (:data:`HALF_YEAR_CHIEF`, :data:`ANNUAL_CHIEF`, … and
:func:`composite_score`) and :func:`adjustment_points` for commendations and deductions.
Pure functions over plain numbers; results are frozen dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANNUAL_CHIEF",
    "ANNUAL_DEPUTY",
    "ANNUAL_NOT_IN_PERFORMANCE",
    "COMPONENT_LABELS",
    "HALF_YEAR_CHIEF",
    "HALF_YEAR_DEPUTY",
    "SCHEMES",
    "CompositeScheme",
    "Grade",
    "QuotaCheck",
    "adjustment_points",
    "ballot_score",
    "check_excellent_quota",
    "composite_score",
    "grade",
]


_GRADE_DIGITS = 6
"""Scores are rounded to this many decimals before grading, so that floating-point noise in
a weighted sum (89.99999999999999 for an exact 90) cannot change a grade."""


class Grade(StrEnum):
    """考核等次. Bands (第十六条): ``[90, ∞)`` 优秀, ``[80, 90)`` 良好/称职, ``[60, 80)``
    一般/基本称职, below 60 较差/不称职.

    The source writes the bands in whole points (80–89, 60–79, 59 及以下); a fractional score
    belongs to the band whose lower bound it reaches, so 89.5 is 良好, 79.99 is 一般 and 59.5 is
    较差. Scores are not rounded to whole points first.
    """

    EXCELLENT = "excellent"
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"

    @property
    def zh(self) -> str:
        """The grade as written for a leadership team: 优秀 / 良好 / 一般 / 较差."""
        return {"excellent": "优秀", "good": "良好", "fair": "一般", "poor": "较差"}[self.value]

    @property
    def zh_person(self) -> str:
        """The grade as written for a cadre: 优秀 / 称职 / 基本称职 / 不称职."""
        return {"excellent": "优秀", "good": "称职", "fair": "基本称职", "poor": "不称职"}[
            self.value
        ]


BALLOT_POINTS: Mapping[str, int] = {"excellent": 100, "good": 80, "fair": 60, "poor": 40}
"""Points per ballot: 优秀 100, 良好(称职) 80, 一般(基本称职) 60, 较差(不称职) 40."""


def ballot_score(excellent: int, good: int, fair: int, poor: int) -> float | None:
    """民主测评 score: ``(优秀×100 + 良好×80 + 一般×60 + 较差×40) / valid ballots``.

    Blank ballots are not valid ballots and are simply not passed in. ``None`` when there is
    no valid ballot. Raises ``ValueError`` for a negative count.
    """
    counts = (excellent, good, fair, poor)
    if any(c < 0 for c in counts):
        raise ValueError("ballot counts must not be negative")
    valid = sum(counts)
    if valid == 0:
        return None
    return (excellent * 100 + good * 80 + fair * 60 + poor * 40) / valid


def grade(score: float) -> Grade:
    """The 等次 of a score; see :class:`Grade` for the bands and boundaries."""
    value = round(score, _GRADE_DIGITS)
    if value >= 90:
        return Grade.EXCELLENT
    if value >= 80:
        return Grade.GOOD
    if value >= 60:
        return Grade.FAIR
    return Grade.POOR


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """Result of the 30% rule: at most 30% of those evaluated may score 90 or more."""

    ok: bool
    evaluated: int
    excellent: int
    allowed: int
    over: int


def check_excellent_quota(scores: Sequence[float], share: float = 0.30) -> QuotaCheck:
    """Check "90 分以上的人数不超过被考评干部总数的 30%".

    ``allowed`` is ``floor(30% × evaluated)`` (10 people → 3, 9 → 2, 3 → 0); ``over`` is how
    many scores of 90 or more exceed it.
    """
    evaluated = len(scores)
    excellent = sum(1 for s in scores if grade(s) is Grade.EXCELLENT)
    allowed = math.floor(round(share * evaluated, 9))
    over = max(0, excellent - allowed)
    return QuotaCheck(over == 0, evaluated, excellent, allowed, over)


COMPONENT_LABELS: Mapping[str, str] = {
    "half_year": "半年考核",
    "democratic": "民主测评",
    "supervising_leader": "分管县级领导评价",
    "four_teams": "“四套班子”主要领导评价",
    "unit_head": "单位主要负责人评价",
    "inspection_team": "考核组评价",
    "unit_performance": "单位绩效考核",
}
"""Chinese names of the composite components."""


@dataclass(frozen=True, slots=True)
class CompositeScheme:
    """Weights (in percent, summing to 100) of the parts of a 综合得分."""

    code: str
    title: str
    percent: Mapping[str, int]

    def __post_init__(self) -> None:
        if sum(self.percent.values()) != 100:
            raise ValueError(f"weights of {self.code} sum to {sum(self.percent.values())}%")
        unknown = set(self.percent) - set(COMPONENT_LABELS)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}")

    @property
    def weights(self) -> dict[str, float]:
        """Weights as fractions (they sum to 1)."""
        return {part: pct / 100 for part, pct in self.percent.items()}


HALF_YEAR_CHIEF = CompositeScheme(
    "half_year_chief",
    "半年考核（领导班子和班子正职）",
    {"democratic": 40, "supervising_leader": 20, "four_teams": 20, "inspection_team": 20},
)
HALF_YEAR_DEPUTY = CompositeScheme(
    "half_year_deputy",
    "半年考核（领导班子副职）",
    {"democratic": 40, "supervising_leader": 20, "unit_head": 20, "inspection_team": 20},
)
ANNUAL_CHIEF = CompositeScheme(
    "annual_chief",
    "年度考核（领导班子和班子正职）",
    {
        "half_year": 20,
        "democratic": 10,
        "supervising_leader": 10,
        "four_teams": 10,
        "inspection_team": 10,
        "unit_performance": 40,
    },
)
ANNUAL_DEPUTY = CompositeScheme(
    "annual_deputy",
    "年度考核（领导班子副职）",
    {
        "half_year": 20,
        "democratic": 10,
        "supervising_leader": 10,
        "unit_head": 10,
        "inspection_team": 10,
        "unit_performance": 40,
    },
)
ANNUAL_NOT_IN_PERFORMANCE = CompositeScheme(
    "annual_not_in_performance",
    "未列入绩效考核的单位及干部",
    {"half_year": 40, "democratic": 20, "supervising_leader": 25, "inspection_team": 15},
)
SCHEMES: Mapping[str, CompositeScheme] = {
    s.code: s
    for s in (
        HALF_YEAR_CHIEF,
        HALF_YEAR_DEPUTY,
        ANNUAL_CHIEF,
        ANNUAL_DEPUTY,
        ANNUAL_NOT_IN_PERFORMANCE,
    )
}
"""The composite schemes of the 考核实施办法, by code."""


def composite_score(scheme: CompositeScheme, parts: Mapping[str, float]) -> float:
    """Weighted 综合得分 from one score (0–100) per component of ``scheme``.

    Raises ``ValueError`` when a component is missing, unexpected or out of range.
    """
    missing = set(scheme.percent) - set(parts)
    extra = set(parts) - set(scheme.percent)
    if missing or extra:
        raise ValueError(
            f"{scheme.code} needs {sorted(scheme.percent)}; missing "
            f"{sorted(missing)}, unexpected {sorted(extra)}"
        )
    for part, score in parts.items():
        if not 0 <= score <= 100:
            raise ValueError(f"{part} score {score} is outside 0–100")
    return math.fsum(scheme.percent[part] * parts[part] for part in scheme.percent) / 100


def adjustment_points(
    national: int = 0, provincial: int = 0, city: int = 0, district: int = 0, deductions: int = 0
) -> float:
    """加减分 (第十五条): +3 / +2 / +1 / +0.5 per national, provincial (省部级), city (地市级) or
    district (西夏区) commendation; −0.5 per deduction item. Add the result to the composite."""
    counts = (national, provincial, city, district, deductions)
    if any(c < 0 for c in counts):
        raise ValueError("counts must not be negative")
    return 3 * national + 2 * provincial + city + 0.5 * district - 0.5 * deductions
