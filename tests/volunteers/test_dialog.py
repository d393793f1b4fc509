"""The /register conversation through the dialog runtime: search, other backgrounds, duplicate
numbers, edit and remove (audited, masked), and staff held to their own township."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.binding.invites import create_invite
from bot.volunteers.importer import import_villages
from bot.volunteers.store import Keys, list_liaisons
from bot.volunteers.tabular import read_table
from storage.db import transaction
from storage.models import AuditLog
from storage.models_dialogs import Conversation
from tests.helpers import TEST_SECRET
from tests.volunteers.conftest import NOW, Chat, make_staff

KEYS = Keys(TEST_SECRET.encode())


async def _register(c: Chat, village: str, name: str, gender: str, mobile: str, bg: str) -> None:
    await c.send(f"/register {village}")
    await c.press("登记新的法律明白人")
    await c.send(name)
    await c.press(gender)
    await c.send(mobile)
    await c.press(bg)


async def _liaisons(sessions: async_sessionmaker[AsyncSession], village: str) -> list[str]:
    async with sessions() as session:
        found = await list_liaisons(session, KEYS, village=village)
    return [f"{x.data.name}/{x.data.mobile}/{x.data.background}/{x.data.note}" for x in found]


async def test_search_other_background_and_duplicate_number(
    demo: async_sessionmaker[AsyncSession], chat: Callable[[str], Chat]
) -> None:
    await make_staff(demo, "2001", "zbp")
    c = chat("2001")
    await c.send("/register")
    await c.send("德林")  # search by part of the name
    assert "德林村" in c.texts() and "目标 3 名" in c.texts()
    await c.press("登记新的法律明白人")
    await c.send("张3")
    assert "只能包含文字" in c.texts() and "请重新输入姓名" in c.texts()
    await c.send("阿依古丽•买买提")
    await c.press("男")
    await c.send("13800138001")  # a sample liaison of 镇北堡村 has this number
    assert "138****8001" in c.texts() and "镇北堡村" in c.texts() and "只算一次" in c.texts()
    await c.send("+86 139-0000-1111")
    await c.press("其他")
    assert "说明身份" in c.texts()
    await c.send("退休教师")
    assert "其他（退休教师）" in c.texts() and "个人信息告知" in c.texts()
    await c.press("确认保存")
    assert await _liaisons(demo, "zbp-04") == ["阿依古丽·买买提/13900001111/other/退休教师"]


async def test_edit_and_remove_are_audited_masked(
    demo: async_sessionmaker[AsyncSession], chat: Callable[[str], Chat]
) -> None:
    await make_staff(demo, "2002", "zbp")
    c = chat("2002")
    await _register(c, "华西", "王建国", "男", "13912340001", "网格员")
    await c.press("确认保存")
    await c.press("查看名单")
    assert "139****0001" in c.texts() and "13912340001" not in c.texts()
    await c.press("王建国")
    await c.press("修改")
    await c.press("手机号码")
    await c.send("12345")
    assert "请重新输入手机号码" in c.texts()
    await c.send("13912340002")
    assert "已保存" in c.texts() and "139****0002" in c.texts()
    await c.press("修改")
    await c.press("身份")
    await c.press("村民小组长")
    assert await _liaisons(demo, "zbp-03") == ["王建国/13912340002/group_leader/"]

    await c.press("移除")
    await c.send("外出务工")
    assert "外出务工" in c.texts() and "139****0002" in c.texts()
    assert len(await _liaisons(demo, "zbp-03")) == 1  # nothing removed before the confirmation
    await c.press("移除")
    assert await _liaisons(demo, "zbp-03") == []

    async with demo() as session:
        audit = (
            (
                await session.execute(
                    select(AuditLog)
                    .where(col(AuditLog.action).like("volunteer.%"), col(AuditLog.actor) != "seed")
                    .order_by(col(AuditLog.id))
                )
            )
            .scalars()
            .all()
        )
    assert [a.action for a in audit] == [
        "volunteer.create",
        "volunteer.update",
        "volunteer.update",
        "volunteer.delete",
    ]
    change = audit[1].detail
    assert (
        change["before"]["mobile"] == "139****0001" and change["after"]["mobile"] == "139****0002"
    )
    assert audit[3].detail["reason"] == "外出务工"
    assert audit[3].detail["before"]["name"] == "王*国"
    assert all(a.actor.startswith("identity:") for a in audit)
    text = str([a.detail for a in audit])
    assert "王建国" not in text and "13912340001" not in text and "13912340002" not in text


async def test_staff_cannot_reach_another_township(
    demo: async_sessionmaker[AsyncSession], chat: Callable[[str], Chat]
) -> None:
    await make_staff(demo, "2003", "xj")  # 兴泾镇 staff
    c = chat("2003")
    await c.send("/register")
    labels = " ".join(c.labels())
    assert "兴泾村" in labels and "镇北堡村" not in labels and "昊苑村" not in labels
    # another township's village, by name or by code: not found
    await c.send("/register 昊苑村")
    assert "兴泾镇没有与“昊苑村”相符的村（居）" in c.texts()
    await c.send("/register zbp-02")
    assert "没有与“zbp-02”相符" in c.texts()


async def test_buttons_from_an_earlier_binding_find_nothing(
    demo: async_sessionmaker[AsyncSession], chat: Callable[[str], Chat]
) -> None:
    """Staff of 镇北堡镇 open a village and a liaison, then are bound to 兴泾镇: the buttons
    still on their screen no longer reach 镇北堡镇's villages or liaisons."""
    await make_staff(demo, "2005", "zbp")
    await make_staff(demo, "2006", "zbp")
    first, second = chat("2005"), chat("2006")
    await first.send("/register 昊苑")
    menu = list(first.last or [])
    await second.send("/register 昊苑")
    await second.press("查看名单")
    await second.press("马文")
    card = list(second.last or [])
    before = await _liaisons(demo, "zbp-02")

    async with transaction(demo) as session:
        codes = [
            (await create_invite(session, KEYS.secret, "staff", now=NOW, township="xj")).code
            for _ in range(2)
        ]
    await first.send(f"/bind {codes[0]}")
    await second.send(f"/bind {codes[1]}")
    assert "兴泾镇" in second.texts()

    first.last = menu
    await first.press("登记新的法律明白人")
    assert "该村（居）不属于兴泾镇" in first.texts() and "兴泾村" in " ".join(first.labels())
    second.last = card
    await second.press("移除")
    assert "该法律明白人不在兴泾镇登记" in second.texts()
    assert await _liaisons(demo, "zbp-02") == before


