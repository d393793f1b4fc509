"""Scoring: Wilson intervals, verdicts, the 显著提高 test, and 民主测评 scores."""

from __future__ import annotations

import math
from itertools import product
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from surveys.appraisal import (
    ANNUAL_CHIEF,
    ANNUAL_DEPUTY,
    ANNUAL_NOT_IN_PERFORMANCE,
    HALF_YEAR_CHIEF,
    HALF_YEAR_DEPUTY,
    SCHEMES,
    CompositeScheme,
    Grade,
    adjustment_points,
    ballot_score,
    check_excellent_quota,
    composite_score,
    grade,
)
from surveys.schema import load_catalog
from surveys.scoring import (
    MORE_NEEDED_CAP,
    Verdict,
    VerdictResult,
    increase_verdict,
    indicator_result,
    level_counts,
    planning_sample_size,
    survey_results,
    tally,
    tally_counts,
    two_proportion_test,
    verdict,
    weighted_index,
    wilson_interval,
)

# ------------------------------------------------------------------------------------------
# Wilson interval


def _pairs() -> list[tuple[int, int]]:
    pairs = [(s, n) for n in range(1, 61) for s in range(n + 1)]
    pairs += [(s, n) for n in (99, 100, 250, 1000, 12345) for s in (0, 1, n // 3, n // 2, n - 1, n)]
    return pairs


@pytest.mark.parametrize("confidence", [0.95, 0.90, 0.99])
def test_wilson_matches_statsmodels(confidence: float) -> None:
    pairs = _pairs()
    counts = np.array([s for s, _ in pairs])
    sizes = np.array([n for _, n in pairs])
    ref_low, ref_high = proportion_confint(counts, sizes, alpha=1 - confidence, method="wilson")
    for (s, n), ref_lo, ref_hi in zip(pairs, ref_low, ref_high, strict=True):
        low, high = wilson_interval(s, n, confidence)
        assert low == pytest.approx(max(0.0, float(ref_lo)), abs=1e-9), (s, n)
        assert high == pytest.approx(min(1.0, float(ref_hi)), abs=1e-9), (s, n)
        assert 0.0 <= low <= s / n <= high <= 1.0
    assert len(pairs) > 1800


def test_wilson_known_values() -> None:
    # p = 0.9, n = 100, z = 1.959964: centre 0.885240, half-width 0.059606
    low, high = wilson_interval(90, 100)
    assert low == pytest.approx(0.825634, abs=1e-6)
    assert high == pytest.approx(0.944771, abs=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


@pytest.mark.parametrize(("s", "n"), [(-1, 10), (11, 10), (0, -1)])
def test_wilson_rejects_impossible_counts(s: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(s, n)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95])
def test_wilson_rejects_bad_confidence(confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 10, confidence)


# ------------------------------------------------------------------------------------------
# Verdicts against a target rate


def test_verdict_met() -> None:
    # 90/100: lower bound 0.8256 >= 0.80
    assert verdict(90, 100, 0.80) == VerdictResult(Verdict.MET, None)


def test_verdict_not_met() -> None:
    # 60/100: upper bound 0.6906 < 0.80
    assert verdict(60, 100, 0.80) == VerdictResult(Verdict.NOT_MET, None)
    # 95% of 20 with a 100% target: upper bound 0.9911 < 1
    assert verdict(19, 20, 1.0).verdict is Verdict.NOT_MET


def test_verdict_inconclusive_with_hand_checked_more_needed() -> None:
    # 85/100 against 0.80: interval (0.7672, 0.9069). The interval excludes t when
    # N (p - t)^2 > z^2 t (1 - t), i.e. N > 3.8415 * 0.16 / 0.0025 = 245.86, so N = 246: 146 more.
    assert verdict(85, 100, 0.80) == VerdictResult(Verdict.INCONCLUSIVE, 146)
    # 75/100 against 0.80, same distance below: N > 245.86 as well.
    assert verdict(75, 100, 0.80) == VerdictResult(Verdict.INCONCLUSIVE, 146)


def test_verdict_boundaries() -> None:
    low, high = wilson_interval(85, 100)
    assert verdict(85, 100, low).verdict is Verdict.MET  # lower bound == target counts as met
    assert verdict(85, 100, math.nextafter(low, 1.0)).verdict is Verdict.INCONCLUSIVE
    assert (
        verdict(85, 100, high).verdict is Verdict.INCONCLUSIVE
    )  # upper == target: not shown below
    assert verdict(85, 100, math.nextafter(high, 1.0)).verdict is Verdict.NOT_MET


def test_verdict_rate_equal_to_target_has_no_more_needed() -> None:
    assert verdict(80, 100, 0.80) == VerdictResult(Verdict.INCONCLUSIVE, None)
    assert verdict(19, 20, 0.95) == VerdictResult(Verdict.INCONCLUSIVE, None)
    assert verdict(20, 20, 1.0) == VerdictResult(Verdict.INCONCLUSIVE, None)


def test_verdict_more_needed_is_capped() -> None:
    # 80.1% vs 80% would need about 614,000 responses
    assert verdict(801, 1000, 0.80) == VerdictResult(Verdict.INCONCLUSIVE, None)


def test_verdict_with_no_responses_gives_a_planning_figure() -> None:
    assert verdict(0, 0, 0.80) == VerdictResult(Verdict.INCONCLUSIVE, 246)
    assert verdict(0, 0, 0.90) == VerdictResult(Verdict.INCONCLUSIVE, 139)
    assert verdict(0, 0, 0.95) == VerdictResult(Verdict.INCONCLUSIVE, 73)
    assert planning_sample_size(0.80) == 246


def test_planning_figure_settles_a_rate_five_points_off_the_target() -> None:
    for target in (0.80, 0.90, 0.95):
        size = planning_sample_size(target)
        for rate in (target + 0.05, target - 0.05):
            if rate > 1:
                continue
            assert verdict(rate * size, size, target).verdict is not Verdict.INCONCLUSIVE
            assert verdict(rate * (size - 1), size - 1, target).verdict is Verdict.INCONCLUSIVE


def _inconclusive_cases() -> list[tuple[int, int, float]]:
    cases = []
    for target in (0.80, 0.90, 0.95):
        for n in (1, 2, 5, 10, 20, 37, 50, 100, 200, 400):
            for s in range(n + 1):
                result = verdict(s, n, target)
                if result.verdict is Verdict.INCONCLUSIVE and result.more_needed is not None:
                    cases.append((s, n, target))
    return cases


def test_more_needed_flips_the_verdict_and_one_fewer_does_not() -> None:
    cases = _inconclusive_cases()
    assert len(cases) > 150
    for s, n, target in cases:
        more = verdict(s, n, target).more_needed
        assert more is not None and 1 <= more <= MORE_NEEDED_CAP
        rate = s / n
        total = n + more
        expected = Verdict.MET if rate > target else Verdict.NOT_MET
        assert verdict(rate * total, total, target).verdict is expected, (s, n, target)
        if more > 1:
            fewer = total - 1
            assert verdict(rate * fewer, fewer, target).verdict is Verdict.INCONCLUSIVE, (
                s,
                n,
                target,
            )


def test_verdict_rejects_bad_targets() -> None:
    for target in (0.0, -0.1, 1.2):
        with pytest.raises(ValueError):
            verdict(5, 10, target)


# ------------------------------------------------------------------------------------------
# 显著提高: two-proportion test


def test_two_proportion_test_matches_statsmodels() -> None:
    checked = 0
    for (s1, n1), (s2, n2) in product(
        [(0, 5), (3, 10), (60, 100), (70, 100), (140, 200), (999, 1000)],
        [(1, 5), (7, 10), (75, 100), (65, 100), (78, 100), (200, 250), (1000, 1000)],
    ):
        test = two_proportion_test(s1, n1, s2, n2)
        z, p_larger = proportions_ztest([s2, s1], [n2, n1], alternative="larger")
        _, p_two = proportions_ztest([s2, s1], [n2, n1], alternative="two-sided")
        assert test.z == pytest.approx(z, abs=1e-9)
        assert test.p_increase == pytest.approx(p_larger, abs=1e-9)
        assert test.p_two_sided == pytest.approx(p_two, abs=1e-9)
        checked += 1
    assert checked == 42


def test_two_proportion_test_known_values_and_degenerate_case() -> None:
    # 60% -> 75% of 100: pooled 0.675, se = sqrt(0.675 * 0.325 * 0.02) = 0.06624, z = 2.2646
    test = two_proportion_test(60, 100, 75, 100)
    assert test.z == pytest.approx(2.26455, abs=1e-5)
    assert test.p_increase == pytest.approx(0.011770, abs=1e-6)
    assert test.p_two_sided == pytest.approx(2 * test.p_increase)
    same = two_proportion_test(10, 10, 20, 20)
    assert (same.z, same.p_increase, same.p_two_sided) == (0.0, 0.5, 1.0)
    with pytest.raises(ValueError):
        two_proportion_test(0, 0, 1, 2)


def test_increase_verdict_branches() -> None:
    assert increase_verdict(60, 100, 75, 100) == VerdictResult(Verdict.MET)  # p = 0.0118
    assert increase_verdict(70, 100, 65, 100) == VerdictResult(Verdict.NOT_MET)  # fell
    assert increase_verdict(70, 100, 70, 100) == VerdictResult(Verdict.NOT_MET)  # flat
    # 70% -> 78%: z = 1.465, p = 0.071; the rise can become significant with more answers
    result = increase_verdict(140, 200, 78, 100)
    assert result.verdict is Verdict.INCONCLUSIVE and result.more_needed is not None
    # 70% of 10 -> 71%: even infinitely many new answers cannot make it significant
    assert increase_verdict(7, 10, 71, 100) == VerdictResult(Verdict.INCONCLUSIVE, None)
    assert increase_verdict(0, 0, 71, 100) == VerdictResult(Verdict.INCONCLUSIVE, None)
    assert increase_verdict(70, 100, 0, 0) == VerdictResult(Verdict.INCONCLUSIVE, None)


def test_increase_more_needed_flips_and_one_fewer_does_not() -> None:
    cases = 0
    for s1, n1 in ((140, 200), (300, 500), (50, 100), (400, 1000)):
        for n2 in (10, 30, 100):
            for s2 in range(n2 + 1):
                result = increase_verdict(s1, n1, s2, n2)
                if result.more_needed is None:
                    continue
                cases += 1
                rate2 = s2 / n2
                total = n2 + result.more_needed
                assert increase_verdict(s1, n1, rate2 * total, total).verdict is Verdict.MET
                fewer = total - 1
                assert increase_verdict(s1, n1, rate2 * fewer, fewer).verdict is not Verdict.MET
                # cross-check with statsmodels when the projected count is whole
                if result.more_needed and (rate2 * total).is_integer():
                    _, p = proportions_ztest(
                        [int(rate2 * total), s1], [total, n1], alternative="larger"
                    )
                    assert p < 0.05
    assert cases > 20


# ------------------------------------------------------------------------------------------
# Indicator results


def test_indicator_result_rate_kind() -> None:
    result = indicator_result("info_disclosure", 85, 100, 0.90)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.rate == 0.85
    assert (result.ci_low, result.ci_high) == wilson_interval(85, 100)
    data = result.to_dict()
    assert {
        "code",
        "n",
        "satisfied",
        "rate",
        "ci_low",
        "ci_high",
        "target",
        "verdict",
        "more_needed",
    } <= set(data)
    assert data["verdict"] == "inconclusive"
    assert data["target"] == 0.90
    assert data["more_needed"] == verdict(85, 100, 0.90).more_needed


def test_indicator_result_with_no_responses() -> None:
    result = indicator_result("oversight", 0, 0, 0.80)
    assert result.rate is None
    assert (result.ci_low, result.ci_high) == (0.0, 1.0)
    assert result.more_needed == 246


def test_indicator_result_increase_kind() -> None:
    without = indicator_result("law_enforcement", 75, 100, None)
    assert (without.verdict, without.target, without.target_kind) == (
        Verdict.INCONCLUSIVE,
        None,
        "increase",
    )
    met = indicator_result("law_enforcement", 75, 100, None, baseline=(60, 100))
    assert met.verdict is Verdict.MET
    assert met.p_value == pytest.approx(0.011770, abs=1e-6)
    assert (met.baseline_satisfied, met.baseline_n) == (60, 100)


def test_survey_results_tally_the_good_ratings() -> None:
    survey = load_catalog()["fazhi-2026"]
    levels = [
        "very_satisfied",
        "satisfied",
        "fairly_satisfied",
        "dissatisfied",
        "very_dissatisfied",
    ]
    responses: list[dict[str, Any]] = [
        {q.code: levels[i % 5] for q in survey.questions if q.type == "scale"} for i in range(50)
    ]
    responses.append({"business_env": "satisfied", "public_service": None})
    indicator = survey.indicator("business_env")
    assert indicator is not None
    assert tally(indicator, responses) == (31, 51)
    public_service = survey.indicator("public_service")
    assert public_service is not None
    assert tally(public_service, responses) == (30, 50)
    assert level_counts("business_env", responses)["satisfied"] == 11
    results = {
        r.code: r
        for r in survey_results(survey, responses, baselines={"law_enforcement": (10, 50)})
    }
    assert set(results) == {i.code for i in survey.indicators}
    assert (results["business_env"].satisfied, results["business_env"].n) == (31, 51)
    assert results["info_disclosure"].target == 0.90
    assert results["law_enforcement"].verdict is Verdict.MET  # 20% -> 60%


def test_dont_know_is_left_out_of_n_and_counted_apart() -> None:
    survey = load_catalog()["fazhi-2026"]
    indicator = survey.indicator("info_disclosure")
    assert indicator is not None
    # 4 非常满意, 3 满意, 1 基本满意, 2 不满意, 5 不了解, and one resident who skipped it
    values = ["very_satisfied"] * 4 + ["satisfied"] * 3 + ["fairly_satisfied"]
    values += ["dissatisfied"] * 2 + ["unknown"] * 5
    responses: list[dict[str, Any]] = [{"info_disclosure": v} for v in values]
    responses.append({"info_disclosure": None})
    assert tally_counts(indicator, responses) == (8, 10, 5)
    assert tally(indicator, responses) == (8, 10)
    (result,) = [r for r in survey_results(survey, responses) if r.code == "info_disclosure"]
    assert (result.satisfied, result.n, result.unknown) == (8, 10, 5)
    assert result.rate == 0.8  # 8 of 10, not 8 of 15
    # Wilson 95% for 8/10, by hand: centre 0.71674, half-width 0.22658
    assert result.ci_low == pytest.approx(0.4902, abs=1e-4)
    assert result.ci_high == pytest.approx(0.9433, abs=1e-4)
    assert result.verdict is Verdict.INCONCLUSIVE  # 0.90 lies inside the interval
    assert result.more_needed == verdict(8, 10, 0.90).more_needed
    assert result.to_dict()["unknown"] == 5
    counts = level_counts("info_disclosure", responses)
    assert counts["unknown"] == 5
    # (4×100 + 3×80 + 1×60 + 2×40) / 10 = 78; "don't know" carries no points
    assert weighted_index(counts) == 78


def test_only_dont_know_answers_leave_the_indicator_empty() -> None:
    survey = load_catalog()["fazhi-2026"]
    responses = [{"major_decisions": "unknown"} for _ in range(7)]
    (result,) = [r for r in survey_results(survey, responses) if r.code == "major_decisions"]
    assert (result.n, result.satisfied, result.unknown, result.rate) == (0, 0, 7, None)
    assert (result.ci_low, result.ci_high) == (0.0, 1.0)
    assert result.more_needed == 246  # the planning figure, as with no answers at all
    assert weighted_index(level_counts("major_decisions", responses)) is None
    increase = indicator_result("law_enforcement", 3, 4, None, baseline=(1, 4), unknown=2)
    assert increase.unknown == 2
    with pytest.raises(ValueError):
        indicator_result("oversight", 1, 2, 0.8, unknown=-1)


def test_weighted_index() -> None:
    assert weighted_index({"very_satisfied": 1, "very_dissatisfied": 1}) == 60
    assert weighted_index({"very_satisfied": 3, "satisfied": 1}) == 95
    assert (
        weighted_index(
            dict.fromkeys(
                (
                    "very_satisfied",
                    "satisfied",
                    "fairly_satisfied",
                    "dissatisfied",
                    "very_dissatisfied",
                ),
                2,
            )
        )
        == 60
    )
    assert weighted_index({}) is None
    assert weighted_index({"satisfied": 0}) is None
    with pytest.raises(ValueError):
        weighted_index({"good": 1})
    with pytest.raises(ValueError):
        weighted_index({"satisfied": -1})


# ------------------------------------------------------------------------------------------
# 民主测评


def test_ballot_score_known_values() -> None:
    # (10×100 + 5×80 + 3×60 + 2×40) / 20 = 1660 / 20
    assert ballot_score(10, 5, 3, 2) == 83.0
    assert ballot_score(7, 2, 1, 0) == 92.0
    assert ballot_score(30, 0, 0, 0) == 100.0
    assert ballot_score(0, 0, 0, 9) == 40.0
    assert ballot_score(1, 1, 1, 0) == pytest.approx(80.0)
    assert ballot_score(2, 1, 0, 0) == pytest.approx(280 / 3)
    assert ballot_score(0, 0, 0, 0) is None
    with pytest.raises(ValueError):
        ballot_score(-1, 2, 0, 0)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (100, Grade.EXCELLENT),
        (90, Grade.EXCELLENT),
        (89.99999999999999, Grade.EXCELLENT),  # floating-point noise of a weighted sum
        (89.9999, Grade.GOOD),
        (89.5, Grade.GOOD),
        (80, Grade.GOOD),
        (79.99, Grade.FAIR),
        (79.5, Grade.FAIR),
        (60, Grade.FAIR),
        (59.5, Grade.POOR),
        (59, Grade.POOR),
        (40, Grade.POOR),
    ],
)
def test_grade_bands(score: float, expected: Grade) -> None:
    assert grade(score) is expected


