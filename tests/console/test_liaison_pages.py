"""The liaison pages over real HTTP against a real database: importing villages and liaisons
with a preview of every refused row before anything is written, then writing all or only the
good rows; coverage with its filters and workbook; the list with masked numbers only; a staff
account held to its own township; what people typed shown as text."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import openpyxl
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.volunteers.store import Keys, LiaisonData, add_liaison
from core.clock import utcnow
from storage.db import transaction
from storage.models import Township, Village
from storage.models_console import ConsoleUpload
from storage.models_volunteers import Volunteer
from tests.console.conftest import (
    add_townships,
    audit_actions,
    csrf_of,
    flash_of,
    logged_in,
    make_account,
)
from tests.helpers import TEST_SECRET

VILLAGES = (
    "镇街代码,镇街名称,村居代码,村居名称,类型,贫困村\n"
    "ZBP,镇北堡镇,zbp-01,镇北堡村,村,否\n"  # row 2
    "ZBP,镇北堡镇,zbp-02,昊苑村,村,是\n"  # row 3
    "ZBP,镇北堡镇,zbp-03,华西村,镇,否\n"  # row 4: not a village type
    "ZBP,镇北堡镇,zbp-01,德林村,村,否\n"  # row 5: the code again
    "XJZ,兴泾镇,xjz-01,兴泾<b>社区</b>,社区,否\n"  # row 6
)


def _file(data: bytes, name: str = "villages.csv") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="text/csv")
    return form


async def _upload(
    client: TestClient[Any, Any], kind: str, data: bytes, name: str = "f.csv"
) -> aiohttp.ClientResponse:
    token = csrf_of(await (await client.get("/admin/liaisons/import")).text())
    return await client.post(
        f"/admin/liaisons/import/{kind}?csrf_token={token}", data=_file(data, name)
    )


async def _count(sessions: Any, model: Any) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def _problems(html: str) -> list[tuple[str, str, str]]:
    body = html.split('id="problems"', 1)[1].split("</tbody>", 1)[0]
    rows = body.split("<tr><td")[1:]
    out = []
    for row in rows:
        cells = [c.split("</td>", 1)[0].split(">", 1)[-1] for c in row.split("<td")]
        out.append((cells[0], cells[1], cells[2]))
    return out


async def test_villages_are_previewed_with_every_bad_row_and_written_only_when_confirmed(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await make_account(sessions, "ops")
    await logged_in(client, "ops")
    preview = await _upload(client, "villages", VILLAGES.encode("gbk"), "村居.csv")
    assert preview.status == 200 and "/admin/liaisons/import/villages/" in preview.url.path
    html = await preview.text()
    assert "尚未写入任何数据" in html and "村居.csv" in html
    problems = _problems(html)
    assert [(row, column) for row, column, _ in problems] == [("4", "类型"), ("5", "村居代码")]
    assert problems[0][2] == "类型须为 村 或 社区，不能是“镇”。"
    assert problems[1][2] == "村居代码 zbp-01 已在第 2 行使用。"
    assert 'value="import"' not in html and 'value="skip_bad"' in html
    assert await _count(sessions, Village) == 0 and await _count(sessions, Township) == 0
    async with sessions() as session:
        kept = (await session.execute(select(ConsoleUpload))).scalar_one()
    assert "镇北堡村" not in kept.sealed  # the sheet waits sealed

    # Asking to write it all anyway writes nothing.
    token = csrf_of(html)
    refused = await client.post(preview.url.path, data={"csrf_token": token, "action": "import"})
    assert "有2行未通过检查" in flash_of(await refused.text())
    assert await _count(sessions, Village) == 0

    done = await client.post(preview.url.path, data={"csrf_token": token, "action": "skip_bad"})
    assert done.url.path == "/admin/liaisons"
    page = await done.text()
    assert "新增3条" in flash_of(page) and "跳过2行" in flash_of(page)
    assert await _count(sessions, Village) == 3 and await _count(sessions, Township) == 2
    assert await _count(sessions, ConsoleUpload) == 0
    again = await client.get(preview.url.path)
    assert again.url.path == "/admin/liaisons/import" and "已过期" in flash_of(await again.text())

    # Coverage: every village short; a village name is text, not markup.
    assert "兴泾&lt;b&gt;社区&lt;/b&gt;" in page and "兴泾<b>" not in page
    summary = page.split('id="coverage-summary"', 1)[1].split("</p>", 1)[0]
    assert "3个村（社区）中3个未达标" in summary and "还差7名" in summary
    short = await (await client.get("/admin/liaisons?township=XJZ&short=1")).text()
    assert "xjz-01" in short and "zbp-01" not in short
    xlsx = await client.get("/admin/liaisons/coverage.xlsx?township=ZBP")
    book = openpyxl.load_workbook(io.BytesIO(await xlsx.read()))
    villages = [row[1] for row in book.worksheets[1].iter_rows(min_row=2, values_only=True)]
    assert villages == ["镇北堡村", "昊苑村"]
    assert (await client.get("/admin/liaisons?township=NOPE")).status == 404

    actions = [(e.actor, e.action) for e in await audit_actions(sessions, "village.")]
    assert actions.count(("console:ops", "village.create")) == 3
    assert ("console:ops", "village.import") in actions
    imported = next(e for e in await audit_actions(sessions, "village.import"))
    assert imported.detail == {"rows": 5, "created": 3, "updated": 0, "refused": 2}

    # Discarding a checked file writes nothing and forgets it.
    preview = await _upload(client, "villages", VILLAGES.replace("zbp-03", "zbp-09").encode())
    discarded = await client.post(preview.url.path, data={"csrf_token": token, "action": "discard"})
    assert "已放弃" in flash_of(await discarded.text())
    assert await _count(sessions, ConsoleUpload) == 0 and await _count(sessions, Village) == 3


async def test_a_file_that_cannot_be_read_is_refused_with_the_reason(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await make_account(sessions, "ops")
    await logged_in(client, "ops")
    for data, name, reason in (
        (b"", "empty.csv", "请选择要导入的文件。"),
        (b"\xd0\xcf\x11\xe0" + b"\0" * 64, "old.xls", "old.xls: 这是旧版 .xls 工作簿。"),
        ("姓名,电话\n张三,1\n".encode(), "wrong.csv", "wrong.csv: 缺少列：township_code"),
        (b"a" * (4 * 1024 * 1024 + 1), "huge.csv", "文件超过4 MB"),
    ):
        response = await _upload(client, "villages", data, name)
        assert response.url.path == "/admin/liaisons/import", name
        assert flash_of(await response.text()).startswith(reason), name
    token = csrf_of(await (await client.get("/admin/liaisons/import")).text())
    plain = await client.post(
        "/admin/liaisons/import/villages", data={"csrf_token": token, "file": "x.csv"}
    )
    assert "请选择要导入的文件" in flash_of(await plain.text())
    assert await _count(sessions, ConsoleUpload) == 0


async def test_staff_import_and_see_their_own_township_only(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await add_townships(sessions, ZBP="镇北堡镇", XJZ="兴泾镇")
    async with transaction(sessions) as session:
        towns = dict((await session.execute(select(Township.code, Township.id))).all())
        for code, town in (("zbp-01", "ZBP"), ("zbp-02", "ZBP"), ("xjz-01", "XJZ")):
            session.add(
                Village(code=code, township_id=towns[town], name=f"{code}村", kind="village")
            )
    async with transaction(sessions) as session:
        other = (
            await session.execute(select(Village).where(Village.code == "xjz-01"))
        ).scalar_one()
        await add_liaison(
            session,
            Keys(TEST_SECRET.encode()),
            other,
            LiaisonData("<i>王</i>五", "m", "13712345678", "grid"),
            actor="cli",
            now=utcnow(),
        )
    await make_account(sessions, "wang", role="staff", township="ZBP")
    await make_account(sessions, "ops")
    await logged_in(client, "wang")

    liaisons = (
        "村居代码,姓名,性别,手机号,身份\n"
        "zbp-01,张三,男,138 1234 5678,人民调解员\n"  # row 2
        "zbp-01,李四,女,13912345678,网格员\n"  # row 3
        "xjz-01,赵六,男,15012345678,党员\n"  # row 4: another township's village
        "zbp-02,钱七,女,1381234567890,乡贤\n"  # row 5: 13 digits
        "zbp-02,孙八,男,13812345678,乡贤\n"  # row 6: row 2's number
    )
    preview = await _upload(client, "volunteers", liaisons.encode("utf-8-sig"))
    html = await preview.text()
    problems = _problems(html)
    assert [row for row, _, _ in problems] == ["4", "5", "6"]
    assert "兴泾镇" in problems[0][2]
    assert "138******7890" in problems[1][2]  # a number typed wrong, masked all the same
    assert "1381234567890" not in html and "13812345678" not in html
    assert await _count(sessions, Volunteer) == 1
    done = await client.post(
        preview.url.path, data={"csrf_token": csrf_of(html), "action": "skip_bad"}
    )
    listed = await done.text()
    assert done.url.path == "/admin/liaisons/list"
    assert "新增2条" in flash_of(listed)
    table = listed.split('id="liaisons"', 1)[1].split("</table>", 1)[0]
    assert "张三" in table and "李四" in table and "王" not in table
    assert "138****5678" in table and "139****5678" in table
    assert "13812345678" not in listed and "13912345678" not in listed
    coverage = await (await client.get("/admin/liaisons")).text()
    assert "xjz-01" not in coverage and 'name="township"' not in coverage
    entries = await audit_actions(sessions, "volunteer.")
    created = [e for e in entries if e.actor == "console:wang" and e.action == "volunteer.create"]
    assert len(created) == 2 and created[0].detail["after"]["mobile"] == "138****5678"
    # A file without a bad row is imported whole.
    clean = await _upload(
        client,
        "volunteers",
        "村居代码,姓名,性别,手机号,身份\nzbp-02,周九,女,15912345678,党员\n".encode(),
    )
    html = await clean.text()
    assert 'id="problems"' not in html and 'value="skip_bad"' not in html
    done = await client.post(clean.url.path, data={"csrf_token": csrf_of(html), "action": "import"})
    assert "新增1条" in flash_of(await done.text())
    assert await _count(sessions, Volunteer) == 4

    # Nothing of another township, by any door.
    for path in (
        "/admin/liaisons?township=XJZ",
        "/admin/liaisons/list?township=XJZ",
        "/admin/liaisons/coverage.xlsx?township=XJZ",
    ):
        assert (await client.get(path)).status == 403, path
    assert (await client.get("/admin/liaisons/list?village=xjz-01")).status == 404
    token = csrf_of(listed)
    villages = await client.post(
        f"/admin/liaisons/import/villages?csrf_token={token}",
        data=_file(VILLAGES.encode()),
        allow_redirects=False,
    )
    assert villages.status == 403

    # The district office sees every township; a name is text, not markup.
    client.session.cookie_jar.clear()
    await logged_in(client, "ops")
    everyone = await (await client.get("/admin/liaisons/list")).text()
    assert "&lt;i&gt;王&lt;/i&gt;五" in everyone and "<i>王" not in everyone
    assert "137****5678" in everyone and "13712345678" not in everyone
    # An upload belongs to the account that made it.
    mine = await _upload(client, "volunteers", liaisons.encode())
    client.session.cookie_jar.clear()
    await logged_in(client, "wang")
    theirs = await client.get(mine.url.path)
    assert theirs.url.path == "/admin/liaisons/import" and "已过期" in flash_of(await theirs.text())
    assert await _count(sessions, Volunteer) == 4
