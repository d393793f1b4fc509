"""The survey commands as an operator runs them (real ``pufa`` processes): outputs that cannot
be written and filters that name nothing are refused with one line before anything is stored;
times are local with their offset; links follow PUFA_PORT; spreadsheets never run formulas."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from sqlalchemy import func, select

from storage.db import transaction
from storage.models_surveys import SurveyInvitation
from surveys.respondents import new_invitation_token, pseudonym
from surveys.schema import load_catalog
from surveys.submission import Submission, submit_many
from tests.helpers import TEST_SECRET, seed_db
from tests.surveys.conftest import NOW, SECRET, fazhi_answers

PUFA = [sys.executable, "-m", "bot"]


def _pufa(
    tmp_path: Path, db_url: str, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_DATABASE_URL=db_url,
        PUFA_SECRET_KEY=TEST_SECRET,
        PUFA_DATA_DIR=str(tmp_path / "data"),
        PUFA_LOG_FORMAT="text",
        **extra,
    )
    return subprocess.run(
        [*PUFA, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def _one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


async def _invitations(sessions: Any) -> int:
    async with sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(SurveyInvitation))).scalar_one()
        )


async def test_unwritable_outputs_fail_with_one_line_and_store_nothing(
    db_url: str, sessions: Any, tmp_path: Path
) -> None:
    await seed_db(sessions, demo=True)
    before = await _invitations(sessions)
    invite = ["invite", "residents", "fazhi-2026", "--township", "zbp", "--count", "3"]
    _one_line(_pufa(tmp_path, db_url, *invite, "-o", "/proc/x.csv"), "cannot write", "/proc/x.csv")
    _one_line(_pufa(tmp_path, db_url, *invite, "--qr", "/proc/qr"), "/proc/qr")
    assert await _invitations(sessions) == before, "no token stored that nobody received"
    results = ["results", "fazhi-2026"]
    _one_line(
        _pufa(tmp_path, db_url, *results, "--format", "xlsx", "-o", "/proc/x.xlsx"),
        "cannot write",
    )
    _one_line(_pufa(tmp_path, db_url, *results, "-o", "/proc/x.json"), "cannot write")
    ok = _pufa(tmp_path, db_url, *invite, "-o", str(tmp_path / "ok.csv"))
    assert ok.returncode == 0, ok.stderr
    assert await _invitations(sessions) == before + 3


async def test_unknown_filters_are_refused(db_url: str, sessions: Any, tmp_path: Path) -> None:
    await seed_db(sessions, demo=True)
    _one_line(
        _pufa(tmp_path, db_url, "results", "fazhi-2026", "--township", "nosuch"),
        "unknown township 'nosuch'",
    )
    _one_line(
        _pufa(tmp_path, db_url, "results", "fazhi-2026", "--baseline", "nosuch"),
        "unknown baseline survey 'nosuch'",
    )
    _one_line(
        _pufa(tmp_path, db_url, "results", "fazhi-2026", "--baseline", "fazhi-2025"),
        "no responses",
    )  # only sample answers there
    _one_line(_pufa(tmp_path, db_url, "results", "fazhi-2026", "--lang", "fr"), "--lang 'fr'")
    fine = _pufa(tmp_path, db_url, "results", "fazhi-2026", "--township", "zbp", "--lang", "en-US")
    assert fine.returncode == 0, fine.stderr
    assert "Indicator" in fine.stdout


def _near_now(printed: str, tz: ZoneInfo) -> None:
    moment = datetime.strptime(printed.replace(" +08:00", " +0800"), "%Y-%m-%d %H:%M %z")
    assert abs(moment - datetime.now(tz)) < timedelta(minutes=3), printed


async def test_times_are_local_with_their_offset(
    db_url: str, sessions: Any, tmp_path: Path
) -> None:
    import re

    await seed_db(sessions, demo=True)
    tz = ZoneInfo("Asia/Shanghai")
    assert _pufa(tmp_path, db_url, "token", "create", "--role", "analyst").returncode == 0
    listed = _pufa(tmp_path, db_url, "token", "list")
    created = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d \+08:00", listed.stdout)
    assert created, listed.stdout
    _near_now(created.group(0), tz)
    staff = _pufa(tmp_path, db_url, "invite", "staff", "--township", "zbp", "--ttl-days", "1")
    assert staff.returncode == 0, staff.stderr
    until = re.search(r"valid until (\d{4}-\d\d-\d\d \d\d:\d\d \+08:00)", staff.stdout)
    assert until and "UTC" not in staff.stdout, staff.stdout
    moment = datetime.strptime(until.group(1).replace(" +08:00", " +0800"), "%Y-%m-%d %H:%M %z")
    assert abs(moment - (datetime.now(tz) + timedelta(days=1))) < timedelta(minutes=3)


async def test_links_follow_the_port_when_no_public_url_is_set(
    db_url: str, sessions: Any, tmp_path: Path
) -> None:
    await seed_db(sessions, demo=True)
    made = _pufa(
        tmp_path, db_url, "invite", "residents", "fazhi-2026", "--township", "zbp",
        "--count", "2", "--qr", str(tmp_path / "qr"), PUFA_PORT="9123",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    rows = list(csv.DictReader(io.StringIO(made.stdout)))
    assert rows[0]["url"].startswith("http://127.0.0.1:9123/s/fazhi-2026?t=")
    assert len(list((tmp_path / "qr").glob("*.png"))) == 2


def test_invitation_tokens_never_look_like_formulas() -> None:
    tokens = [new_invitation_token() for _ in range(5000)]
    assert not [t for t in tokens if t[0] in "-=+@"]
    assert all(len(t) == 16 for t in tokens) and len(set(tokens)) == 5000


async def test_exported_comments_are_never_formulas(
    db_url: str, sessions: Any, tmp_path: Path
) -> None:
    await seed_db(sessions)
    comments = ['=HYPERLINK("http://evil.example","点我")', "+1+2", "-3", "@SUM(A1)", "很好"]
    survey = load_catalog()["fazhi-2026"]
    async with transaction(sessions) as session:
        await submit_many(
            session,
            [
                Submission(
                    survey, fazhi_answers(comment=text), pseudonym(SECRET, "t", str(i)),
                    "h5", None, "zh_CN", NOW,
                )
                for i, text in enumerate(comments)
            ],
        )  # fmt: skip
    out = tmp_path / "comments.csv"
    made = _pufa(tmp_path, db_url, "surveys", "comments", "fazhi-2026", "-o", str(out))
    assert made.returncode == 0, made.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    texts = [r["text"] for r in rows]
    assert texts == [
        "'=HYPERLINK(\"http://evil.example\",\"点我\")", "'+1+2", "'-3", "'@SUM(A1)", "很好",
    ]  # fmt: skip
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    book_path = tmp_path / "results.xlsx"
    made = _pufa(
        tmp_path, db_url, "results", "fazhi-2026", "--format", "xlsx", "-o", str(book_path)
    )
    assert made.returncode == 0, made.stderr
    sheet = openpyxl.load_workbook(book_path)["意见建议"]
    cells = [row[4] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == comments, "kept as typed"
    assert {c.data_type for c in cells} == {"s"}, "strings, never formulas"