def test_grade_labels() -> None:
    assert [g.zh for g in Grade] == ["优秀", "良好", "一般", "较差"]
    assert [g.zh_person for g in Grade] == ["优秀", "称职", "基本称职", "不称职"]


def test_ballots_to_grade() -> None:
    assert grade(ballot_score(7, 2, 1, 0) or 0) is Grade.EXCELLENT
    assert grade(ballot_score(10, 5, 3, 2) or 0) is Grade.GOOD


def test_excellent_quota() -> None:
    ten = [95, 92, 90, 85, 80, 75, 88, 70, 60, 89.5]
    check = check_excellent_quota(ten)
    assert (check.ok, check.evaluated, check.excellent, check.allowed, check.over) == (
        True,
        10,
        3,
        3,
        0,
    )
    check = check_excellent_quota([*ten[:-1], 91])
    assert (check.ok, check.excellent, check.over) == (False, 4, 1)
    nine = check_excellent_quota([90, 90, 90, 80, 80, 80, 80, 80, 80])
    assert (nine.allowed, nine.over, nine.ok) == (2, 1, False)
    three = check_excellent_quota([91, 80, 80])
    assert (three.allowed, three.over) == (0, 1)
    assert check_excellent_quota([]).ok


def test_composite_weights_sum_to_one() -> None:
    assert len(SCHEMES) == 5
    for scheme in SCHEMES.values():
        assert sum(scheme.percent.values()) == 100
        assert math.fsum(scheme.weights.values()) == pytest.approx(1.0, abs=1e-12)


