"""Results computed in SQL agree with the pure scoring over the same answers; reports render."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from storage.db import transaction
from storage.models_surveys import SurveyState
from surveys.reports import render_json, render_table, render_xlsx
from surveys.respondents import pseudonym
from surveys.results import baseline_code, compute_results
from surveys.schema import SCALE_CODES, UNKNOWN_CODE, load_catalog
from surveys.scoring import survey_results
from surveys.submission import Submission, submit_many
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, seed_surveys

FAZHI = load_catalog()["fazhi-2026"]
TOWNS = ["zbp", "xj", "hyl", None]


async def _store(sessions: Any, survey: Any, answer_sets: list[tuple[dict[str, Any], Any]]) -> None:
    items = [
        Submission(
            survey=survey,
            answers=answers,
            respondent=pseudonym(SECRET, "test", f"{survey.code}:{i}"),
            channel=["h5", "telegram", "wecom"][i % 3],
            township_code=town,
            locale="zh_CN",
            now=NOW,
        )
        for i, (answers, town) in enumerate(answer_sets)
    ]
    async with transaction(sessions) as session:
        outcomes = await submit_many(session, items)
    assert all(getattr(o, "created", False) for o in outcomes)


def _random_sets(seed: int, n: int, unknown: bool = False) -> list[tuple[dict[str, Any], Any]]:
    """Random complete answer sets with townships; with ``unknown``, "don't know" is as likely
    as each of the five levels."""
    rng = random.Random(seed)
    choices = (*SCALE_CODES, UNKNOWN_CODE) if unknown else SCALE_CODES
    sets = []
    for _ in range(n):
        answers = fazhi_answers()
        for code in list(answers):
            if FAZHI.question(code).type == "scale":  # type: ignore[union-attr]
                answers[code] = rng.choice(choices)
        sets.append((answers, rng.choice(TOWNS)))
    return sets


async def test_sql_results_equal_pure_scoring(sessions: Any) -> None:
    await seed_surveys(sessions)
    sets = _random_sets(7, 150, unknown=True)
    await _store(sessions, FAZHI, sets)
    async with sessions() as session:
        report = await compute_results(session, FAZHI, locale="zh_CN")
    expected = {r.code: r for r in survey_results(FAZHI, [a for a, _ in sets])}
    assert [row.result.code for row in report.indicators] == list(expected)
    for row in report.indicators:
        assert row.result == expected[row.result.code]
        # "don't know" is stored and counted apart, never in n
        said = sum(1 for a, _ in sets if a[row.result.code] == UNKNOWN_CODE)
        assert row.result.unknown == said > 0
        assert row.result.n == 150 - said
        assert sum(row.levels.values()) == row.result.n and UNKNOWN_CODE not in row.levels
        assert row.to_dict()["unknown"] == said
    assert report.responses == 150
    for town in TOWNS:
        subset = [a for a, t in sets if t == town]
        want = {r.code: r for r in survey_results(FAZHI, subset)}
        got = {r.result.code: r.result for r in report.by_township[town]}
        for code, result in got.items():
            if result.target is not None:
                assert result == want[code]
    for i, channel in enumerate(["h5", "telegram", "wecom"]):
        subset = [a for j, (a, _) in enumerate(sets) if j % 3 == i]
        want = {r.code: r for r in survey_results(FAZHI, subset)}
        got = {r.result.code: r.result for r in report.by_channel[channel]}
        assert got["business_env"] == want["business_env"]


async def test_dont_know_shows_in_every_report(sessions: Any) -> None:
    import openpyxl

    await seed_surveys(sessions)
    # 3 satisfied, 1 dissatisfied and 2 "don't know" on major decisions; the rest satisfied
    sets = [
        (fazhi_answers(major_decisions=level), None)
        for level in ["satisfied"] * 3 + ["dissatisfied"] + [UNKNOWN_CODE] * 2
    ]
    await _store(sessions, FAZHI, sets)
    async with sessions() as session:
        report = await compute_results(session, FAZHI, locale="zh_CN")
    major = next(row for row in report.indicators if row.result.code == "major_decisions")
    assert (major.result.n, major.result.satisfied, major.result.unknown) == (4, 3, 2)
    assert major.result.rate == 0.75
    assert major.index == (3 * 80 + 40) / 4
    body = json.loads(render_json(report))
    found = next(i for i in body["indicators"] if i["code"] == "major_decisions")
    assert (found["n"], found["unknown"]) == (4, 2)
    assert found["levels"] == {"satisfied": 3, "dissatisfied": 1}
    table = render_table(report, "en")
    assert "Don't know" in table
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(report, "zh_CN")))
    summary = book["汇总"]
    header = [cell.value for cell in summary[3]]
    column = header.index("不了解")
    rows = {row[1].value: row for row in summary.iter_rows(min_row=4) if row[1].value}
    assert rows["major_decisions"][column].value == 2
    assert rows["major_decisions"][2].value == 4  # n
    assert rows["business_env"][column].value == 0
    sheet = book["major_decisions"]
    per_level = {row[0].value: row[1].value for row in sheet.iter_rows() if row[0].value}
    assert per_level["不了解"] == 2 and per_level["满意"] == 3


async def test_significant_rise_compares_with_last_year(sessions: Any) -> None:
    await seed_surveys(sessions)
    assert baseline_code("fazhi-2026") == "fazhi-2025"
    assert baseline_code("adhoc") is None
    # 2025: 60 of 100 satisfied with law enforcement; 2026: 80 of 100.
    last = [
        (fazhi_answers(law_enforcement="satisfied" if i < 60 else "dissatisfied"), None)
        for i in range(100)
    ]
    this = [
        (fazhi_answers(law_enforcement="satisfied" if i < 80 else "dissatisfied"), None)
        for i in range(100)
    ]
    last_survey = FAZHI.model_copy(update={"code": "fazhi-2025"})
    async with transaction(sessions) as session:
        session.add(SurveyState(code="fazhi-2025", title_zh="2025年调查", status="open"))
    await _store(sessions, last_survey, last)
    await _store(sessions, FAZHI, this)
    async with sessions() as session:
        report = await compute_results(session, FAZHI)
        no_base = await compute_results(session, FAZHI, baseline="nothing-here")
    law = next(r.result for r in report.indicators if r.result.code == "law_enforcement")
    assert report.baseline == "fazhi-2025"
    assert (law.baseline_n, law.baseline_satisfied) == (100, 60)
    assert str(law.verdict) == "met"
    assert law.p_value is not None and law.p_value < 0.05
    from statsmodels.stats.proportion import proportions_ztest

    _, p = proportions_ztest([80, 60], [100, 100], alternative="larger")
    assert law.p_value == pytest.approx(p, abs=1e-9)
    law0 = next(r.result for r in no_base.indicators if r.result.code == "law_enforcement")
    assert str(law0.verdict) == "inconclusive" and no_base.baseline is None


async def test_reports_render_in_chinese_and_open_as_xlsx(sessions: Any) -> None:
    import openpyxl

    await seed_surveys(sessions)
    await _store(sessions, FAZHI, _random_sets(3, 40))
    async with sessions() as session:
        report = await compute_results(session, FAZHI, locale="zh_CN")
    table = render_table(report, "zh_CN", by="township")
    assert "社会公众对政府信息公开的总体满意度" in table and "≥ 90%" in table
    assert "95%置信区间" in table
    body = render_json(report, "channel")
    assert '"verdict"' in body and "社会公众" in body
    data = render_xlsx(report, "zh_CN")
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames[0] == "汇总"
    assert book.sheetnames[1:] == [i.code for i in FAZHI.indicators]
    summary = book["汇总"]
    assert summary["A4"].value == "社会公众对政府法治化营商环境满意度"
    assert summary["C3"].value == "n" and summary["C4"].value == 40
    assert summary["E4"].number_format == "0.0%"
    assert len(summary._charts) == 1
    sheet = book["info_disclosure"]
    assert sheet["A1"].value == "社会公众对政府信息公开的总体满意度"
    towns = [c.value for c in sheet["A"] if c.value and "(" in str(c.value)]
    assert any("zbp" in str(v) for v in towns)
    # the workbook is a real zip with the chart part Excel and WPS draw natively
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "xl/charts/chart1.xml" in names
