"""The survey JSON API over real HTTP against a real database."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import transaction
from storage.models import Township
from storage.models_surveys import SurveyAnswer, SurveyResponse, SurveyState
from tests.surveys.conftest import fazhi_answers, make_api_token, make_invitations

URL = "/api/v1/surveys/fazhi-2026/responses"


async def set_status(sessions: async_sessionmaker[AsyncSession], code: str, status: str) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(SurveyState).where(SurveyState.code == code).values(status=status)
        )


async def count_responses(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count(SurveyResponse.id)))).scalar_one())


async def opened(client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession]) -> None:
    """The app synced the catalog on start; open both surveys regardless of today's date."""
    await set_status(sessions, "fazhi-2026", "open")
    await set_status(sessions, "deputies-2026", "open")


async def test_list_and_definition_localized(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    listed = await (await client.get("/api/v1/surveys?lang=en")).json()
    codes = {s["code"] for s in listed}
    assert codes == {"fazhi-2026", "deputies-2026"}
    assert set(listed[0]) == {"code", "title", "opens_at", "closes_at"}

    await set_status(sessions, "deputies-2026", "closed")
    listed = await (await client.get("/api/v1/surveys")).json()
    assert [s["code"] for s in listed] == ["fazhi-2026"]

    zh = await (
        await client.get("/api/v1/surveys/fazhi-2026", headers={"Accept-Language": "zh-CN"})
    ).json()
    en = await (await client.get("/api/v1/surveys/fazhi-2026?lang=en")).json()
    assert zh["title"] == "2026年西夏区法治政府建设满意度调查"
    assert en["title"].startswith("Xixia District")
    scale = zh["questions"][0]
    assert scale["type"] == "scale"
    assert [o["label"] for o in scale["options"]] == [
        "非常满意",
        "满意",
        "基本满意",
        "不满意",
        "非常不满意",
        "不了解",  # "don't know", last; not counted in the indicator
    ]
    assert scale["options"][-1]["code"] == "unknown"
    assert {"code", "type", "text", "required", "options", "max_length", "show_if"} <= set(scale)
    missing = await client.get("/api/v1/surveys/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_created_then_replayed_with_same_idempotency_key(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    body = {"answers": fazhi_answers(), "lang": "zh_CN"}
    first = await client.post(URL, json=body, headers={"Idempotency-Key": "k-123"})
    assert first.status == 201, await first.text()
    created = await first.json()
    assert created["created"] is True
    again = await client.post(URL, json=body, headers={"Idempotency-Key": "k-123"})
    assert again.status == 200
    replay = await again.json()
    assert replay["response_id"] == created["response_id"]
    assert replay["created"] is False
    assert await count_responses(sessions) == 1
    async with sessions() as session:
        rows = (await session.execute(select(SurveyAnswer))).scalars().all()
        response = (await session.execute(select(SurveyResponse))).scalar_one()
    # one row per rating, two for the multiple choice, one for the comment
    assert len(rows) == 8 + 2 + 1
    assert {r.text for r in rows if r.question == "comment"} == {"很好"}
    assert len(response.respondent) == 64
    assert response.channel == "api"


async def test_same_browser_cannot_answer_twice(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    first = await client.post(URL, json={"answers": fazhi_answers()})
    assert first.status == 201
    second = await client.post(URL, json={"answers": fazhi_answers("very_satisfied")})
    assert second.status == 409
    error = (await second.json())["error"]
    assert error["code"] == "already_answered"
    assert error["message"] == "您已经填写过本问卷。"
    assert await count_responses(sessions) == 1


async def test_invitation_token_single_use(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    async with transaction(sessions) as session:
        session.add(Township(code="beibao", name="北堡镇", kind="town"))
    (token,) = await make_invitations(sessions, 1, township="beibao")
    ok = await client.post(URL, json={"answers": fazhi_answers(), "token": token})
    assert ok.status == 201
    assert (await ok.json())["township"] == "beibao"
    client.session.cookie_jar.clear()
    used = await client.post(URL, json={"answers": fazhi_answers(), "token": token})
    assert used.status == 409
    assert (await used.json())["error"]["code"] == "token_used"
    bogus = await client.post(
        URL + "?lang=en", json={"answers": fazhi_answers(), "token": "notarealtoken123"}
    )
    assert bogus.status == 422
    assert (await bogus.json())["error"]["fields"]["token"]["code"] == "token_invalid"
    assert await count_responses(sessions) == 1


async def test_token_of_another_survey_is_invalid(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    (token,) = await make_invitations(sessions, 1, survey="deputies-2026")
    res = await client.post(URL, json={"answers": fazhi_answers(), "token": token})
    assert res.status == 422


async def test_closed_survey_is_410(client: Any, sessions: Any) -> None:
    await set_status(sessions, "fazhi-2026", "closed")
    res = await client.post(
        URL, json={"answers": fazhi_answers()}, headers={"Accept-Language": "en"}
    )
    assert res.status == 410
    assert (await res.json())["error"] == {
        "code": "survey_closed",
        "message": "This survey is closed and takes no more answers.",
        "fields": {},
    }


async def test_idempotency_key_reused_with_other_answers_is_422(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    first = await client.post(
        URL, json={"answers": fazhi_answers()}, headers={"Idempotency-Key": "k-reuse"}
    )
    assert first.status == 201
    rid = (await first.json())["response_id"]
    same = await client.post(
        URL, json={"answers": fazhi_answers(), "lang": "en"}, headers={"Idempotency-Key": "k-reuse"}
    )
    assert same.status == 200 and (await same.json())["response_id"] == rid
    other = await client.post(
        URL,
        json={"answers": fazhi_answers("dissatisfied")},
        headers={"Idempotency-Key": "k-reuse", "Accept-Language": "en"},
    )
    assert other.status == 422, await other.text()
    assert (await other.json())["error"] == {
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was already used for a different submission."
        " Send a new key with new answers.",
        "fields": {},
    }
    zh = await client.post(
        URL,
        json={"answers": fazhi_answers("dissatisfied"), "lang": "zh_CN"},
        headers={"Idempotency-Key": "k-reuse", "Accept-Language": "zh-CN"},
    )
    assert zh.status == 422
    assert (await zh.json())["error"]["message"].startswith("此 Idempotency-Key")
    assert await count_responses(sessions) == 1
    async with sessions() as session:
        values = set((await session.execute(select(SurveyAnswer.value))).scalars())
    assert "dissatisfied" not in values


async def test_concurrent_reuse_of_a_key_stores_one(client: Any, sessions: Any) -> None:
    """Concurrent posts with one key go through the group committer (in one batch or in
    consecutive ones): exactly one is stored; a different body is refused, the same replays."""
    import asyncio

    await opened(client, sessions)

    async def post(key: str, level: str) -> tuple[int, dict[str, Any]]:
        res = await client.post(
            URL, json={"answers": fazhi_answers(level)}, headers={"Idempotency-Key": key}
        )
        return res.status, await res.json()

    differing = await asyncio.gather(
        post("race-1", "satisfied"), post("race-1", "dissatisfied"), post("race-1", "satisfied")
    )
    statuses = [s for s, _ in differing]
    assert statuses.count(201) == 1, differing
    stored = next(body for s, body in differing if s == 201)
    winner = 0 if differing[0][0] == 201 else 1 if differing[1][0] == 201 else 2
    for index, (status, body) in enumerate(differing):
        if index == winner:
            continue
        if index != 1 and winner != 1:  # same body as the stored one
            assert status == 200 and body["response_id"] == stored["response_id"]
        else:
            assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    client.session.cookie_jar.clear()  # a new browser: not "already answered"
    same = await asyncio.gather(*(post("race-2", "satisfied") for _ in range(5)))
    assert sorted(s for s, _ in same) == [200, 200, 200, 200, 201]
    assert len({body["response_id"] for _, body in same}) == 1
    assert await count_responses(sessions) == 2


async def test_group_committer_refuses_a_reused_key_in_one_batch(
    client: Any, sessions: Any, db_url: str
) -> None:
    import asyncio

    from surveys.committer import GroupCommitter
    from surveys.keys import SURVEYS
    from surveys.submission import IdempotencyKeyReused, Submission, SubmitResult
    from tests.surveys.conftest import NOW, serve_batch_writer

    await opened(client, sessions)
    survey = client.app[SURVEYS]["fazhi-2026"]
    # The server's committer shares what arrives together among its workers; one worker
    # (with the same kind of batch writer) keeps the three in one batch.
    committer = GroupCommitter(sessions, workers=1, writer=serve_batch_writer(db_url))
    committer.start()

    def item(respondent: str, level: str) -> Submission:
        return Submission(
            survey,
            fazhi_answers(level),
            respondent,
            "api",
            None,
            "zh_CN",
            NOW,
            idempotency_key="batch-key",
        )

    try:
        out = await asyncio.gather(
            committer.submit(item("a" * 64, "satisfied")),
            committer.submit(item("b" * 64, "dissatisfied")),
            committer.submit(item("c" * 64, "satisfied")),
        )
    finally:
        await committer.stop()
    assert committer.batches == 1, "expected one batch"
    assert isinstance(out[0], SubmitResult) and out[0].created
    assert isinstance(out[1], IdempotencyKeyReused)
    assert isinstance(out[2], SubmitResult) and not out[2].created
    assert out[2].response_id == out[0].response_id
    assert await count_responses(sessions) == 1


async def test_replay_still_returns_first_result_after_closing(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    body = {"answers": fazhi_answers()}
    first = await client.post(URL, json=body, headers={"Idempotency-Key": "late-retry"})
    assert first.status == 201
    await set_status(sessions, "fazhi-2026", "closed")
    retry = await client.post(URL, json=body, headers={"Idempotency-Key": "late-retry"})
    assert retry.status == 200
    assert (await retry.json())["response_id"] == (await first.json())["response_id"]


async def test_invalid_answers_get_an_error_per_field(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    answers = fazhi_answers(business_env="great", comment="长" * 301)
    del answers["public_service"]
    res = await client.post(URL, json={"answers": answers, "src": "nowhere"})
    assert res.status == 422
    fields = (await res.json())["error"]["fields"]
    assert set(fields) == {"src"}  # the link's township is checked first
    res = await client.post(URL + "?lang=en", json={"answers": answers})
    assert res.status == 422
    error = (await res.json())["error"]
    assert error["code"] == "invalid"
    fields = error["fields"]
    assert set(fields) == {"business_env", "public_service", "comment"}
    assert fields["business_env"]["code"] == "invalid_option"
    assert fields["public_service"] == {
        "code": "required",
        "message": "Please answer this question.",
        "params": {},
    }
    assert fields["comment"]["params"] == {"max_length": 300, "length": 301}
    assert "300" in fields["comment"]["message"]
    zh = await client.post(URL, json={"answers": answers})
    assert (await zh.json())["error"]["fields"]["public_service"]["message"] == "请回答此题。"
    assert await count_responses(sessions) == 0


async def test_malformed_bodies(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    not_json = await client.post(URL, data=b"{oops", headers={"Content-Type": "application/json"})
    assert not_json.status == 400
    no_answers = await client.post(URL, json={"answer": {}})
    assert no_answers.status == 422
    assert "answers" in (await no_answers.json())["error"]["fields"]
    bad_key = await client.post(
        URL, json={"answers": fazhi_answers()}, headers={"Idempotency-Key": "x" * 129}
    )
    assert bad_key.status == 422


async def test_body_over_64_kib_is_413(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    huge = json.dumps({"answers": fazhi_answers(comment="x" * 70_000)})
    res = await client.post(URL, data=huge, headers={"Content-Type": "application/json"})
    assert res.status == 413
    assert (await res.json())["error"]["code"] == "too_large"
    assert await count_responses(sessions) == 0


async def test_open_link_submissions_from_one_address_are_not_cut_at_ten(
    client: Any, sessions: Any
) -> None:
    """One network's residents share an address: a dozen answers from it all go through (the
    limits are in tests/surveys/test_open_link_limits.py)."""
    await opened(client, sessions)
    statuses = []
    for _ in range(12):
        client.session.cookie_jar.clear()
        res = await client.post(URL, json={"answers": fazhi_answers()})
        statuses.append(res.status)
    assert statuses == [201] * 12


async def test_results_need_a_bearer_token_with_a_results_role(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    results = "/api/v1/surveys/fazhi-2026/results"
    assert (await client.get(results)).status == 401
    assert (
        await client.get(results, headers={"Authorization": "Bearer pufa_nonsense"})
    ).status == 401
    coordinator = await make_api_token(sessions, "coordinator")
    res = await client.get(results, headers={"Authorization": f"Bearer {coordinator}"})
    assert res.status == 403


async def test_results_per_indicator_and_by_township(client: Any, sessions: Any) -> None:
    await opened(client, sessions)
    async with transaction(sessions) as session:
        session.add_all(
            [
                Township(code="beibao", name="北堡镇", kind="town"),
                Township(code="ningmeng", name="宁朔街道", kind="street"),
            ]
        )
    tokens_a = await make_invitations(sessions, 3, township="beibao")
    tokens_b = await make_invitations(sessions, 2, township="ningmeng")
    levels = ["very_satisfied", "satisfied", "dissatisfied", "fairly_satisfied", "satisfied"]
    for token, level in zip(tokens_a + tokens_b, levels, strict=True):
        res = await client.post(URL, json={"answers": fazhi_answers(level), "token": token})
        assert res.status == 201
    analyst = await make_api_token(sessions, "analyst")
    res = await client.get(
        "/api/v1/surveys/fazhi-2026/results?by=township&lang=en",
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert res.status == 200
    body = await res.json()
    assert body["survey"] == "fazhi-2026"
    info = next(i for i in body["indicators"] if i["code"] == "info_disclosure")
    assert (info["n"], info["satisfied"], info["target"]) == (5, 4, 0.9)
    assert info["rate"] == 0.8
    assert info["verdict"] == "inconclusive"
    assert 0 < info["ci_low"] < 0.8 < info["ci_high"] <= 1
    assert info["title"].startswith("Overall public satisfaction")
    assert info["weighted_index"] == (100 + 80 + 40 + 60 + 80) / 5
    law = next(i for i in body["indicators"] if i["code"] == "law_enforcement")
    assert law["target"] is None and law["verdict"] == "inconclusive"
    towns = {t["township"]: t for t in body["by"]["township"]}
    assert set(towns) == {"beibao", "ningmeng"}
    assert towns["beibao"]["township_name"] == "北堡镇"
    beibao_info = next(i for i in towns["beibao"]["indicators"] if i["code"] == "info_disclosure")
    assert (beibao_info["n"], beibao_info["satisfied"]) == (3, 2)

    staff = await make_api_token(sessions, "staff", township="ningmeng")
    res = await client.get(
        "/api/v1/surveys/fazhi-2026/results", headers={"Authorization": f"Bearer {staff}"}
    )
    own = next(i for i in (await res.json())["indicators"] if i["code"] == "info_disclosure")
    assert (own["n"], own["satisfied"]) == (2, 2)


async def test_openapi_document_matches_the_routes(client: Any) -> None:
    """Every /api/v1 route the app serves (every feature's) is described, and nothing else."""
    res = await client.get("/api/v1/openapi.json")
    assert res.status == 200
    doc = await res.json()
    assert doc["openapi"].startswith("3.")
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1")
        and route.method != "HEAD"
    }
    assert described == served
    assert {
        ("POST", "/api/v1/surveys/{survey}/responses"),
        ("GET", "/api/v1/openapi.json"),
    } <= served
    assert ("GET", "/api/v1/volunteers/coverage") in served
    post = doc["paths"]["/api/v1/surveys/{survey}/responses"]["post"]
    assert {"200", "201", "409", "410", "413", "422"} <= set(post["responses"])
    refs = {
        value.rsplit("/", 1)[1]
        for value in _walk(doc["paths"])
        if isinstance(value, str) and value.startswith("#/components/schemas/")
    }
    assert refs <= set(doc["components"]["schemas"])  # every $ref resolves


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    else:
        yield node


async def test_concurrent_submissions_share_commits(client: Any, sessions: Any) -> None:
    import asyncio

    from surveys.keys import COMMITTER

    await opened(client, sessions)
    tokens = await make_invitations(sessions, 60)
    committer = client.app[COMMITTER]
    before = committer.batches

    async def one(token: str) -> int:
        res = await client.post(
            URL,
            json={"answers": fazhi_answers(), "token": token},
            headers={"Idempotency-Key": token},
        )
        return res.status

    statuses = await asyncio.gather(*(one(t) for t in tokens))
    assert statuses == [201] * 60
    assert await count_responses(sessions) == 60
    batches = committer.batches - before
    assert batches < 60, "concurrent requests should be committed together"
    # every 2xx was sent after its commit: a fresh connection sees all of them
    replays = await asyncio.gather(*(one(t) for t in tokens[:5]))
    assert replays == [200] * 5
