"""The aiohttp app over real HTTP: health, metrics, JSON errors."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def test_healthz_ok(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "db": "ok"}


async def test_healthz_503_when_database_unreachable(make_settings: Any) -> None:
    from aiohttp.test_utils import TestServer

    from bot.app import create_app

    settings = make_settings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", auto_migrate=False
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as dead_client:
        response = await dead_client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["db"] == "unreachable"


async def test_metrics_count_requests(client: TestClient[Any, Any]) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status == 200
    body = await response.text()
    assert 'pufa_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in body


async def test_errors_are_localized_json(client: TestClient[Any, Any]) -> None:
    zh = await client.get("/no/such/route", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.status == 404
    assert (await zh.json())["error"] == {"code": "not_found", "message": "未找到。", "fields": {}}
    en = await client.get("/no/such/route?lang=en")
    assert (await en.json())["error"]["message"] == "Not found."
    wrong = await client.post("/healthz")
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"