async def test_other_roles_are_refused(
    demo: async_sessionmaker[AsyncSession], chat: Callable[[str], Chat]
) -> None:
    await make_staff(demo, "2004", "zbp", role="unit")
    c = chat("2004")
    await c.send("/register")
    assert "仅限镇街工作人员" in c.texts()
    async with demo() as session:
        flows = (
            await session.execute(
                select(func.count())
                .select_from(Conversation)
                .where(col(Conversation.flow) == "register")
            )
        ).scalar()
    assert flows == 0


async def test_many_villages_come_a_page_at_a_time(
    demo: async_sessionmaker[AsyncSession], chat: Callable[[str], Chat]
) -> None:
    rows = "".join(f"big,大镇,big-{i:02d},第{i}村,村,否\n" for i in range(1, 11))
    table = read_table(("township_code,township_name,village_code,village_name\n" + rows).encode())
    async with transaction(demo) as session:
        await import_villages(session, table, actor="test", now=NOW)
    await make_staff(demo, "2010", "big")
    c = chat("2010")
    await c.send("/register")
    assert "第 1/2 页" in c.texts() and "10 个村（居）中有 10 个" in c.texts()
    assert [label for label in c.labels() if label.startswith("第")] == [
        f"第{i}村 0/2 ⚠" for i in range(1, 9)
    ]
    await c.press("下一页")
    assert [label for label in c.labels() if label.startswith("第")] == [
        "第9村 0/2 ⚠",
        "第10村 0/2 ⚠",
    ]
    assert "上一页" in " ".join(c.labels())
    await c.send("第1")  # several match: choose among them
    assert "大镇中与“第1”相符的村（居）" in c.texts()
    assert [label for label in c.labels() if label.startswith("第")] == ["第1村", "第10村"]
    await c.press("第10村")
    assert "第10村（村）：已登记法律明白人 0 名，目标 2 名。还差 2 名。" in c.texts()
    await c.press("完成")
    assert "/register" in c.texts()
