"""Replies with a lead: one message where the channel edits, two where it cannot."""

from __future__ import annotations

from core.messages import Button, Reply, render_numbered, separate_leads

OPTIONS = ((Button("满意", "p1"),), (Button("不满意", "p2"),))


def test_a_send_reply_s_lead_becomes_a_message_before_it() -> None:
    question = Reply("(1/2) 是否满意？", OPTIONS, lead="标题\n\n说明")
    plain = Reply("另一条")
    assert separate_leads([question, plain]) == [
        Reply("标题\n\n说明"),
        Reply("(1/2) 是否满意？", OPTIONS),
        plain,
    ]


def test_an_edit_s_lead_is_dropped_where_edits_arrive_as_new_messages() -> None:
    answered = Reply("(1/2) 是否满意？\n✓ 满意", kind="edit_source", lead="标题\n\n说明")
    assert separate_leads([answered]) == [Reply("(1/2) 是否满意？\n✓ 满意", kind="edit_source")]


def test_one_message_holds_the_lead_above_the_text_and_options() -> None:
    question = Reply("(1/2) 是否满意？", OPTIONS, lead="标题")
    assert question.full_text == "标题\n\n(1/2) 是否满意？"
    assert render_numbered(question) == "标题\n\n(1/2) 是否满意？\n1. 满意\n2. 不满意"
    assert Reply("无").full_text == "无"
