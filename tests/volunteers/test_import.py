"""``pufa import villages|volunteers`` as an operator runs it (the real command in a
subprocess): bad rows change nothing and are each reported, GBK CSV with Chinese headers, XLSX,
re-imports in place, the dialog's rules for liaisons, and 5,000 rows in seconds."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.volunteers.importer import parse_village_rows
from bot.volunteers.store import Keys, list_liaisons
from bot.volunteers.tabular import TableError, decode_csv, read_table
from storage.models import AuditLog, Township, Village
from storage.models_volunteers import Volunteer
from tests.helpers import TEST_SECRET
from tests.volunteers.conftest import PUFA, pufa_env

Pufa = Callable[..., CompletedProcess[str]]
KEYS = Keys(TEST_SECRET.encode())
VILLAGE_HEADER_ZH = "镇街代码,镇街名称,村居代码,村居名称,类型,贫困村\n"
VILLAGE_HEADER_EN = "township_code,township_name,village_code,village_name,kind,poor\n"


async def _snapshot(sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    async with sessions() as session:
        towns = (await session.execute(select(Township.code, Township.name))).all()
        villages = (
            await session.execute(
                select(Village.code, Village.name, Village.township_id, Village.poor, Village.kind)
            )
        ).all()
        liaisons = (
            await session.execute(select(Volunteer.id, Volunteer.mobile_hash, Volunteer.gender))
        ).all()
        audit = (await session.execute(select(func.count()).select_from(AuditLog))).scalar()
    return sorted(towns), sorted(villages), sorted(liaisons), audit


async def test_bad_rows_change_nothing_and_each_is_reported(
    demo: async_sessionmaker[AsyncSession], pufa: Pufa, tmp_path: Path
) -> None:
    path = tmp_path / "villages.csv"
    path.write_bytes(
        (
            VILLAGE_HEADER_EN
            + "zbp,镇北堡镇,zbp-05,新村,村,否\n"  # row 2: good
            + "zbp,镇北堡镇,zbp 06,团结村,村,否\n"  # row 3: bad code
            + "new-t,新镇,nt-01,新华村,村,maybe\n"  # row 4: bad yes/no
            + ",,,,,\n"  # row 5: blank, skipped
            + "new-t,新镇,zbp-05,复制村,村,是\n"  # row 6: code again
            + "new-t,新的镇,nt-02,新民社区,,否\n"  # row 7: township renamed within the file
            + "zbp,镇北堡镇,zbp-07,某某,乡,1\n"  # row 8: bad kind
        ).encode("utf-8-sig")
    )
    before = await _snapshot(demo)
    result = pufa("import", "villages", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("第 3 行（village_code）：“zbp 06”不是有效的代码")
    assert lines[1].startswith("第 4 行（poor）：“maybe”不是“是/否”值")
    assert lines[2] == "第 6 行（village_code）：村居代码 zbp-05 已在第 2 行使用。"
    assert lines[3] == "第 7 行（township_name）：镇街 new-t 在第 4 行叫“新镇”，这里却叫“新的镇”。"
    assert lines[4].startswith("第 8 行（kind）：类型须为 村 或 社区")
    assert "拒绝 5" in result.stdout
    assert result.stderr.startswith("pufa: 有 5 行被拒绝，因此未写入任何数据")
    assert len(result.stderr.strip().splitlines()) == 1
    assert await _snapshot(demo) == before

    english = pufa("import", "villages", str(path), "--lang", "en", "--dry-run")
    assert english.returncode == 1
    assert "row 3 (village_code): “zbp 06” is not a valid code" in english.stdout
    assert "Dry run: nothing was written." in english.stdout
    assert await _snapshot(demo) == before

    skipped = pufa("import", "villages", str(path), "--skip-bad")
    assert skipped.returncode == 1 and "有 5 行被拒绝，已跳过" in skipped.stderr
    async with demo() as session:
        codes = set((await session.execute(select(Village.code))).scalars())
    assert "zbp-05" in codes and "nt-01" not in codes and "nt-02" not in codes


async def test_gbk_csv_with_chinese_headers_imports(
    demo: async_sessionmaker[AsyncSession], pufa: Pufa, tmp_path: Path
) -> None:
    path = tmp_path / "村居.csv"
    text = (
        VILLAGE_HEADER_ZH
        + "640105100,镇北堡镇,640105100201,团结村,村,是\r\n"
        + "640105100,镇北堡镇,640105100202,吴苑村,,否\r\n"
        + "640105001,宁华路街道,640105001001,宁华社区,社区,N\r\n"
    )
    path.write_bytes(text.encode("gbk"))  # what Excel/WPS write on Chinese Windows
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    result = pufa("import", "villages", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "新建 3" in result.stdout and "新建镇街：2 个" in result.stdout
    async with demo() as session:
        rows = (
            await session.execute(
                select(
                    Village.code,
                    Village.name,
                    Village.kind,
                    Village.poor,
                    Township.name,
                    Township.kind,
                )
                .join(Township, col(Township.id) == col(Village.township_id))
                .where(col(Village.code).like("640105%"))
                .order_by(col(Village.code))
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("640105001001", "宁华社区", "community", False, "宁华路街道", "street"),
        ("640105100201", "团结村", "village", True, "镇北堡镇", "town"),
        ("640105100202", "吴苑村", "village", False, "镇北堡镇", "town"),
    ]


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_xlsx_reimport_updates_villages_in_place(
    demo: async_sessionmaker[AsyncSession], pufa: Pufa, tmp_path: Path
) -> None:
    path = tmp_path / "villages.xlsx"
    header = ["Township code", "Township name", "Village code", "Village name", "Kind", "Poor"]
    path.write_bytes(
        _xlsx([header, [640105200, "贺兰山西路街道", 640105200001, "贺兰社区", "社区", 0]])
    )
    assert pufa("import", "villages", str(path)).returncode == 0
    async with demo() as session:
        before = {v.code: v for v in (await session.execute(select(Village))).scalars()}
    # rename a village, flag another as poor, move a demo village (with its liaison) elsewhere
    path.write_bytes(
        _xlsx(
            [
                header,
                [640105200, "贺兰山西路街道", 640105200001, "贺兰山社区", "社区", None],
                ["zbp", "镇北堡镇", "zbp-03", "华西村", "村", "是"],
                [640105200, "贺兰山西路街道", "wcl-01", "文萃社区", "社区", "否"],
            ]
        )
    )
    result = pufa("import", "villages", str(path), "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert "0 new, 3 updated" in result.stdout
    async with demo() as session:
        after = {v.code: v for v in (await session.execute(select(Village))).scalars()}
        moved = (
            (
                await session.execute(
                    select(Volunteer.township_id).where(
                        col(Volunteer.village_id) == after["wcl-01"].id
                    )
                )
            )
            .scalars()
            .all()
        )
        updates = (
            (
                await session.execute(
                    select(AuditLog).where(col(AuditLog.action) == "village.update")
                )
            )
            .scalars()
            .all()
        )
    assert set(after) == set(before)
    assert after["640105200001"].id == before["640105200001"].id
    assert after["640105200001"].name == "贺兰山社区"
    assert after["zbp-03"].poor and not after["zbp-03"].sample
    assert after["wcl-01"].township_id == after["640105200001"].township_id
    assert moved == [after["wcl-01"].township_id]
    assert {a.subject for a in updates} == {"640105200001", "zbp-03", "wcl-01"}
    renamed = next(a for a in updates if a.subject == "640105200001")
    assert (renamed.detail["before"]["name"], renamed.detail["after"]["name"]) == (
        "贺兰社区",
        "贺兰山社区",
    )


async def test_liaison_import_uses_the_dialog_rules(
    demo: async_sessionmaker[AsyncSession], pufa: Pufa, tmp_path: Path
) -> None:
    path = tmp_path / "liaisons.csv"
    good = (
        "村居代码,姓名,性别,手机号,身份\n"
        'zbp-03,白玉兰,女,13912340001,村"两委"班子成员\n'
        "zbp-03,马建军,男,+86 139 1234 0002,其他：退休教师\n"
    )
    bad_rows = (
        "zbp-04,王五,男,0951-5012345,网格员\n"  # row 4: landline
        "zbp-04,赵六,女,13912340001,乡贤\n"  # row 5: same number as row 2
        "zbp-04,钱7,未知,1391234000,村长\n"  # row 6: name, gender, number, background
        "zz-99,孙八,男,13912340009,党员\n"  # row 7: unknown village
        "zbp-04,周九,男,13800138004,党员\n"  # row 8: fine: 138…004 is registered in 兴泾镇
        "zbp-04,吴十,男,13800138001,党员\n"  # row 9: registered in 镇北堡镇 (镇北堡村)
    )
    path.write_text(good + bad_rows, encoding="utf-8")
    before = await _snapshot(demo)
    result = pufa("import", "volunteers", str(path), "--lang", "en")
    assert result.returncode == 1
    out = result.stdout
    assert "row 4 (手机号): 0951-5012345 looks like a landline" in out
    assert "row 5 (手机号): The same mobile number is on row 2" in out
    assert "row 6 (姓名): A name may contain only letters" in out
    assert "row 6 (性别): The gender must be 男 or 女" in out
    assert "row 6 (手机号): A mobile number has 11 digits; 1391234000 has 10." in out
    assert "row 6 (身份): “村长” is not one of the backgrounds" in out
    assert "row 7 (村居代码): There is no village with the code zz-99" in out
    assert "row 8" not in out
    assert (
        "row 9 (手机号): This mobile number is already registered in 镇北堡镇 for 镇北堡村 (张*)"
        in out
    )
    assert "refused" in result.stderr and await _snapshot(demo) == before

    path.write_text(good, encoding="utf-8")
    assert pufa("import", "volunteers", str(path)).returncode == 0
    path.write_text(good.replace("白玉兰,女", "白玉兰,男"), encoding="utf-8")
    changed = pufa("import", "volunteers", str(path), "--lang", "en")
    assert changed.returncode == 0 and "0 new, 1 updated, 1 unchanged" in changed.stdout
    async with demo() as session:
        found = await list_liaisons(session, KEYS, village="zbp-03")
    assert [
        (x.data.name, x.data.gender, x.data.mobile, x.data.background, x.data.note) for x in found
    ] == [
        ("白玉兰", "m", "13912340001", "committee", ""),
        ("马建军", "m", "13912340002", "other", "退休教师"),
    ]

    scoped = pufa("import", "volunteers", str(path), "--township", "xj", "--lang", "en")
    assert scoped.returncode == 1
    assert "row 2 (村居代码): The village zbp-03 belongs to 镇北堡镇" in scoped.stdout


async def test_file_level_problems_are_one_line(pufa: Pufa, tmp_path: Path) -> None:
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    result = pufa("import", "villages", str(old))
    assert result.returncode == 1 and ".xlsx" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = tmp_path / "m.csv"
    missing.write_text("村居代码,村居名称\nzbp-01,镇北堡村\n", encoding="utf-8")
    result = pufa("import", "villages", str(missing), "--lang", "en")
    assert result.returncode == 1
    assert "Missing column(s): township_code (镇街代码), township_name (镇街名称)" in result.stderr


def test_encodings_and_delimiters_are_detected() -> None:
    text = "镇街代码\t镇街名称\t村居代码\t村居名称\nzbp\t镇北堡镇\tzbp-09\t新村\n"
    for data, encoding in (
        (text.encode("utf-8"), "utf-8"),
        (text.encode("utf-8-sig"), "utf-8-sig"),
        (text.encode("gbk"), "gbk"),
        (text.encode("utf-16"), "utf-16"),
    ):
        table = read_table(data)
        assert table.encoding == encoding
        rows, problems = parse_village_rows(table)
        assert not problems and [(r.code, r.name, r.kind) for r in rows] == [
            ("zbp-09", "新村", "village")
        ]
    assert decode_csv("镇北堡".encode("gb18030"))[0] == "镇北堡"
    with pytest.raises(TableError):
        read_table(b"")


def _with_terminal(db_url: str, cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run ``pufa`` with stderr on a pseudo-terminal: exit status, stdout, what stderr drew."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*PUFA, *args], cwd=cwd, env=pufa_env(db_url), stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    drawn: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the process has closed the terminal
                return
            if not data:
                return
            drawn.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=180)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, out.decode("utf-8"), b"".join(drawn).decode("utf-8", "replace")


async def test_5000_rows_import_in_seconds(
    sessions: async_sessionmaker[AsyncSession], pufa: Pufa, db_url: str, tmp_path: Path
) -> None:
    villages = tmp_path / "villages.csv"
    lines = [VILLAGE_HEADER_ZH]
    lines += [
        f"T{i // 250:03d},第{i // 250}镇,V{i:05d},第{i}村,村,{'是' if i % 7 == 0 else '否'}\n"
        for i in range(5000)
    ]
    villages.write_bytes("".join(lines).encode("gbk"))
    liaisons = tmp_path / "liaisons.xlsx"
    backgrounds = ["人民调解员", "网格员", "村民小组长", "党员", "村“两委”班子成员"]
    liaisons.write_bytes(
        _xlsx(
            [["village_code", "name", "gender", "mobile", "background"]]
            + [
                [
                    f"V{i // 2:05d}",
                    f"张{chr(0x4E00 + i % 500)}{chr(0x4E00 + i // 500)}",
                    "男" if i % 2 else "女",
                    13900000000 + i,
                    backgrounds[i % 5],
                ]
                for i in range(5000)
            ]
        )
    )
    started = time.perf_counter()
    code, out, bar = _with_terminal(db_url, tmp_path, "import", "villages", str(villages))
    village_seconds = time.perf_counter() - started
    assert code == 0, out + bar
    assert "新建 5000" in out
    assert "正在导入村（居）" in bar and "100%" in bar  # a progress bar on a terminal
    started = time.perf_counter()
    result = pufa("import", "volunteers", str(liaisons))
    liaison_seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    print(f"\n5000 villages: {village_seconds:.1f} s; 5000 liaisons: {liaison_seconds:.1f} s")
    async with sessions() as session:
        counts = (
            (await session.execute(select(func.count()).select_from(Village))).scalar(),
            (await session.execute(select(func.count()).select_from(Volunteer))).scalar(),
        )
    assert counts == (5000, 5000)
    # a whole process (start-up and migration check included); seconds, not minutes
    assert village_seconds < 60 and liaison_seconds < 60