def test_composite_weights_follow_the_rules() -> None:
    assert HALF_YEAR_CHIEF.weights == {
        "democratic": 0.4,
        "supervising_leader": 0.2,
        "four_teams": 0.2,
        "inspection_team": 0.2,
    }
    assert HALF_YEAR_DEPUTY.percent["unit_head"] == 20
    assert ANNUAL_CHIEF.percent == {
        "half_year": 20,
        "democratic": 10,
        "supervising_leader": 10,
        "four_teams": 10,
        "inspection_team": 10,
        "unit_performance": 40,
    }
    assert ANNUAL_DEPUTY.percent["unit_head"] == 10
    assert ANNUAL_NOT_IN_PERFORMANCE.percent == {
        "half_year": 40,
        "democratic": 20,
        "supervising_leader": 25,
        "inspection_team": 15,
    }


def test_composite_scores_known_values() -> None:
    half = composite_score(
        HALF_YEAR_CHIEF,
        {"democratic": 90, "supervising_leader": 85, "four_teams": 80, "inspection_team": 95},
    )
    assert half == pytest.approx(88.0)  # 36 + 17 + 16 + 19
    annual = composite_score(
        ANNUAL_CHIEF,
        {
            "half_year": half,
            "democratic": 90,
            "supervising_leader": 85,
            "four_teams": 80,
            "inspection_team": 95,
            "unit_performance": 92,
        },
    )
    assert annual == pytest.approx(89.4)  # 17.6 + 9 + 8.5 + 8 + 9.5 + 36.8
    outside = composite_score(
        ANNUAL_NOT_IN_PERFORMANCE,
        {"half_year": 88, "democratic": 90, "supervising_leader": 85, "inspection_team": 95},
    )
    assert outside == pytest.approx(88.7)  # 35.2 + 18 + 21.25 + 14.25
    all90 = composite_score(ANNUAL_CHIEF, dict.fromkeys(ANNUAL_CHIEF.percent, 90.0))
    assert grade(all90) is Grade.EXCELLENT


