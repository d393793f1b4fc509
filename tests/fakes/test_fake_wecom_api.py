"""The fake WeCom API answers like WeCom, so the WeCom tests mean something."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fakes.wecom_api import FakeWeComApi


async def _call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> dict[str, Any]:
    async with http.request(method, url, **kw) as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


async def test_tokens_messages_cards_and_robots() -> None:
    async with FakeWeComApi() as fake, aiohttp.ClientSession() as http:
        base = f"{fake.api_base}/cgi-bin"
        bad = await _call(
            http, "GET", f"{base}/gettoken", params={"corpid": fake.corp_id, "corpsecret": "x"}
        )
        assert bad["errcode"] == 40001
        ok = await _call(
            http,
            "GET",
            f"{base}/gettoken",
            params={"corpid": fake.corp_id, "corpsecret": fake.secret},
        )
        token = ok["access_token"]
        again = await _call(
            http,
            "GET",
            f"{base}/gettoken",
            params={"corpid": fake.corp_id, "corpsecret": fake.secret},
        )
        assert again["access_token"] == token and ok["expires_in"] == 7200

        send = f"{base}/message/send"
        text = {
            "touser": "u",
            "agentid": fake.agent_id,
            "msgtype": "text",
            "text": {"content": "hi"},
        }
        assert (await _call(http, "POST", send, json=text))["errcode"] == 41001
        assert (await _call(http, "POST", send, params={"access_token": "nope"}, json=text))[
            "errcode"
        ] == 40014
        assert (await _call(http, "POST", send, params={"access_token": token}, json=text))[
            "errcode"
        ] == 0
        too_long = {**text, "text": {"content": "字" * 700}}
        assert (await _call(http, "POST", send, params={"access_token": token}, json=too_long))[
            "errcode"
        ] == 45002
        card = {
            "touser": "u",
            "agentid": fake.agent_id,
            "msgtype": "template_card",
            "template_card": {
                "card_type": "button_interaction",
                "task_id": "t1",
                "main_title": {"title": "?"},
                "button_list": [{"text": "a", "key": "k"}],
            },
        }
        first = await _call(http, "POST", send, params={"access_token": token}, json=card)
        assert first["errcode"] == 0 and first["response_code"]
        assert (await _call(http, "POST", send, params={"access_token": token}, json=card))[
            "errcode"
        ] == 40058
        seven = {
            **card,
            "template_card": {
                **card["template_card"],
                "task_id": "t2",
                "button_list": [{"text": "a", "key": "k"}] * 7,
            },
        }
        assert (await _call(http, "POST", send, params={"access_token": token}, json=seven))[
            "errcode"
        ] == 40058
        fake.expire_tokens()
        assert (await _call(http, "POST", send, params={"access_token": token}, json=text))[
            "errcode"
        ] == 42001
        fake.fail_next("message/send", 45009)
        fresh = (
            await _call(
                http,
                "GET",
                f"{base}/gettoken",
                params={"corpid": fake.corp_id, "corpsecret": fake.secret},
            )
        )["access_token"]
        assert fresh != token
        assert (await _call(http, "POST", send, params={"access_token": fresh}, json=text))[
            "errcode"
        ] == 45009
        assert (await _call(http, "POST", send, params={"access_token": fresh}, json=text))[
            "errcode"
        ] == 0
        assert [m["msgtype"] for m in fake.messages_to("u")] == ["text", "template_card", "text"]

        robot = {"msgtype": "markdown", "markdown": {"content": "**hi**"}}
        assert (
            await _call(http, "POST", f"{base}/webhook/send", params={"key": "none"}, json=robot)
        )["errcode"] == 93000
        url = fake.add_robot("k1")
        codes = [(await _call(http, "POST", url, json=robot))["errcode"] for _ in range(21)]
        assert codes == [0] * 20 + [45009]
        assert len(fake.robot_messages["k1"]) == 20
