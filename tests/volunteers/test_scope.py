"""Staff see and change only their own township — in the API and in exports — and a full
export (whole numbers) is for administrators only and is audited. (The chat side is in
``test_dialog.py``.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import openpyxl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storage.models import AuditLog
from tests.volunteers.conftest import make_token


async def test_api_staff_token_sees_its_own_township_only(
    demo: async_sessionmaker[AsyncSession], client: Any
) -> None:
    xj = {"Authorization": f"Bearer {await make_token(demo, 'staff', 'xj')}"}
    sample = "?include_sample=true"
    res = await client.get("/api/v1/volunteers/coverage" + sample, headers=xj)
    assert res.status == 200
    doc = await res.json()
    assert {v["township"] for v in doc["villages"]} == {"xj"}
    assert [t["township"] for t in doc["townships"]] == ["xj"]
    res = await client.get("/api/v1/volunteers/coverage?township=zbp", headers=xj)
    assert res.status == 403
    body = await res.json()
    assert body["error"]["code"] == "other_township" and "本镇街" in body["error"]["message"]

    res = await client.get("/api/v1/volunteers" + sample, headers=xj)
    listed = await res.json()
    assert res.status == 200 and {x["township"] for x in listed} == {"xj"} and len(listed) == 4
    assert all(x["mobile"].startswith("138****") for x in listed)
    res = await client.get("/api/v1/volunteers?township=zbp", headers=xj)
    assert res.status == 403
    res = await client.get("/api/v1/volunteers?village=zbp-01&include_sample=1", headers=xj)
    assert await res.json() == []  # another township's village: nothing, even by code

    analyst = {"Authorization": f"Bearer {await make_token(demo, 'analyst')}"}
    assert (await client.get("/api/v1/volunteers", headers=analyst)).status == 403
    admin = {"Authorization": f"Bearer {await make_token(demo, 'admin')}"}
    res = await client.get("/api/v1/volunteers" + sample, headers=admin)
    assert len(await res.json()) == 8


async def test_cli_export_is_scoped_and_full_is_admin_only(
    demo: async_sessionmaker[AsyncSession],
    pufa: Callable[..., CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    xj = await make_token(demo, "staff", "xj")
    out = tmp_path / "xj.csv"
    result = pufa("volunteers", "export", "-o", str(out), "--include-sample", "--token", xj)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert rows[0][:2] == ["镇街", "村（居）"]
    assert {r[0] for r in rows[1:]} == {"兴泾镇"} and len(rows) == 5
    assert all("****" in r[5] for r in rows[1:])

    refused = pufa(
        "volunteers", "export", "-o", str(tmp_path / "z.csv"), "--township", "zbp", "--token", xj
    )
    assert refused.returncode == 1 and "own township" in refused.stderr
    assert not (tmp_path / "z.csv").exists()
    refused = pufa("volunteers", "export", "-o", str(tmp_path / "f.xlsx"), "--full", env_token(xj))
    assert refused.returncode == 1 and "administrators only" in refused.stderr
    assert not (tmp_path / "f.xlsx").exists()

    full = tmp_path / "full.xlsx"
    result = pufa("volunteers", "export", "-o", str(full), "--full", "--include-sample")
    assert result.returncode == 0, result.stderr
    sheet = openpyxl.load_workbook(full).active
    numbers = [r[5] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(numbers) == 8 and "13800138001" in numbers

    async with demo() as session:
        audit = (
            (
                await session.execute(
                    select(AuditLog)
                    .where(col(AuditLog.action).like("volunteers.export%"))
                    .order_by(col(AuditLog.id))
                )
            )
            .scalars()
            .all()
        )
    assert [(a.action, a.subject, a.detail["rows"]) for a in audit] == [
        ("volunteers.export", "xj", 4),
        ("volunteers.export_full", "", 8),
    ]
    assert audit[0].actor.startswith("cli:token:pufa_") and audit[1].actor == "cli"


def env_token(token: str) -> str:
    """``--token=…`` as one argument."""
    return f"--token={token}"
