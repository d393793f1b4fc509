"""Coverage equals a hand count on a small fixture (poor villages, a village above target, a
community, sample data), the same through the store, ``pufa volunteers coverage`` (table, JSON,
XLSX) and ``GET /api/v1/volunteers/coverage``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.volunteers.coverage import VillageFacts, compute_coverage, target_for
from bot.volunteers.store import Keys, LiaisonData, add_liaison, coverage
from storage.db import transaction
from storage.models import Township, Village
from tests.helpers import TEST_SECRET
from tests.volunteers.conftest import NOW, make_token

# village code: (township, kind, poor, sample village, real liaisons, sample liaisons)
FIXTURE: dict[str, tuple[str, str, bool, bool, int, int]] = {
    "ta-1": ("ta", "village", False, False, 2, 0),
    "ta-2": ("ta", "village", True, False, 2, 0),
    "ta-3": ("ta", "community", False, False, 0, 0),
    "ta-4": ("ta", "village", True, False, 4, 0),
    "tb-1": ("tb", "community", False, False, 1, 1),
    "tb-2": ("tb", "village", True, False, 3, 0),
    "tb-3": ("tb", "village", True, True, 0, 1),
}
NAMES = {"ta": "甲镇", "tb": "乙街道"}

# Counted by hand from FIXTURE: (count, target, shortfall) per village.
OFFICIAL_VILLAGES = {
    "ta-1": (2, 2, 0),
    "ta-2": (2, 3, 1),
    "ta-3": (0, 2, 2),
    "ta-4": (4, 3, 0),  # above target: does not make up for ta-2 or ta-3
    "tb-1": (1, 2, 1),  # its sample liaison does not count
    "tb-2": (3, 3, 0),
}
# (villages, short, count, target, shortfall) per township
OFFICIAL_TOWNSHIPS = {"ta": (4, 2, 8, 10, 3), "tb": (2, 1, 4, 5, 1)}
SAMPLE_VILLAGES = OFFICIAL_VILLAGES | {"tb-1": (2, 2, 0), "tb-3": (1, 3, 2)}
SAMPLE_TOWNSHIPS = {"ta": (4, 2, 8, 10, 3), "tb": (3, 1, 6, 8, 2)}


@pytest.fixture
async def fixture_db(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    keys = Keys(TEST_SECRET.encode())
    serial = 0
    async with transaction(sessions) as session:
        towns = {}
        for code, name in NAMES.items():
            towns[code] = Township(code=code, name=name, kind="town")
            session.add(towns[code])
        await session.flush()
        for code, (town, kind, poor, sample_village, real, sample) in FIXTURE.items():
            village = Village(
                code=code,
                township_id=towns[town].id or 0,
                name=f"{code}村",
                kind=kind,
                poor=poor,
                sample=sample_village,
            )
            session.add(village)
            await session.flush()
            for is_sample, n in ((False, real), (True, sample)):
                for _ in range(n):
                    serial += 1
                    data = LiaisonData(
                        f"测试{chr(0x4E00 + serial)}", "m", f"1390000{serial:04d}", "grid"
                    )
                    await add_liaison(
                        session, keys, village, data, actor="test", now=NOW, sample=is_sample
                    )
    return sessions


def _figures(doc: dict[str, Any]) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    villages = {v["village"]: (v["count"], v["target"], v["shortfall"]) for v in doc["villages"]}
    towns = {
        t["township"]: (t["villages"], t["short"], t["count"], t["target"], t["shortfall"])
        for t in doc["townships"]
    }
    return villages, towns


def test_target_and_pure_coverage() -> None:
    assert (target_for(False), target_for(True)) == (2, 3)
    facts = [
        VillageFacts(1, "t", "T", "v1", "V1", "village", True),
        VillageFacts(2, "t", "T", "v2", "V2", "village", False),
    ]
    cov = compute_coverage(facts, {1: 5, 2: 1})
    assert [(v.count, v.target, v.shortfall) for v in cov.villages] == [(5, 3, 0), (1, 2, 1)]
    town = cov.townships[0]
    assert (town.villages, town.short, town.count, town.target, town.shortfall) == (2, 1, 6, 5, 1)


async def test_store_coverage_equals_the_hand_count(
    fixture_db: async_sessionmaker[AsyncSession],
) -> None:
    async with fixture_db() as session:
        official = (await coverage(session)).to_dict()
        with_sample = (await coverage(session, include_sample=True)).to_dict()
        only_b = (await coverage(session, township="tb")).to_dict()
    assert _figures(official) == (OFFICIAL_VILLAGES, OFFICIAL_TOWNSHIPS)
    assert official["include_sample"] is False
    assert _figures(with_sample) == (SAMPLE_VILLAGES, SAMPLE_TOWNSHIPS)
    assert _figures(only_b)[1] == {"tb": OFFICIAL_TOWNSHIPS["tb"]}
    row = next(v for v in official["villages"] if v["village"] == "ta-2")
    assert row == {
        "township": "ta",
        "township_name": "甲镇",
        "village": "ta-2",
        "village_name": "ta-2村",
        "kind": "village",
        "poor": True,
        "count": 2,
        "target": 3,
        "shortfall": 1,
    }


async def test_cli_coverage_json_table_and_xlsx(
    fixture_db: async_sessionmaker[AsyncSession],
    pufa: Callable[..., CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    result = pufa("volunteers", "coverage", "--format", "json")
    assert result.returncode == 0, result.stderr
    official = json.loads(result.stdout)
    assert _figures(official) == (OFFICIAL_VILLAGES, OFFICIAL_TOWNSHIPS)
    assert official["include_sample"] is False

    table = pufa("volunteers", "coverage", "--township", "tb", "--include-sample").stdout
    assert "乙街道" in table and "甲镇" not in table and "缺口" in table
    assert "以上数字包含示例（演示）数据" in table
    assert "tb-3村" in table  # the sample village, asked for

    out = tmp_path / "coverage.xlsx"
    result = pufa("volunteers", "coverage", "--format", "xlsx", "-o", str(out), "--lang", "en")
    assert result.returncode == 0, result.stderr
    book = openpyxl.load_workbook(io.BytesIO(out.read_bytes()))
    towns = list(book["Townships"].iter_rows(values_only=True))
    assert towns[0][:3] == ("Township", "Code", "Villages")
    assert {r[1]: tuple(r[2:]) for r in towns[1:]} == OFFICIAL_TOWNSHIPS
    villages = list(book["Villages"].iter_rows(values_only=True))
    assert {r[2]: tuple(r[5:]) for r in villages[1:]} == OFFICIAL_VILLAGES


async def test_api_coverage(fixture_db: async_sessionmaker[AsyncSession], client: Any) -> None:
    url = "/api/v1/volunteers/coverage"
    analyst = await make_token(fixture_db, "analyst")
    res = await client.get(url, headers={"Authorization": f"Bearer {analyst}"})
    assert res.status == 200
    assert _figures(await res.json()) == (OFFICIAL_VILLAGES, OFFICIAL_TOWNSHIPS)
    res = await client.get(
        url + "?include_sample=true", headers={"Authorization": f"Bearer {analyst}"}
    )
    assert _figures(await res.json()) == (SAMPLE_VILLAGES, SAMPLE_TOWNSHIPS)

    assert (await client.get(url)).status == 401
    res = await client.get(url, headers={"Authorization": "Bearer pufa_nope"})
    assert res.status == 401 and (await res.json())["error"]["code"] == "unauthorized"
    coordinator = await make_token(fixture_db, "coordinator")
    res = await client.get(url, headers={"Authorization": f"Bearer {coordinator}"})
    assert res.status == 403
    res = await client.get(url + "?township=zz", headers={"Authorization": f"Bearer {analyst}"})
    assert res.status == 404 and (await res.json())["error"]["code"] == "unknown_township"
