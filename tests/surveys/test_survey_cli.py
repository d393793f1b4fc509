"""The survey commands of ``pufa`` on a real database (in-process click runner)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import cli, register
from core.errors import PufaError
from tests.helpers import TEST_SECRET

if "results" not in cli.commands:
    register(cli)


@pytest.fixture
def run(db_url: str, tmp_path: Path) -> Any:
    runner = CliRunner()
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_SECRET_KEY": TEST_SECRET,
        "PUFA_DATA_DIR": str(tmp_path / "data"),
        "PUFA_PUBLIC_URL": "https://pufa.example.cn",
        "PUFA_TELEGRAM_BOT_USERNAME": None,  # no chat_link column unless a test sets --bot
    }

    def _run(*args: str) -> Any:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=True)

    return _run


def test_surveys_list_open_close(run: Any) -> None:
    listed = run("surveys", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = {r["code"]: r for r in json.loads(listed.output)}
    assert set(rows) == {"fazhi-2026", "deputies-2026"}
    assert rows["fazhi-2026"]["status"] == "scheduled"
    assert rows["fazhi-2026"]["opens_at"].startswith("2026-01-01T00:00:00+08:00")
    assert run("surveys", "close", "fazhi-2026").exit_code == 0
    rows = {r["code"]: r for r in json.loads(run("surveys", "list", "--format", "json").output)}
    assert rows["fazhi-2026"]["status"] == "closed" and rows["fazhi-2026"]["open"] is False
    assert run("surveys", "open", "fazhi-2026").exit_code == 0
    table = run("surveys", "list").output
    assert "fazhi-2026" in table and "open" in table
    unknown = run("surveys", "open", "nope")
    assert isinstance(unknown.exception, PufaError)
    assert "unknown survey 'nope'" in str(unknown.exception)


def test_invite_residents_csv_and_qr(run: Any, tmp_path: Path) -> None:
    assert run("seed", "--demo").exit_code == 0
    out = tmp_path / "batch.csv"
    qr = tmp_path / "qr"
    made = run(
        "invite", "residents", "fazhi-2026", "--township", "zbp", "--count", "5",
        "-o", str(out), "--qr", str(qr),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    text = out.read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 5 and set(rows[0]) == {"token", "url"}
    assert rows[0]["url"] == f"https://pufa.example.cn/s/fazhi-2026?t={rows[0]['token']}"
    assert len({r["token"] for r in rows}) == 5
    pngs = sorted(qr.glob("*.png"))
    assert len(pngs) == 5 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run("invite", "residents", "fazhi-2026", "--township", "nowhere", "--count", "1")
    assert missing.exit_code != 0


def test_invite_residents_chat_links(run: Any, db_url: str, tmp_path: Path) -> None:
    assert run("seed", "--demo").exit_code == 0
    out = tmp_path / "deputies.csv"
    made = run(
        "invite", "residents", "deputies-2026", "--township", "zbp", "--count", "3",
        "--bot", "@XixiaPufaBot", "-o", str(out),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    text = out.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "token,url,chat_link"  # token,url stay the first columns
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3
    for row in rows:
        token = row["token"]
        assert row["url"] == f"https://pufa.example.cn/s/deputies-2026?t={token}"
        assert row["chat_link"] == f"https://t.me/XixiaPufaBot?start=t_{token}"
        payload = row["chat_link"].split("start=", 1)[1]
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", payload), "a valid Telegram start payload"
    # The bot username can come from the environment too; printed to stdout without -o.
    runner = CliRunner()
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_SECRET_KEY": TEST_SECRET,
        "PUFA_DATA_DIR": str(tmp_path / "data"),
        "PUFA_TELEGRAM_BOT_USERNAME": "EnvBot",
    }
    printed = runner.invoke(
        cli,
        ["invite", "residents", "deputies-2026", "--township", "zbp", "--count", "1"],
        env=env,
    )
    assert printed.exit_code == 0, printed.output
    (row,) = csv.DictReader(io.StringIO(printed.output))
    assert row["chat_link"] == f"https://t.me/EnvBot?start=t_{row['token']}"


def test_results_formats(run: Any, tmp_path: Path) -> None:
    assert run("seed", "--demo").exit_code == 0  # sample responses
    table = run("results", "fazhi-2026", "--include-sample")
    assert table.exit_code == 0, table.output
    assert "社会公众对政府信息公开的总体满意度" in table.output and "420" in table.output
    shown = run("results", "fazhi-2026", "--format", "json", "--by", "township", "--include-sample")
    as_json = json.loads(shown.output)
    assert {i["verdict"] for i in as_json["indicators"]} <= {"met", "not_met", "inconclusive"}
    assert len(as_json["by"]["township"]) >= 2
    law = next(i for i in as_json["indicators"] if i["code"] == "law_enforcement")
    assert law["baseline_n"] == 300  # the sample 2025 survey
    xlsx = tmp_path / "r.xlsx"
    made = run("results", "fazhi-2026", "--format", "xlsx", "-o", str(xlsx), "--include-sample")
    assert made.exit_code == 0, made.output
    assert xlsx.read_bytes()[:2] == b"PK"
    assert run("results", "fazhi-2026", "--format", "xlsx").exit_code == 2


def test_token_create_prints_the_token_last(run: Any) -> None:
    created = run("token", "create", "--role", "analyst", "--label", "统计局")
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("pufa_") and len(token) > 40
    assert run("token", "create", "--role", "staff").exit_code == 2
    assert run("token", "create", "--role", "wizard").exit_code == 2
    listed = run("token", "list").output
    assert token[:12] in listed and token not in listed
    assert run("token", "revoke", token[:12]).exit_code == 0
    row = next(line for line in run("token", "list").output.splitlines() if token[:12] in line)
    assert row.rstrip().count("-") >= 4  # created and revoked dates are both shown
    again = run("token", "revoke", token[:12])
    assert isinstance(again.exception, PufaError)
