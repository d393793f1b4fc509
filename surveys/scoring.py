"""Satisfaction scoring: rates against targets, with the confidence a reviewer asks for.

Pure functions over plain numbers; results are frozen dataclasses. Rates are fractions
(0.83), never percentages.

Satisfaction (满意度指标)
    :func:`wilson_interval` gives the Wilson score interval of a satisfied share.
    :func:`verdict` compares it with a target: ``met`` when the lower bound reaches the target,
    ``not_met`` when the upper bound is below it, otherwise ``inconclusive`` with
    ``more_needed``, an estimate of how many further responses would settle it (see
    :func:`verdict` for the exact rule). Targets worded "显著提高" (significant rise, no number)
    are judged by :func:`increase_verdict`, a one-sided pooled two-proportion z test against
    the previous period. :func:`weighted_index` is the 100/80/60/40/20 index of the 好差评
    levels. A "don't know" answer (:data:`~surveys.schema.UNKNOWN_CODE`) is no observation:
    it is left out of ``n`` and everything computed from it, and counted as ``unknown``.

The 民主测评 appraisal rules are a separate domain: :mod:`surveys.appraisal`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Any, NamedTuple

from surveys.schema import SCALE_WEIGHTS, UNKNOWN_CODE, Indicator, Survey

__all__ = [
    "MORE_NEEDED_CAP",
    "PLANNING_MARGIN",
    "IndicatorResult",
    "Tally",
    "TwoProportionTest",
    "Verdict",
    "VerdictResult",
    "increase_verdict",
    "indicator_result",
    "level_counts",
    "planning_sample_size",
    "survey_results",
    "tally",
    "tally_counts",
    "two_proportion_test",
    "verdict",
    "weighted_index",
    "wilson_interval",
]

MORE_NEEDED_CAP = 10_000
"""``more_needed`` above this is reported as ``None``: no realistic number of further
responses settles the verdict at the current rate."""

PLANNING_MARGIN = 0.05
"""With no responses yet, ``more_needed`` is :func:`planning_sample_size` for this margin."""

DEFAULT_ALPHA = 0.05
"""Significance level of the "显著提高" test."""


# --------------------------------------------------------------------------------------------
# Satisfaction rates


class Verdict(StrEnum):
    """Whether an indicator's target is shown to be reached."""

    MET = "met"
    NOT_MET = "not_met"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class VerdictResult:
    """A verdict and, when inconclusive, roughly how many more responses would settle it."""

    verdict: Verdict
    more_needed: int | None = None


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _check_counts(satisfied: float, n: int) -> None:
    if n < 0:
        raise ValueError(f"n must not be negative, not {n}")
    if not 0 <= satisfied <= n:
        raise ValueError(f"satisfied must be between 0 and n={n}, not {satisfied}")


def _wilson(satisfied: float, n: float, z: float) -> tuple[float, float]:
    p = satisfied / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    # At p = 0 (p = 1) the lower (upper) bound is exactly 0 (1); avoid rounding residue.
    low = 0.0 if satisfied <= 0 else max(0.0, center - half)
    high = 1.0 if satisfied >= n else min(1.0, center + half)
    return low, high


