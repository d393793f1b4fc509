"""The console's pages over real HTTP against a real database: the dashboard's figures (real
responses only unless asked), residents' text shown escaped, opening and closing a survey,
invitation batches and their CSV, the poster, the outbox retry, and the audit log's filters."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from core.clock import utcnow
from storage.db import transaction
from storage.models import AuditLog
from storage.models_outbox import OutboxMessage
from storage.models_surveys import SurveyInvitation, SurveyState
from surveys.results import compute_results
from surveys.schema import load_catalog
from tests.console.conftest import add_townships, answer, csrf_of, logged_in, make_account
from tests.helpers import seed_db
from tests.surveys.conftest import fazhi_answers
from tests.surveys.test_api import opened

HOSTILE = '<script>alert(1)</script><b onmouseover="x()">粗体</b> & "引号"'


async def _indicator_cells(client: TestClient[Any, Any], query: str = "") -> list[list[str]]:
    html = await (await client.get("/admin/dashboard" + query)).text()
    body = html.split('<table class="data" id="indicators">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], flags=re.S)
    return [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in rows
    ]


def _total(html: str) -> int:
    return int(html.split('id="total-responses">', 1)[1].split("<", 1)[0])


async def test_dashboard_shows_the_real_figures_and_leaves_out_sample_answers(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await seed_db(sessions, demo=True)  # 420 sample answers to fazhi-2026
    await opened(client, sessions)
    await add_townships(sessions, ZBP2="镇北堡镇（正式）")
    await make_account(sessions, "analyst", role="analyst")
    await answer(client, src="ZBP2")
    await answer(client, src="ZBP2", business_env="dissatisfied")
    await answer(client, business_env="very_dissatisfied", public_service="dissatisfied")
    await logged_in(client, "analyst")

    survey = load_catalog()["fazhi-2026"]
    async with sessions() as session:
        real = await compute_results(session, survey, include_sample=False)
        every = await compute_results(session, survey, include_sample=True)
    assert every.indicators[0].result.n > 400  # the demo data is there

    page = await (await client.get("/admin/dashboard")).text()
    assert _total(page) == 3
    assert "不是正式结果" not in page
    cells = await _indicator_cells(client)
    for row, cell in zip(real.indicators, cells, strict=True):
        assert cell[0] == row.title
        assert cell[1] == str(row.result.n) == "3"
    assert cells[0][2] == "33.3%"  # one satisfied of three on the business environment
    assert cells[1][2] == "66.7%"

    sampled = await (await client.get("/admin/dashboard?sample=1")).text()
    assert _total(sampled) == 423
    assert "不是正式结果" in sampled  # says so when sample answers are in
    cells = await _indicator_cells(client, "?sample=1")
    assert cells[0][1] == str(every.indicators[0].result.n)

    exported = await (await client.get("/admin/dashboard/results.json")).json()
    assert exported["include_sample"] is False
    assert exported["indicators"][0]["n"] == 3
    assert exported["indicators"][0]["satisfied"] == real.indicators[0].result.satisfied
    with_sample = await (await client.get("/admin/dashboard/results.json?sample=1")).json()
    assert with_sample["include_sample"] is True
    assert with_sample["indicators"][0]["n"] == every.indicators[0].result.n

    township = await (await client.get("/admin/dashboard?township=ZBP2")).text()
    assert _total(township) == 2
    xlsx = await client.get("/admin/dashboard/results.xlsx")
    assert xlsx.status == 200
    assert (await xlsx.read())[:2] == b"PK"
    assert "attachment" in xlsx.headers["Content-Disposition"]
    unknown = await client.get("/admin/dashboard?township=NOSUCH")
    assert unknown.status == 404
    assert (await client.get("/admin/dashboard?survey=nosuch")).status == 404


async def test_staff_see_their_own_township_only(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await opened(client, sessions)
    await add_townships(sessions, ZBP="镇北堡镇", XJZ="兴泾镇")
    await make_account(sessions, "wang", role="staff", township="ZBP")
    await answer(client, src="ZBP", comment="镇北堡镇的留言")
    await answer(client, src="XJZ", comment="兴泾镇的留言")
    await answer(client, src="XJZ")
    await logged_in(client, "wang")
    page = await (await client.get("/admin/dashboard")).text()
    assert _total(page) == 1
    assert "镇北堡镇的留言" in page and "兴泾镇的留言" not in page
    assert 'name="township"' not in page  # no township filter to pick
    exported = await (await client.get("/admin/dashboard/results.json?by=township")).json()
    assert [group["township"] for group in exported["by"]["township"]] == ["ZBP"]
    assert exported["indicators"][0]["n"] == 1
    listed = await (await client.get("/admin/surveys")).text()
    row = listed.split('id="survey-fazhi-2026"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">1</td>' in row  # their township's responses, not the district's


async def test_text_typed_by_residents_is_shown_escaped(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await opened(client, sessions)
    await add_townships(sessions, ZBP="镇北堡镇")
    await make_account(sessions, "ops")
    await answer(client, src="ZBP", comment=HOSTILE)
    await logged_in(client, "ops")
    page = await (await client.get("/admin/dashboard")).text()
    assert "<script>alert(1)</script>" not in page
    assert "<b onmouseover" not in page
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b onmouseover=&#34;x()&#34;&gt;粗体&lt;/b&gt;"
        " &amp; &#34;引号&#34;" in page
    )
    # An account name or an audit entry is text too.
    await make_account(sessions, "<i>eve</i>", role="analyst")
    client.session.cookie_jar.clear()
    await logged_in(client, "<i>eve</i>")
    assert "&lt;i&gt;eve&lt;/i&gt;" in await (await client.get("/admin/dashboard")).text()
    client.session.cookie_jar.clear()
    await logged_in(client, "ops")
    audit = await (await client.get("/admin/audit")).text()
    assert "console:&lt;i&gt;eve&lt;/i&gt;" in audit and "<i>eve</i>" not in audit


async def test_open_and_close_a_survey_with_the_change_in_the_audit_log(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    await opened(client, sessions)
    await make_account(sessions, "ops")
    await logged_in(client, "ops")
    page = await (await client.get("/admin/surveys")).text()
    token = csrf_of(page)
    closed = await client.post(
        "/admin/surveys/fazhi-2026/status", data={"csrf_token": token, "status": "closed"}
    )
    assert "问卷fazhi-2026已关闭" in await closed.text()  # the flash message, once
    assert "问卷fazhi-2026已关闭" not in await (await client.get("/admin/surveys")).text()
    # Closed: residents' answers are refused from now on.
    async with aiohttp.ClientSession() as phone:
        refused = await phone.post(
            str(client.make_url("/api/v1/surveys/fazhi-2026/responses")),
            json={"answers": {}},
        )
        assert refused.status in (410, 422)
    reopened = await client.post(
        "/admin/surveys/fazhi-2026/status", data={"csrf_token": token, "status": "scheduled"}
    )
    assert reopened.status == 200
    bad = await client.post(
        "/admin/surveys/fazhi-2026/status", data={"csrf_token": token, "status": "deleted"}
    )
    assert bad.status == 422
    async with sessions() as session:
        state = await session.get(SurveyState, "fazhi-2026")
        entries = (await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
    assert state is not None and state.status == "scheduled"
    changes = [
        (e.actor, e.action, e.subject, e.detail)
        for e in entries
        if not e.action.startswith("console.")
    ]
    assert changes == [
        (
            "console:ops",
            "survey.closed",
            "fazhi-2026",
            {"before": {"status": "open"}, "after": {"status": "closed"}},
        ),
        (
            "console:ops",
            "survey.scheduled",
            "fazhi-2026",
            {"before": {"status": "closed"}, "after": {"status": "scheduled"}},
        ),
    ]


async def test_invitation_batch_downloads_working_tokens_and_the_poster_prints(
    client: TestClient[Any, Any], sessions: Any, settings: Any
) -> None:
    await opened(client, sessions)
    await add_townships(sessions, ZBP="镇北堡镇")
    await make_account(sessions, "wang", role="staff", township="ZBP")
    await logged_in(client, "wang")
    page = await (await client.get("/admin/surveys/fazhi-2026")).text()
    made = await client.post(
        "/admin/surveys/fazhi-2026/invitations",
        data={"csrf_token": csrf_of(page), "township": "ZBP", "count": "3"},
    )
    assert made.status == 200
    assert made.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in made.headers["Content-Disposition"]
    text = (await made.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and set(rows[0]) == {"token", "url"}
    assert rows[0]["url"] == f"{settings.public_url}/s/fazhi-2026?t={rows[0]['token']}"

    # A token from the CSV answers the survey, counted for the township.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as phone:
        response = await phone.post(
            str(client.make_url("/api/v1/surveys/fazhi-2026/responses")),
            json={"answers": fazhi_answers(), "token": rows[0]["token"]},
        )
        assert response.status == 201, await response.text()
        assert (await response.json())["township"] == "ZBP"
    listed = await (await client.get("/admin/surveys/fazhi-2026")).text()
    batch = listed.split('id="batches"', 1)[1]
    assert '<td class="num">3</td><td class="num">1</td>' in batch
    async with sessions() as session:
        stored = (await session.execute(select(SurveyInvitation.token_hash))).scalars().all()
        audit = (
            await session.execute(select(AuditLog).where(AuditLog.action == "survey.invite"))
        ).scalar_one()
    assert len(stored) == 3 and all(rows[0]["token"] not in h for h in stored)
    assert audit.actor == "console:wang" and audit.detail["after"]["count"] == 3

    too_many = await client.post(
        "/admin/surveys/fazhi-2026/invitations",
        data={"csrf_token": csrf_of(page), "township": "ZBP", "count": "999999"},
    )
    assert "1至5000" in await too_many.text()

    poster = await client.get("/admin/surveys/fazhi-2026/poster/ZBP")
    html = await poster.text()
    assert poster.status == 200
    assert "<svg" in html and 'class="qrline"' in html
    assert f"{settings.public_url}/s/fazhi-2026?src=ZBP" in html
    assert "镇北堡镇" in html and "2026年西夏区法治政府建设满意度调查" in html
    assert "约需1分钟" in html
    # The deputies' survey is by invitation only: no public poster for it.
    assert (await client.get("/admin/surveys/deputies-2026/poster/ZBP")).status == 404


async def test_outbox_lists_and_retries_failed_messages(
    client: TestClient[Any, Any], sessions: Any
) -> None:
    now = utcnow()
    async with transaction(sessions) as session:
        for n, status in enumerate(("failed", "failed", "pending", "sent")):
            session.add(
                OutboxMessage(
                    dedupe_key=f"m{n}",
                    channel="telegram",
                    recipient=str(100 + n),
                    kind="reminder",
                    body={"text": f"第{n}条提醒 <b>"},
                    status=status,
                    attempts=5 if status == "failed" else 0,
                    next_attempt_at=now - timedelta(hours=1),
                    last_error="Forbidden: bot was blocked by the user" if n < 2 else None,
                )
            )
    await make_account(sessions, "coord", role="coordinator")
    await logged_in(client, "coord")
    page = await (await client.get("/admin/outbox")).text()
    assert page.count("bot was blocked by the user") == 2
    assert "第2条提醒 &lt;b&gt;" in page and "第3条提醒" not in page  # sent ones are not listed
    response = await client.post(
        "/admin/outbox/retry", data={"csrf_token": csrf_of(page), "id": ["1", "3"]}
    )
    assert "1条发送失败的消息将重新发送" in await response.text()
    async with sessions() as session:
        statuses = dict(
            (await session.execute(select(OutboxMessage.id, OutboxMessage.status))).all()
        )
        audit = (
            await session.execute(select(AuditLog).where(AuditLog.action == "outbox.retry"))
        ).scalar_one()
    assert statuses == {1: "pending", 2: "failed", 3: "pending", 4: "sent"}
    assert audit.actor == "console:coord"
    assert audit.detail == {
        "before": {"status": "failed", "ids": [1]},
        "after": {"status": "pending", "ids": [1]},
    }


async def test_audit_log_filters(client: TestClient[Any, Any], sessions: Any) -> None:
    from storage.audit import record

    async with transaction(sessions) as session:
        record(session, "cli", "survey.open", "fazhi-2026", before={"status": "closed"})
        record(session, "console:li", "survey.closed", "deputies-2026")
        old = record(session, "console:li", "outbox.retry", "7")
        old.at = utcnow() - timedelta(days=40)
    await make_account(sessions, "ops")
    await logged_in(client, "ops")

    async def rows(query: str) -> list[str]:
        html = await (await client.get("/admin/audit" + query)).text()
        body = html.split('id="audit"', 1)[1].split("</tbody>", 1)[0]
        return [cell.split("</code>")[0] for cell in body.split("<td><code>")[1::4]]

    assert await rows("") == [
        "console.login",
        "console.account.create",
        "outbox.retry",
        "survey.closed",
        "survey.open",
    ]
    assert await rows("?action=survey.open") == ["survey.open"]
    assert await rows("?actor=console:li") == ["outbox.retry", "survey.closed"]
    assert await rows("?subject=deputies") == ["survey.closed"]
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    assert "outbox.retry" not in await rows(f"?from={since}")
    until = (utcnow() - timedelta(days=30)).date().isoformat()
    assert await rows(f"?to={until}") == ["outbox.retry"]
    page = await (await client.get("/admin/audit?action=survey.open")).text()
    assert json.dumps({"status": "closed"}, ensure_ascii=False) in page.replace("&#34;", '"')
