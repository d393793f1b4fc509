"""Loading the built-in catalog (units, both rotas, indicators) and the demo data.

Both loaders upsert by code, so running them twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.feature import SeedReport
from storage.models import Indicator, RotaEntry, Township, Unit, Village

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
COMMITTEES = ("standing", "executive")


def _read(name: str) -> dict[str, Any]:
    with (CATALOG_DIR / name).open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a mapping at the top level")
    return data


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


async def _upsert(
    session: AsyncSession, model: type[Any], key: str, values: dict[str, Any], report: SeedReport
) -> Any:
    column = getattr(model, key)
    existing = (
        await session.execute(select(model).where(column == values[key]))
    ).scalar_one_or_none()
    if existing is None:
        obj = model(**values)
        session.add(obj)
        await session.flush()
        report.count(model.__tablename__, created=True)
        return obj
    if _apply(existing, values):
        report.count(model.__tablename__, created=False)
        await session.flush()
    return existing


async def load_catalog(session: AsyncSession, report: SeedReport | None = None) -> SeedReport:
    """Upsert units, both lecture rotas and the satisfaction indicators."""
    report = report or SeedReport()
    units_doc = _read("units.yaml")
    units: dict[str, Unit] = {}
    for row in units_doc["units"]:
        units[row["code"]] = await _upsert(session, Unit, "code", dict(row), report)
    for committee in COMMITTEES:
        codes = units_doc["rotas"][committee]
        for position, code in enumerate(codes, start=1):
            unit = units[code]
            entry = (
                await session.execute(
                    select(RotaEntry).where(
                        col(RotaEntry.committee) == committee, col(RotaEntry.position) == position
                    )
                )
            ).scalar_one_or_none()
            if entry is None:
                assert unit.id is not None
                session.add(RotaEntry(committee=committee, position=position, unit_id=unit.id))
                report.count("rota_entry", created=True)
            elif entry.unit_id != unit.id:
                entry.unit_id = unit.id  # type: ignore[assignment]
                report.count("rota_entry", created=False)
    for row in _read("indicators.yaml")["indicators"]:
        values = {"target_kind": "min_rate", **row}
        await _upsert(session, Indicator, "code", values, report)
    await session.flush()
    return report


async def load_demo(session: AsyncSession, report: SeedReport | None = None) -> SeedReport:
    """Upsert the sample townships and villages (marked ``sample``)."""
    report = report or SeedReport()
    for trow in _read("demo.yaml")["townships"]:
        villages = trow.get("villages", [])
        values = {k: v for k, v in trow.items() if k != "villages"} | {"sample": True}
        township = await _upsert(session, Township, "code", values, report)
        for vrow in villages:
            vvalues = dict(vrow) | {"township_id": township.id, "sample": True}
            await _upsert(session, Village, "code", vvalues, report)
    await session.flush()
    return report
