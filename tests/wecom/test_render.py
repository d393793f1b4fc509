"""How replies look on WeCom, and how typed text picks an option (pure functions)."""

from __future__ import annotations

import pytest

from bot.channels.wecom.choices import match_choice
from bot.channels.wecom.events import MalformedXml, event_id_of, parse_message, to_inbound
from bot.channels.wecom.render import card_of, robot_markdown, text_chunks, text_of
from core.messages import Button, Link, Reply


def _reply(text: str, labels: list[str], links: tuple[Link, ...] = ()) -> Reply:
    return Reply(
        text, tuple((Button(label, f"1.a.{i}.mac"),) for i, label in enumerate(labels)), links
    )


def test_a_short_choice_becomes_a_template_card() -> None:
    card = card_of(_reply("请选择语言：", ["中文", "English"]), "t-1")
    assert card == {
        "card_type": "button_interaction",
        "task_id": "t-1",
        "main_title": {"title": "请选择语言："},
        "button_list": [
            {"text": "中文", "key": "1.a.0.mac"},
            {"text": "English", "key": "1.a.1.mac"},
        ],
    }
    longer = card_of(_reply("(1/10) " + "您" * 40 + "？", ["满意"]), "t-2")
    assert (
        longer is not None
        and "main_title" not in longer
        and longer["sub_title_text"].startswith("(1/10)")
    )
    links = (Link("日程", "https://x.cn/a.ics"),)
    linked = card_of(_reply("提醒", ["确认"], links), "t-3")
    assert linked is not None and linked["jump_list"] == [
        {"type": 1, "title": "日程", "url": "https://x.cn/a.ics"}
    ]


@pytest.mark.parametrize(
    "reply",
    [
        Reply("no buttons"),
        _reply("seven", [str(i) for i in range(7)]),
        _reply("a long label", ["政务服务大厅或镇街便民服务中心"]),
        _reply("字" * 113, ["满意"]),
        _reply("four links", ["ok"], tuple(Link(str(i), "https://x.cn") for i in range(4))),
    ],
)
def test_what_does_not_fit_a_card_is_numbered_text(reply: Reply) -> None:
    assert card_of(reply, "t") is None


def test_numbered_text_and_chunks() -> None:
    assert text_of(_reply("选择：", ["甲", "乙"], (Link("看", "https://x.cn"),))) == (
        "选择：\n1. 甲\n2. 乙\n看: https://x.cn"
    )
    text = "一行" * 3000 + "\nshort\n" + "x" * 10
    chunks = text_chunks(text, 2048)
    assert all(len(c.encode()) <= 2048 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")
    assert text_chunks("short") == ["short"]


def test_robot_markdown_leaves_buttons_out_and_respects_4096_bytes() -> None:
    reply = _reply("提醒", ["确认"], (Link("日程", "https://x.cn/a.ics"),))
    assert robot_markdown(reply) == "提醒\n[日程](https://x.cn/a.ics)"
    long = robot_markdown(Reply("长" * 3000))
    assert len(long.encode()) <= 4096 and long.endswith("…")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2", 1),
        ("２", 1),
        ("2.", 1),
        ("2、", 1),
        (" 满意 ", 1),
        ("满意。", 1),
        ("非常满意", 0),
        ("ENGLISH", 3),
        ("完成", 4),
        ("9", None),
        ("0", None),
        ("满", None),
        ("我很满意", None),
        ("", None),
    ],
)
def test_typed_text_picks_an_option_by_number_or_words(typed: str, expected: int | None) -> None:
    labels = ["非常满意", "满意", "✅ 基本满意", "English", "完成"]
    assert match_choice(typed, labels) == expected
    assert match_choice("基本满意", labels) == 2  # a ticked option is matched without its mark


def test_callback_xml_to_inbound() -> None:
    text = parse_message(
        "<xml><ToUserName>ww</ToUserName><FromUserName>zhang</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content><![CDATA[bind ABCD]]></Content><MsgId>123</MsgId></xml>"
    )
    inbound = to_inbound(text)
    assert inbound is not None
    assert (inbound.channel, inbound.external_id, inbound.chat_id, inbound.text) == (
        "wecom",
        "zhang",
        "zhang",
        "bind ABCD",
    )
    assert inbound.event_id == "m123" and inbound.bare_commands
    press = {
        "FromUserName": "zhang",
        "MsgType": "event",
        "Event": "template_card_event",
        "EventKey": "1.a.0.x",
        "CreateTime": "5",
        "TaskId": "t",
    }
    pressed = to_inbound(press)
    assert pressed is not None and pressed.payload == "1.a.0.x" and pressed.text is None
    again = event_id_of(press)
    assert again == pressed.event_id and again.startswith("e") and len(again) <= 64
    assert event_id_of({**press, "CreateTime": "6"}) != again
    assert event_id_of({**press, "EventKey": "1.a.1.y"}) != again
    assert to_inbound({"FromUserName": "z", "MsgType": "event", "Event": "enter_agent"}) is None
    image = to_inbound({"FromUserName": "z", "MsgType": "image", "MsgId": "9"})
    assert image is not None and image.text == ""
    for bad in ("<xml><MsgType>text</MsgType></xml>", "<notxml/>", "garbage"):
        with pytest.raises(MalformedXml):
            parse_message(bad)
