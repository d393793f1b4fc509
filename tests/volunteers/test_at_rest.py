"""No registered name or mobile number is stored in plain text: not in the liaison table, not
in a conversation half-way through /register, not in the audit log — checked on the bytes of
the SQLite file (and its write-ahead log) or, on PostgreSQL, on a raw SELECT of every table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.volunteers.importer import import_volunteers
from bot.volunteers.store import Keys, list_liaisons
from bot.volunteers.tabular import read_table
from storage.db import transaction
from storage.schema import metadata
from tests.helpers import TEST_SECRET
from tests.volunteers.conftest import NOW, Chat, make_staff

KEYS = Keys(TEST_SECRET.encode())
SECRETS = {
    "欧阳娜娜": "13971234567",  # registered in chat
    "司马相如": "18695551234",  # imported
    "上官婉儿": "15500001111",  # typed into /register, not yet saved
}


def _forms(value: str) -> list[bytes]:
    """The ways a value could sit in a database file: UTF-8, UTF-16, GBK, JSON-escaped."""
    escaped = json.dumps(value)[1:-1]
    forms = {
        value.encode("utf-8"),
        value.encode("utf-16-le"),
        value.encode("gbk"),
        escaped.encode("ascii"),
        escaped.upper().replace("\\U", "\\u").encode("ascii"),
    }
    return sorted(forms)


async def _scan_sqlite(url: str) -> bytes:
    path = Path(make_url(url).database or "")
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


async def _scan_postgres(engine: AsyncEngine) -> bytes:
    chunks = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table.name}" t'))
            chunks.extend(row[0].encode("utf-8") for row in rows)
    return b"\n".join(chunks)


async def test_names_and_numbers_are_never_stored_in_plain_text(
    demo: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    db_url: str,
    chat: Callable[[str], Chat],
) -> None:
    await make_staff(demo, "3001", "zbp")
    await make_staff(demo, "3002", "zbp")
    saved = chat("3001")
    await saved.send("/register 华西村")
    await saved.press("登记新的法律明白人")
    await saved.send("欧阳娜娜")
    await saved.press("女")
    await saved.send("139 7123 4567")
    await saved.press("网格员")
    await saved.press("确认保存")
    half = chat("3002")
    await half.send("/register 德林村")
    await half.press("登记新的法律明白人")
    await half.send("上官婉儿")
    await half.press("女")
    await half.send("15500001111")  # now at the background question: nothing saved yet

    table = read_table(
        "村居代码,姓名,性别,手机号,身份\nzbp-04,司马相如,男,18695551234,乡贤\n".encode()
    )
    async with transaction(demo) as session:
        result = await import_volunteers(session, KEYS, table, actor="test", now=NOW)
    assert result.created == 1

    async with demo() as session:
        opened = {x.data.name: x.data.mobile for x in await list_liaisons(session, KEYS)}
    assert opened["欧阳娜娜"] == "13971234567" and opened["司马相如"] == "18695551234"
    assert "上官婉儿" not in opened

    await engine.dispose()  # close connections; the files are read as they are
    raw = await (_scan_sqlite(db_url) if db_url.startswith("sqlite") else _scan_postgres(engine))
    assert len(raw) > 10_000
    # the scan does find what is stored in plain text (a township name, a masked number)
    assert "镇北堡镇".encode() in raw or json.dumps("镇北堡镇")[1:-1].encode() in raw
    assert b"139****4567" in raw
    for name, mobile in SECRETS.items():
        for form in (*_forms(name), *_forms(mobile)):
            assert form not in raw, f"{name}/{mobile} found in plain text as {form!r}"