def test_composite_score_rejects_wrong_parts() -> None:
    with pytest.raises(ValueError, match="missing"):
        composite_score(HALF_YEAR_CHIEF, {"democratic": 90})
    parts = dict.fromkeys(HALF_YEAR_CHIEF.percent, 80.0)
    with pytest.raises(ValueError, match="unexpected"):
        composite_score(HALF_YEAR_CHIEF, {**parts, "unit_performance": 90})
    with pytest.raises(ValueError, match="outside"):
        composite_score(HALF_YEAR_CHIEF, {**parts, "democratic": 101})


def test_scheme_weights_must_sum_to_100_percent() -> None:
    with pytest.raises(ValueError, match="sum to 99%"):
        CompositeScheme("bad", "坏", {"democratic": 50, "inspection_team": 49})
    with pytest.raises(ValueError, match="unknown"):
        CompositeScheme("bad", "坏", {"democratic": 50, "votes": 50})


def test_adjustment_points() -> None:
    assert adjustment_points() == 0
    assert adjustment_points(national=1) == 3
    assert adjustment_points(provincial=1) == 2
    assert adjustment_points(city=1) == 1
    assert adjustment_points(district=1) == 0.5
    assert adjustment_points(deductions=1) == -0.5
    assert adjustment_points(national=1, provincial=1, city=2, district=3, deductions=2) == 7.5
    with pytest.raises(ValueError):
        adjustment_points(city=-1)