def wilson_interval(satisfied: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` for ``satisfied`` out of ``n``.

    ``satisfied`` may be fractional (projections use ``rate × n``). ``n == 0`` gives
    ``(0.0, 1.0)``: nothing is known. Bounds are clamped to [0, 1].
    """
    _check_counts(satisfied, n)
    z = _z(confidence)
    if n == 0:
        return 0.0, 1.0
    return _wilson(satisfied, n, z)


def _judge(low: float, high: float, target: float) -> Verdict:
    if low >= target:
        return Verdict.MET
    if high < target:
        return Verdict.NOT_MET
    return Verdict.INCONCLUSIVE


def planning_sample_size(
    target: float, confidence: float = 0.95, margin: float = PLANNING_MARGIN
) -> int:
    """Responses needed for the Wilson interval to settle a verdict when the true rate is
    ``margin`` away from ``target``: ``ceil(z² · t(1−t) / margin²)`` (at least 1).

    For a target of 0.80 at 95% confidence that is 246; for 0.90, 139; for 0.95, 73.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1], not {target}")
    z = _z(confidence)
    return max(1, math.ceil(z * z * target * (1.0 - target) / (margin * margin) - 1e-9))


def verdict(satisfied: float, n: int, target: float, confidence: float = 0.95) -> VerdictResult:
    """Judge ``satisfied``/``n`` against a target rate with the Wilson interval.

    - ``met``: the lower bound is at least ``target``;
    - ``not_met``: the upper bound is below ``target``;
    - ``inconclusive`` otherwise, with ``more_needed``: the smallest ``k ≥ 1`` such that
      ``k`` further responses *at the current rate* (``rate × (n + k)`` satisfied out of
      ``n + k``) would make the verdict ``met`` or ``not_met``. The Wilson interval excludes
      ``t`` exactly when ``n (p − t)² > z² t (1 − t)``, so for a fixed rate this happens from
      one sample size on and the search is a closed form checked against the interval itself.
      ``more_needed`` is ``None`` when the rate equals the target (no sample size settles it)
      or when more than :data:`MORE_NEEDED_CAP` responses would be needed. With ``n == 0``
      it is :func:`planning_sample_size` (a planning figure from the target alone).
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1], not {target}")
    low, high = wilson_interval(satisfied, n, confidence)
    found = _judge(low, high, target)
    if found is not Verdict.INCONCLUSIVE:
        return VerdictResult(found)
    if n == 0:
        return VerdictResult(Verdict.INCONCLUSIVE, planning_sample_size(target, confidence))
    rate = satisfied / n
    if rate == target:
        return VerdictResult(Verdict.INCONCLUSIVE, None)
    z = _z(confidence)

    def settled(total: int) -> bool:
        lo, hi = _wilson(rate * total, total, z)
        return _judge(lo, hi, target) is not Verdict.INCONCLUSIVE

    estimate = z * z * target * (1.0 - target) / ((rate - target) ** 2)
    if estimate - n > MORE_NEEDED_CAP + 2:
        return VerdictResult(Verdict.INCONCLUSIVE, None)
    total = max(n + 1, math.ceil(estimate))
    while total > n + 1 and settled(total - 1):
        total -= 1
    while not settled(total):
        total += 1
    more = total - n
    return VerdictResult(Verdict.INCONCLUSIVE, more if more <= MORE_NEEDED_CAP else None)


@dataclass(frozen=True, slots=True)
class TwoProportionTest:
    """Pooled two-proportion z test of period 2 against period 1.

    ``z`` is positive when the rate rose; ``p_increase`` is the one-sided p-value for
    "rate 2 > rate 1", ``p_two_sided`` the two-sided one.
    """

    rate1: float
    rate2: float
    z: float
    p_increase: float
    p_two_sided: float


def two_proportion_test(s1: float, n1: int, s2: float, n2: int) -> TwoProportionTest:
    """Pooled z test comparing ``s2/n2`` (this period) with ``s1/n1`` (the previous one).

    Same statistic as ``statsmodels.stats.proportion.proportions_ztest`` with pooled variance.
    When every answer in both periods is the same (pooled rate 0 or 1) there is no variation:
    ``z`` is 0 and the p-values are 0.5 and 1.0. Counts may be fractional (projections).
    Raises ``ValueError`` when a period is empty or a count is impossible.
    """
    _check_counts(s1, n1)
    _check_counts(s2, n2)
    if n1 == 0 or n2 == 0:
        raise ValueError("both periods need at least one response")
    return _ztest(s1, n1, s2, n2)


def _ztest(s1: float, n1: int, s2: float, n2: int) -> TwoProportionTest:
    rate1, rate2 = s1 / n1, s2 / n2
    pooled = (s1 + s2) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    z = 0.0 if var <= 0.0 else (rate2 - rate1) / math.sqrt(var)
    p_increase = 0.5 * math.erfc(z / math.sqrt(2.0))
    p_two = min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))
    return TwoProportionTest(rate1, rate2, z, p_increase, p_two)


def increase_verdict(
    s1: float, n1: int, s2: float, n2: int, alpha: float = DEFAULT_ALPHA
) -> VerdictResult:
    """Judge a "显著提高" target: has the satisfied share risen significantly from period 1
    (``s1``/``n1``, e.g. last year) to period 2 (``s2``/``n2``)?

    - ``met``: the one-sided pooled z test gives ``p < alpha`` (5%);
    - ``not_met``: the rate did not rise at all (``rate2 ≤ rate1``);
    - ``inconclusive`` otherwise (or when a period has no responses), with ``more_needed``:
      the fewest further period-2 responses at the current period-2 rate that would make the
      rise significant, ``None`` if more than :data:`MORE_NEEDED_CAP` (period 1 is fixed, so
      a small rise over a small baseline may never become significant) or a period is empty.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    if n1 == 0 or n2 == 0:
        _check_counts(s1, n1)
        _check_counts(s2, n2)
        return VerdictResult(Verdict.INCONCLUSIVE, None)
    test = two_proportion_test(s1, n1, s2, n2)
    if test.p_increase < alpha:
        return VerdictResult(Verdict.MET)
    if test.rate2 <= test.rate1:
        return VerdictResult(Verdict.NOT_MET)
    rate2 = test.rate2

    def significant(more: int) -> bool:
        total = n2 + more
        return _ztest(s1, n1, rate2 * total, total).p_increase < alpha

    if not significant(MORE_NEEDED_CAP):
        return VerdictResult(Verdict.INCONCLUSIVE, None)
    low, high = 0, 1  # significant(high), not significant(low)
    while not significant(high):
        low, high = high, min(high * 2, MORE_NEEDED_CAP)
    while high - low > 1:
        mid = (low + high) // 2
        if significant(mid):
            high = mid
        else:
            low = mid
    return VerdictResult(Verdict.INCONCLUSIVE, high)


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    """One indicator's figures, as in the results JSON (rates are fractions).

    ``rate`` is ``None`` when ``n == 0``. ``target`` is ``None`` for a "显著提高" indicator
    (``target_kind == "increase"``); its verdict then comes from the comparison with the
    baseline period, whose figures and one-sided p-value are included. ``unknown`` is how
    many answered "don't know": they are not part of ``n``.
    """

    code: str
    n: int
    satisfied: int
    rate: float | None
    ci_low: float
    ci_high: float
    target: float | None
    target_kind: str
    verdict: Verdict
    more_needed: int | None
    baseline_n: int | None = None
    baseline_satisfied: int | None = None
    p_value: float | None = None
    unknown: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``GET /api/v1/surveys/{survey}/results`` (without ``title``,
        which the caller localizes)."""
        return {
            "code": self.code,
            "n": self.n,
            "satisfied": self.satisfied,
            "rate": self.rate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "target": self.target,
            "target_kind": self.target_kind,
            "verdict": str(self.verdict),
            "more_needed": self.more_needed,
            "baseline_n": self.baseline_n,
            "baseline_satisfied": self.baseline_satisfied,
            "p_value": self.p_value,
            "unknown": self.unknown,
        }


def indicator_result(
    code: str,
    satisfied: int,
    n: int,
    target: float | None,
    *,
    baseline: tuple[int, int] | None = None,
    confidence: float = 0.95,
    alpha: float = DEFAULT_ALPHA,
    unknown: int = 0,
) -> IndicatorResult:
    """Figures and verdict for one indicator.

    With a numeric ``target`` the verdict comes from :func:`verdict`. With ``target=None``
    (a "显著提高" indicator) it comes from :func:`increase_verdict` against ``baseline``
    ``(satisfied, n)`` of the previous period; without a baseline it is ``inconclusive``.
    ``unknown`` ("don't know" answers, already left out of ``n``) is only reported.
    """
    if unknown < 0:
        raise ValueError(f"unknown must not be negative, not {unknown}")
    low, high = wilson_interval(satisfied, n, confidence)
    baseline_n = baseline_satisfied = p_value = None
    if target is not None:
        kind, judged = "rate", verdict(satisfied, n, target, confidence)
    elif baseline is None:
        kind, judged = "increase", VerdictResult(Verdict.INCONCLUSIVE, None)
    else:
        kind = "increase"
        baseline_satisfied, baseline_n = baseline
        judged = increase_verdict(baseline_satisfied, baseline_n, satisfied, n, alpha)
        if baseline_n and n:
            p_value = two_proportion_test(baseline_satisfied, baseline_n, satisfied, n).p_increase
    return IndicatorResult(
        code=code,
        n=n,
        satisfied=satisfied,
        rate=satisfied / n if n else None,
        ci_low=low,
        ci_high=high,
        target=target,
        target_kind=kind,
        verdict=judged.verdict,
        more_needed=judged.more_needed,
        baseline_n=baseline_n,
        baseline_satisfied=baseline_satisfied,
        p_value=p_value,
        unknown=unknown,
    )


class Tally(NamedTuple):
    """An indicator's counts: ``satisfied`` of ``n`` rated answers, and ``unknown`` "don't
    know" answers, which are not in ``n``."""

    satisfied: int
    n: int
    unknown: int


def tally_counts(indicator: Indicator, responses: Iterable[Mapping[str, Any]]) -> Tally:
    """:class:`Tally` for an indicator over stored responses (``{question code: value}``).

    Every rating of one of the indicator's questions is one observation; skipped questions
    (absent or ``None``) are not counted, and "don't know" (:data:`UNKNOWN_CODE`) is counted
    only as ``unknown``.
    """
    satisfied = n = unknown = 0
    wanted = set(indicator.satisfied)
    for answers in responses:
        for code in indicator.questions:
            value = answers.get(code)
            if value == UNKNOWN_CODE:
                unknown += 1
            elif isinstance(value, str):
                n += 1
                satisfied += value in wanted
    return Tally(satisfied, n, unknown)


def tally(indicator: Indicator, responses: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """``(satisfied, n)`` for an indicator over stored responses; see :func:`tally_counts`
    ("don't know" answers are not in ``n``)."""
    counted = tally_counts(indicator, responses)
    return counted.satisfied, counted.n


def level_counts(question_code: str, responses: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many responses chose each option of a single-choice or scale question ("don't
    know" included, under :data:`UNKNOWN_CODE`; :func:`weighted_index` ignores it)."""
    counts: Counter[str] = Counter()
    for answers in responses:
        value = answers.get(question_code)
        if isinstance(value, str):
            counts[value] += 1
    return counts


def survey_results(
    survey: Survey,
    responses: Sequence[Mapping[str, Any]],
    *,
    baselines: Mapping[str, tuple[int, int]] | None = None,
    confidence: float = 0.95,
) -> list[IndicatorResult]:
    """:func:`indicator_result` for every indicator of ``survey`` over ``responses``;
    ``baselines`` gives ``(satisfied, n)`` of the previous period per "increase" indicator."""
    results = []
    for indicator in survey.indicators:
        counted = tally_counts(indicator, responses)
        baseline = (baselines or {}).get(indicator.code)
        results.append(
            indicator_result(
                indicator.code,
                counted.satisfied,
                counted.n,
                indicator.target,
                baseline=baseline,
                confidence=confidence,
                unknown=counted.unknown,
            )
        )
    return results


def weighted_index(counts: Mapping[str, int]) -> float | None:
    """The 好差评 weighted index: mean of 100/80/60/40/20 points for 非常满意 … 非常不满意
    over ``{level code: count}`` (codes as in :data:`surveys.schema.SCALE_CODES`); ``None``
    with no answers. A "don't know" count (:data:`~surveys.schema.UNKNOWN_CODE`) is ignored,
    so ``weighted_index(level_counts(...))`` works. Raises ``ValueError`` for any other code
    that is not a level, or a negative count."""
    total = points = 0
    for level, count in counts.items():
        if level == UNKNOWN_CODE:
            continue
        if level not in SCALE_WEIGHTS:
            raise ValueError(f"{level!r} is not a 好差评 level")
        if count < 0:
            raise ValueError(f"negative count for {level!r}")
        total += count
        points += SCALE_WEIGHTS[level] * count
    return points / total if total else None
