"""Sample (demo) responses never reach the official figures unless asked for, and the reports
say so when they do; ``pufa seed --demo`` refuses a production database."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
from click.testing import CliRunner

from bot.cli import cli, register
from storage.db import transaction
from storage.models_surveys import SurveyState
from surveys.respondents import pseudonym
from surveys.schema import load_catalog
from surveys.submission import Submission, submit_many
from tests.helpers import TEST_SECRET, seed_db
from tests.surveys.conftest import NOW, SECRET, fazhi_answers, make_api_token
from tests.surveys.test_api import opened

if "results" not in cli.commands:
    register(cli)

FAZHI = load_catalog()["fazhi-2026"]


async def _real(sessions: Any, levels: list[str], survey: Any = FAZHI, **extra: Any) -> None:
    items = [
        Submission(
            survey=survey,
            answers=fazhi_answers(level, **extra),
            respondent=pseudonym(SECRET, "test", f"{survey.code}:{i}"),
            channel="h5",
            township_code=None,
            locale="zh_CN",
            now=NOW,
        )
        for i, level in enumerate(levels)
    ]
    async with transaction(sessions) as session:
        outcomes = await submit_many(session, items)
    assert all(getattr(o, "created", False) for o in outcomes)


async def _invoke(db_url: str, tmp_path: Path, *args: str) -> Any:
    """``pufa ARGS`` in-process (in a thread: the command runs its own event loop)."""
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_SECRET_KEY": TEST_SECRET,
        "PUFA_DATA_DIR": str(tmp_path / "data"),
    }
    return await asyncio.to_thread(
        CliRunner().invoke, cli, list(args), env=env, catch_exceptions=True
    )


async def test_results_leave_sample_responses_out(
    db_url: str, sessions: Any, tmp_path: Path
) -> None:
    await seed_db(sessions, demo=True)  # 420 sample answers to fazhi-2026, 300 to fazhi-2025
    await _real(sessions, ["satisfied", "dissatisfied"])  # two real residents
    shown = await _invoke(db_url, tmp_path, "results", "fazhi-2026", "--format", "json")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["sample_included"] is False and body["sample_responses"] == 420
    info = next(i for i in body["indicators"] if i["code"] == "info_disclosure")
    assert (info["n"], info["satisfied"]) == (2, 1)
    major = next(i for i in body["indicators"] if i["code"] == "major_decisions")
    assert major["unknown"] == 0, "the sample 不了解 answers are not counted either"
    law = next(i for i in body["indicators"] if i["code"] == "law_enforcement")
    assert law["baseline_n"] is None and body["baseline"] is None, "no sample baseline"

    table = await _invoke(db_url, tmp_path, "results", "fazhi-2026")
    assert "420" in table.output and "未计入" in table.output
    assert "--include-sample" in table.output

    with_sample = await _invoke(
        db_url, tmp_path, "results", "fazhi-2026", "--format", "json", "--include-sample"
    )
    both = json.loads(with_sample.output)
    assert both["sample_included"] is True
    info = next(i for i in both["indicators"] if i["code"] == "info_disclosure")
    assert info["n"] == 422
    major = next(i for i in both["indicators"] if i["code"] == "major_decisions")
    assert major["unknown"] > 0
    law = next(i for i in both["indicators"] if i["code"] == "law_enforcement")
    assert law["baseline_n"] == 300
    table = await _invoke(
        db_url, tmp_path, "results", "fazhi-2026", "--include-sample", "--lang", "en"
    )
    assert "Includes 420 sample (demo) responses" in table.output

    xlsx = tmp_path / "r.xlsx"
    made = await _invoke(
        db_url, tmp_path, "results", "fazhi-2026", "--format", "xlsx", "-o", str(xlsx)
    )
    assert made.exit_code == 0, made.output
    book = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes()))
    summary = book["汇总"]
    assert "未计入" in str(summary["A2"].value)
    assert summary["C4"].value == 2  # n of the first indicator: real answers only
    xlsx_all = tmp_path / "all.xlsx"
    made = await _invoke(
        db_url, tmp_path, "results", "fazhi-2026", "--format", "xlsx", "-o", str(xlsx_all),
        "--include-sample",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    summary = openpyxl.load_workbook(io.BytesIO(xlsx_all.read_bytes()))["汇总"]
    assert "样例" in str(summary["A2"].value) and summary["C4"].value == 422

    listing = await _invoke(db_url, tmp_path, "surveys", "list", "--format", "json")
    listed = json.loads(listing.output)
    fazhi = next(r for r in listed if r["code"] == "fazhi-2026")
    assert (fazhi["responses"], fazhi["sample_responses"]) == (2, 420)


async def test_api_results_leave_sample_responses_out(client: Any, sessions: Any) -> None:
    await seed_db(sessions, demo=True)
    await opened(client, sessions)
    await _real(sessions, ["satisfied"])
    analyst = await make_api_token(sessions, "analyst")
    headers = {"Authorization": f"Bearer {analyst}"}
    url = "/api/v1/surveys/fazhi-2026/results"
    body = await (await client.get(url, headers=headers)).json()
    assert body["sample_included"] is False and body["sample_responses"] == 420
    assert {i["n"] for i in body["indicators"]} == {1}
    assert all(i["unknown"] == 0 for i in body["indicators"])
    everything = await (await client.get(url + "?include_sample=true", headers=headers)).json()
    assert everything["sample_included"] is True
    assert {i["n"] for i in everything["indicators"]} != {1}
    bad = await client.get(url + "?include_sample=maybe", headers=headers)
    assert bad.status == 422
    # a baseline with only sample answers is refused unless sample answers are asked for
    nothing = await client.get(url + "?baseline=fazhi-2025", headers=headers)
    assert nothing.status == 422
    assert "baseline" in (await nothing.json())["error"]["fields"]
    asked = await client.get(url + "?baseline=fazhi-2025&include_sample=1", headers=headers)
    assert asked.status == 200 and (await asked.json())["baseline"] == "fazhi-2025"


async def test_real_baseline_is_compared_and_sample_one_is_not(sessions: Any) -> None:
    from surveys.results import compute_results

    await seed_db(sessions, demo=True)
    async with transaction(sessions) as session:
        session.add(SurveyState(code="fazhi-2025", title_zh="2025", status="open"))
    await _real(sessions, ["satisfied"] * 3, survey=FAZHI.model_copy(update={"code": "fazhi-2025"}))
    await _real(sessions, ["satisfied"] * 4)
    async with sessions() as session:
        report = await compute_results(session, FAZHI)
    law = next(r.result for r in report.indicators if r.result.code == "law_enforcement")
    assert (law.baseline_n, law.baseline_satisfied) == (3, 3)  # the 300 sample ones left out


def test_seed_demo_is_refused_in_production(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(PUFA_DATABASE_URL=db_url, PUFA_ENV="production", PUFA_SECRET_KEY=TEST_SECRET * 2)
    refused = subprocess.run(
        [sys.executable, "-m", "bot", "seed", "--demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "PUFA_ENV=production" in lines[0], refused.stderr
    plain = subprocess.run(
        [sys.executable, "-m", "bot", "seed"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode == 0, plain.stderr
    assert "survey_response" not in plain.stdout
