"""``pufa admin create`` as an operator runs it: a real process reading the password from
standard input, and the account it makes logs in to the console."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from storage.models import AuditLog
from storage.models_console import ConsoleAccount
from tests.console.conftest import add_townships, login
from tests.helpers import TEST_SECRET


def _env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(PUFA_DATABASE_URL=db_url, PUFA_SECRET_KEY=TEST_SECRET, PUFA_LOG_FORMAT="text")
    return env


def _admin(db_url: str, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "admin", *args],
        cwd=cwd,
        env=_env(db_url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _admin_all(db_url: str, cwd: Path, runs: list[tuple[list[str], str]]) -> list[tuple[int, str]]:
    """Several ``pufa admin`` processes at once (they start slowly); exit codes and stderr."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "admin", *args],
            cwd=cwd,
            env=_env(db_url),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _stdin in runs
    ]
    results = []
    for proc, (_args, stdin) in zip(procs, runs, strict=True):
        _out, err = proc.communicate(stdin, timeout=120)
        results.append((proc.returncode, err))
    return results


async def test_admin_create_reads_two_lines_and_the_account_logs_in(
    client: TestClient[Any, Any], sessions: Any, db_url: str, tmp_path: Path
) -> None:
    await add_townships(sessions, ZBP="镇北堡镇")
    made = _admin(
        db_url,
        tmp_path,
        "create",
        "王芳",
        "--role",
        "staff",
        "--township",
        "ZBP",
        stdin="一二三四五六七八九十abc\n一二三四五六七八九十abc\n",
    )
    assert made.returncode == 0, made.stderr
    assert "'王芳' created, role staff for township ZBP" in made.stdout
    async with sessions() as session:
        account = (await session.execute(select(ConsoleAccount))).scalar_one()
        audit = (
            await session.execute(
                select(AuditLog).where(AuditLog.action == "console.account.create")
            )
        ).scalar_one()
    assert account.role == "staff" and account.township == "ZBP"
    assert account.password_hash.startswith("$argon2id$")
    assert "一二三" not in account.password_hash
    assert (audit.actor, audit.action, audit.subject) == ("cli", "console.account.create", "王芳")
    assert audit.detail["after"] == {"role": "staff", "township": "ZBP", "active": True}

    assert (await login(client, "王芳", "wrong password!")).status == 401
    assert (await login(client, "王芳", "一二三四五六七八九十abc")).status == 303
    page = await (await client.get("/admin/dashboard")).text()
    assert "王芳" in page

    listed = _admin(db_url, tmp_path, "list")
    assert listed.returncode == 0
    assert "王芳\tstaff\tZBP\tactive" in listed.stdout

    # Disabled: the open session ends and the password no longer logs in.
    assert _admin(db_url, tmp_path, "disable", "王芳").returncode == 0
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 302
    assert (await login(client, "王芳", "一二三四五六七八九十abc")).status == 401
    changed = _admin(
        db_url, tmp_path, "password", "王芳", stdin="新的密码新的密码新的\n新的密码新的密码新的\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert _admin(db_url, tmp_path, "enable", "王芳").returncode == 0
    assert (await login(client, "王芳", "一二三四五六七八九十abc")).status == 401
    assert (await login(client, "王芳", "新的密码新的密码新的")).status == 303
    async with sessions() as session:
        actions = (await session.execute(select(AuditLog.action).order_by(AuditLog.id))).scalars()
        changes = [a for a in actions if a.startswith("console.account")]
    assert changes == [
        "console.account.create",
        "console.account.disable",
        "console.account.password",
        "console.account.enable",
    ]


async def test_admin_create_refuses_bad_input(sessions: Any, db_url: str, tmp_path: Path) -> None:
    await add_townships(sessions, ZBP="镇北堡镇")
    good = "a long enough password\na long enough password\n"
    cases = [
        (["create", "ops"], "one password here\nanother password\n", 1, "the two passwords differ"),
        (["create", "ops"], "short\nshort\n", 1, "at least 10 characters"),
        (["create", "ops", "--role", "staff"], good, 2, "--role staff needs --township"),
        (["create", "ops", "--role", "staff", "--township", "NOPE"], good, 1, "unknown township"),
    ]
    results = _admin_all(db_url, tmp_path, [(args, stdin) for args, stdin, _c, _m in cases])
    for (args, _stdin, code, message), (returncode, stderr) in zip(cases, results, strict=True):
        assert returncode == code, (args, stderr)
        assert message in stderr, (args, stderr)
        assert "Traceback" not in stderr
    assert _admin(db_url, tmp_path, "create", "ops", stdin=good).returncode == 0
    again = _admin(db_url, tmp_path, "create", "OPS", stdin=good)
    assert again.returncode == 1 and "already exists" in again.stderr
    async with sessions() as session:
        names = (await session.execute(select(ConsoleAccount.name))).scalars().all()
    assert names == ["ops"]
