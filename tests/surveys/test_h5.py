"""The mobile survey pages over real HTTP (no JavaScript involved)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import func, select

from storage.models_surveys import SurveyAnswer, SurveyResponse
from tests.surveys.conftest import fazhi_answers, make_invitations
from tests.surveys.test_api import opened, set_status


class _Form(HTMLParser):
    """Collects inputs, labels and hidden fields of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "textarea"):
            self.inputs.append(a)
            if a.get("type") == "hidden":
                self.hidden[a["name"] or ""] = a.get("value") or ""
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"] or "")


def form_fields(answers: dict[str, Any], hidden: dict[str, str]) -> list[tuple[str, str]]:
    fields = list(hidden.items())
    for code, value in answers.items():
        if isinstance(value, list):
            fields.extend((code, v) for v in value)
        elif value is not None:
            fields.append((code, value))
    return fields


async def test_page_is_small_accessible_and_localized(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    res = await client.get("/s/fazhi-2026")
    assert res.status == 200
    html = await res.text()
    assert len(html.encode()) < 60 * 1024
    assert '<html lang="zh-CN">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "<script" not in html
    assert "2026年西夏区法治政府建设满意度调查" in html
    assert "非常满意" in html and "提交" in html
    page = _Form()
    page.feed(html)
    visible = [i for i in page.inputs if i.get("type") != "hidden"]
    assert len(visible) == 8 * (5 + 1) + 6 + 1  # five levels and "don't know" per rating
    assert all(i["id"] in page.label_for for i in visible), "every input has its label"
    assert page.hidden["idem"]
    en = await (await client.get("/s/fazhi-2026?lang=en")).text()
    assert '<html lang="en">' in en and "Very satisfied" in en and "Submit" in en


async def test_validation_errors_keep_answers(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    page = _Form()
    page.feed(await (await client.get("/s/fazhi-2026?src=")).text())
    answers = fazhi_answers("very_satisfied", comment="路灯修得很快")
    del answers["oversight"]
    res = await client.post(
        "/s/fazhi-2026", data=form_fields(answers, page.hidden), allow_redirects=False
    )
    assert res.status == 422
    html = await res.text()
    assert "请回答此题。" in html
    assert 'aria-invalid="true"' in html or 'aria-describedby="q-oversight-err"' in html
    assert "路灯修得很快" in html
    checked = re.findall(r'name="business_env" value="(\w+)" checked', html)
    assert checked == ["very_satisfied"]
    assert re.findall(r'name="channels" value="(\w+)" checked', html) == ["mobile", "website"]
    async with sessions() as session:
        assert (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one() == 0


async def test_submit_redirects_to_thanks_and_double_submit_counts_once(
    client: Any, sessions: Any
) -> None:
    await opened(client, sessions)
    page = _Form()
    page.feed(await (await client.get("/s/fazhi-2026?lang=en")).text())
    fields = form_fields(fazhi_answers(), page.hidden)
    res = await client.post("/s/fazhi-2026", data=fields, allow_redirects=False)
    assert res.status == 303
    assert res.headers["Location"] == "/s/fazhi-2026/thanks?lang=en"
    again = await client.post("/s/fazhi-2026", data=fields, allow_redirects=False)
    assert again.status == 303  # the same form posted twice is one response
    thanks = await client.get(res.headers["Location"])
    assert "Thank you!" in await thanks.text()
    async with sessions() as session:
        rows = (await session.execute(select(SurveyResponse))).scalars().all()
    assert len(rows) == 1 and rows[0].channel == "h5" and rows[0].locale == "en"


async def test_form_sent_again_with_changed_answers_keeps_the_first(
    client: Any, sessions: Any
) -> None:
    await opened(client, sessions)
    page = _Form()
    page.feed(await (await client.get("/s/fazhi-2026?lang=en")).text())
    res = await client.post(
        "/s/fazhi-2026", data=form_fields(fazhi_answers(), page.hidden), allow_redirects=False
    )
    assert res.status == 303
    changed = form_fields(fazhi_answers("dissatisfied"), page.hidden)  # back button, edited
    again = await client.post("/s/fazhi-2026", data=changed, allow_redirects=False)
    assert again.status == 409
    assert "You have already answered" in await again.text()
    async with sessions() as session:
        values = set((await session.execute(select(SurveyAnswer.value))).scalars())
        n = (await session.execute(select(func.count(SurveyResponse.id)))).scalar_one()
    assert n == 1 and "dissatisfied" not in values


async def test_closed_used_and_invalid_pages(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    (token,) = await make_invitations(sessions, 1)
    page = _Form()
    page.feed(await (await client.get(f"/s/fazhi-2026?t={token}")).text())
    assert page.hidden["t"] == token
    ok = await client.post(
        "/s/fazhi-2026", data=form_fields(fazhi_answers(), page.hidden), allow_redirects=False
    )
    assert ok.status == 303
    used = await client.get(f"/s/fazhi-2026?t={token}")
    assert used.status == 409
    assert "此邀请已使用" in await used.text()
    invalid = await client.get("/s/fazhi-2026?t=not-a-real-token&lang=en")
    assert invalid.status == 404
    assert "This invitation link is not valid" in await invalid.text()
    missing = await client.get("/s/no-such-survey")
    assert missing.status == 404 and "未找到该问卷" in await missing.text()
    await set_status(sessions, "fazhi-2026", "closed")
    closed = await client.get("/s/fazhi-2026")
    assert closed.status == 410
    assert "本问卷已结束" in await closed.text()


async def test_dont_know_is_offered_last_set_apart_and_stored(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    html = await (await client.get("/s/fazhi-2026")).text()
    for code in ("business_env", "major_decisions", "rule_of_law_overall"):
        values = re.findall(rf'name="{code}" value="(\w+)"', html)
        assert values == [
            "very_satisfied",
            "satisfied",
            "fairly_satisfied",
            "dissatisfied",
            "very_dissatisfied",
            "unknown",
        ]
    # the label is shown, and only "don't know" carries the class that sets it apart
    assert html.count("不了解") == 8
    assert html.count("choice-unknown") == 8 + 1  # eight options and one CSS rule
    assert re.search(r'class="choice choice-unknown" for="q-major_decisions-6"', html)
    en = await (await client.get("/s/fazhi-2026?lang=en")).text()
    assert en.count("Don&#39;t know") == 8 or en.count("Don't know") == 8
    page = _Form()
    page.feed(html)
    answers = fazhi_answers(major_decisions="unknown")
    res = await client.post(
        "/s/fazhi-2026", data=form_fields(answers, page.hidden), allow_redirects=False
    )
    assert res.status == 303
    async with sessions() as session:
        stored = (
            await session.execute(
                select(SurveyAnswer.value).where(SurveyAnswer.question == "major_decisions")
            )
        ).scalar_one()
    assert stored == "unknown"


async def test_opening_the_page_after_answering_says_so_at_once(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    first = await client.get("/s/fazhi-2026")
    assert "pufa_rid" in first.cookies, "the form gives the browser its respondent id"
    page = _Form()
    page.feed(await first.text())
    res = await client.post(
        "/s/fazhi-2026", data=form_fields(fazhi_answers(), page.hidden), allow_redirects=False
    )
    assert res.status == 303
    again = await client.get("/s/fazhi-2026")
    html = await again.text()
    assert "您已经填写过" in html
    assert 'name="business_env"' not in html, "no blank form to fill in again"
    client.session.cookie_jar.clear()  # another browser gets the form
    other = await client.get("/s/fazhi-2026")
    assert 'name="business_env"' in await other.text()


async def test_oversize_form_gets_the_localized_page(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    page = _Form()
    page.feed(await (await client.get("/s/fazhi-2026")).text())
    fields = form_fields(fazhi_answers(comment="长" * 8000), page.hidden)
    res = await client.post("/s/fazhi-2026", data=fields, allow_redirects=False)
    assert res.status == 413
    assert res.headers["Content-Type"].startswith("text/html")
    html = await res.text()
    assert '<html lang="zh-CN">' in html and "您的回答太长" in html
    en = await client.post("/s/fazhi-2026?lang=en", data=fields, allow_redirects=False)
    assert en.status == 413 and "too long to send" in await en.text()


async def test_optional_questions_are_marked_once(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    html = await (await client.get("/s/fazhi-2026")).text()
    assert html.count("选填") == 2  # channels and comment, each once
    en = await (await client.get("/s/fazhi-2026?lang=en")).text()
    assert en.lower().count("optional") == 2


async def test_thanks_page_claims_saved_answers_only_after_a_submission(
    client: Any, sessions: Any
) -> None:
    await opened(client, sessions)
    direct = await client.get("/s/fazhi-2026/thanks")
    text = await direct.text()
    assert "已保存" not in text and "本浏览器刚才没有提交答卷" in text
    assert 'href="/s/fazhi-2026"' in text
    page = _Form()
    page.feed(await (await client.get("/s/fazhi-2026")).text())
    res = await client.post(
        "/s/fazhi-2026", data=form_fields(fazhi_answers(), page.hidden), allow_redirects=False
    )
    thanks = await client.get(res.headers["Location"])
    assert "已保存" in await thanks.text()
    # the proof is bound to the survey: another survey's thanks page does not claim it
    other = await client.get("/s/deputies-2026/thanks")
    assert "已保存" not in await other.text()
    # a made-up marker is not believed
    client.session.cookie_jar.clear()
    forged = await client.get(
        "/s/fazhi-2026/thanks", headers={"Cookie": "pufa_saved=9999999999.0000"}
    )
    assert "已保存" not in await forged.text()


async def test_submissions_are_counted_in_metrics(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    page = _Form()
    page.feed(await (await client.get("/s/fazhi-2026")).text())
    await client.post(
        "/s/fazhi-2026", data=form_fields(fazhi_answers(), page.hidden), allow_redirects=False
    )
    client.session.cookie_jar.clear()
    await client.post("/api/v1/surveys/fazhi-2026/responses", json={"answers": fazhi_answers()})
    await client.post("/api/v1/surveys/fazhi-2026/responses", json={"answers": fazhi_answers()})
    body = await (await client.get("/metrics")).text()
    assert 'pufa_survey_responses_total{channel="h5",survey="fazhi-2026"} 1.0' in body
    assert 'pufa_survey_responses_total{channel="api",survey="fazhi-2026"} 1.0' in body


async def test_follow_up_questions_leave_no_gap_in_the_numbering(
    client: Any, sessions: Any
) -> None:
    await opened(client, sessions)
    (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
    html = await (await client.get(f"/s/deputies-2026?t={token}")).text()
    assert re.findall(r'<span class="n">([\d.]+)\.</span>', html) == ["1", "2", "2.1", "3"]
    assert "在第2题中选择" in html or "第2题" in html  # the fallback hint names question 2
