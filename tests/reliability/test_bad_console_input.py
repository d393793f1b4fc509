"""Hostile input in every form of the web console, field by field, over real HTTP.

An administrator's browser is simulated: every console page reachable from the navigation (and
the pages they link to) is opened, every ``POST`` form on them is found, and each form is sent
again and again with one field at a time replaced by hostile bytes (invalid UTF-8, NUL, an
oversize value, HTML and SQL, a huge number) while the others keep the values the page gave
them. Every answer must be a 2xx, a redirect or a 4xx (never a 5xx), nothing already saved may
be lost, every page must still open, and no hostile markup may come back unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote_from_bytes, urljoin, urlsplit

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from core.clock import utcnow
from storage.db import transaction
from storage.models import AuditLog
from storage.models_outbox import OutboxMessage
from storage.models_surveys import SurveyAnswer, SurveyResponse
from tests.console.conftest import local_day, logged_in, make_account, schedule
from tests.helpers import seed_db
from tests.reliability.counts import COUNTS

MARK = "<script>pufa_hostile()</script>"
"""Injected into free text; must never come back unescaped."""

HOSTILE_VALUES: dict[str, bytes] = {
    "invalid UTF-8": b"\xff\xfe\xc3\x28",
    "NUL": b"a\x00b",
    "oversize": b"x" * (70 * 1024),
    "HTML": MARK.encode(),
    "SQL": b"1' OR '1'='1'; DROP TABLE survey_response; --",
    "huge number": b"9" * 400,
    "negative": b"-1",
    "superscript digit": "²".encode(),
    "Ethiopic digit": "፩".encode(),
    "empty": b"",
}
PATH_IDS = {
    "huge id": "9" * 40,
    "64-bit overflow id": str(2**63),
    "superscript digit id": "%C2%B2",
    "NUL id": "1%00",
    "zero id": "0",
}
SKIP_ACTIONS = ("/admin/logout", "/admin/lang")
MAX_PAGES = 40


@dataclass
class Form:
    """A ``POST`` form as the page gave it: its action and its fields' values."""

    page: str
    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    multipart: bool = False
    method: str = "post"


class _Forms(HTMLParser):
    """The ``POST`` forms and the console links of one page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_value: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "option":
            if self._select is not None and (self._select_value is None or "selected" in a):
                self._select_value = a.get("value", "")  # as a browser sends it
        elif tag == "a" and a.get("href"):
            self.links.append(urljoin(self.page, a["href"]))
        elif tag == "form":
            self._form = Form(
                self.page,
                urljoin(self.page, a.get("action") or self.page),
                multipart="multipart" in a.get("enctype", ""),
                method=a.get("method", "get").lower(),
            )
            self.forms.append(self._form)
        elif self._form is None or "name" not in a or "disabled" in a:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "file":
                self._form.files.append(a["name"])
            elif kind in ("checkbox", "radio"):
                if "checked" in a or not any(n == a["name"] for n, _ in self._form.fields):
                    self._form.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "reset", "image"):
                self._form.fields.append((a["name"], a.get("value", "") or _filler(a)))
        elif tag == "select":
            self._select, self._select_value = a["name"], None
        elif tag == "textarea":
            self._textarea = a["name"]
            self._form.fields.append((a["name"], "普法 test"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select" and self._form is not None and self._select is not None:
            self._form.fields.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _filler(attrs: dict[str, str]) -> str:
    """A plausible value for an empty field of this type (so the other fields are valid)."""
    kind = attrs.get("type", "text").lower()
    if kind == "number":
        return attrs.get("min") or "1"
    if kind == "datetime-local":
        return (utcnow() + timedelta(days=20)).strftime("%Y-%m-%dT08:30")
    if kind == "date":
        return (utcnow() + timedelta(days=20)).strftime("%Y-%m-%d")
    if kind == "password":
        return "correct horse battery staple"
    return "普法 test"


def _encoded(fields: list[tuple[str, bytes]]) -> bytes:
    return b"&".join(
        quote_from_bytes(name.encode()).encode() + b"=" + quote_from_bytes(value).encode()
        for name, value in fields
    )


def _variants(form: Form) -> Iterator[tuple[str, str, str, bytes, str]]:
    """``(action, field, fault, body, content type)``: the form with one field made hostile
    (or, for an action naming a row, the row's id in its path)."""
    plain = [(n, v.encode()) for n, v in form.fields]
    ctype = "application/x-www-form-urlencoded"
    if re.search(r"/\d+/", form.action):
        for fault, ident in PATH_IDS.items():
            action = re.sub(r"/\d+/", f"/{ident}/", form.action, count=1)
            yield action, "(id in the path)", fault, _encoded(plain), ctype
    for index, (name, _) in enumerate(plain):
        if name == "csrf_token":
            continue
        for fault, value in HOSTILE_VALUES.items():
            fields = list(plain)
            fields[index] = (name, value)
            if form.multipart or form.files:
                body, ctype = _multipart(fields, form.files, b"a,b\n1,2\n")
            else:
                body, ctype = _encoded(fields), "application/x-www-form-urlencoded"
            yield form.action, name, fault, body, ctype
    for name in form.files:
        for fault, content in {
            "binary garbage file": b"\x00\xff" * 2000,
            "not a workbook": b"PK\x03\x04 truncated zip",
            "HTML in a CSV": MARK.encode() + b",\xff\xfe\n",
        }.items():
            body, ctype = _multipart(plain, [name], content)
            yield form.action, name, fault, body, ctype
    yield form.action, "(body)", "NUL body", b"\x00" * 300, "application/x-www-form-urlencoded"
    yield (
        form.action,
        "(body)",
        "broken multipart",
        b"--x\r\n\x00\xff",
        "multipart/form-data; boundary=x",
    )


def _multipart(
    fields: list[tuple[str, bytes]], files: list[str], content: bytes
) -> tuple[bytes, str]:
    boundary = "pufaboundary7MA4YWxk"
    parts = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    for name in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}";'
            f' filename="x.xlsx"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


async def _crawl(client: TestClient[Any, Any]) -> tuple[list[str], list[Form]]:
    """Every console page reachable from the dashboard (up to ``MAX_PAGES``) and its forms
    (``POST`` forms and ``GET`` filters)."""
    start = "/admin/dashboard"
    seen: list[str] = []
    queue = [start]
    forms: list[Form] = []
    while queue and len(seen) < MAX_PAGES:
        page = queue.pop(0)
        if page in seen:
            continue
        seen.append(page)
        response = await client.get(page, allow_redirects=False)
        assert response.status < 500, (page, response.status)
        if response.status != 200 or response.content_type != "text/html":
            continue
        parser = _Forms(page)
        parser.feed(await response.text())
        forms += [f for f in parser.forms if not f.action.startswith(SKIP_ACTIONS)]
        for link in parser.links:
            path = urlsplit(link).path
            if (
                path.startswith("/admin/")
                and not path.startswith(("/admin/static", *SKIP_ACTIONS))
                and not re.search(r"\.(xlsx|csv|ics|png|svg|pdf)$", path)
                and path not in seen
            ):
                queue.append(path)
    return seen, forms


async def _saved(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Counts of what must never shrink."""
    async with sessions() as session:
        return {
            model.__name__: int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
            for model in (SurveyResponse, SurveyAnswer, AuditLog, OutboxMessage)
        }


async def test_every_console_form_refuses_hostile_fields(
    client: TestClient[Any, Any], sessions: async_sessionmaker[AsyncSession], settings: Any
) -> None:
    await seed_db(sessions, demo=True)
    await schedule(
        sessions, settings, "standing", local_day(8), local_day(15), local_day(22), local_day(29)
    )
    async with transaction(sessions) as session:
        session.add(
            OutboxMessage(
                dedupe_key="hostile-1",
                channel="telegram",
                recipient="100",
                kind="reminder",
                body={"text": "提醒"},
                status="failed",
                attempts=5,
                next_attempt_at=utcnow(),
                last_error="Forbidden: bot was blocked by the user",
            )
        )
    await make_account(sessions, "root")
    await logged_in(client, "root")
    # A swap request waiting for an answer, recorded through its own form, so that the form
    # answering it is on the page too.
    _, forms = await _crawl(client)
    (swap,) = [f for f in forms if urlsplit(f.action).path == "/admin/rota/swaps"]
    recorded = await client.post(
        swap.action, data=_encoded([(n, v.encode()) for n, v in swap.fields]),
        headers={"Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False,
    )  # fmt: skip
    assert recorded.status == 303, await recorded.text()
    before = await _saved(sessions)
    pages, forms = await _crawl(client)
    actions = {urlsplit(f.action).path for f in forms if f.method == "post"}
    filters = {urlsplit(f.action).path for f in forms if f.method == "get"}
    assert {"/admin/audit", "/admin/dashboard", "/admin/liaisons"} <= filters, filters
    # The console's forms are all here (a page that stopped linking one would hide it).
    for expected in (
        "/admin/surveys/fazhi-2026/status",
        "/admin/surveys/fazhi-2026/invitations",
        "/admin/notices",
        "/admin/liaisons/import/villages",
        "/admin/liaisons/import/volunteers",
        "/admin/rota/meetings",
        "/admin/rota/swaps",
        "/admin/outbox/retry",
    ):
        assert expected in actions, (expected, sorted(actions))
    for pattern in (
        r"/admin/rota/meetings/\d+/(move|cancel|mark)",
        r"/admin/rota/swaps/\d+/decide",
    ):
        assert any(re.fullmatch(pattern, a) for a in actions), (pattern, sorted(actions))

    sent = 0
    for form in forms:
        for action, name, fault, body, ctype in _variants(form):
            if form.method == "get":
                if name == "(body)":
                    continue
                response = await client.get(
                    URL(action.split("?", 1)[0] + "?" + body.decode(), encoded=True),
                    allow_redirects=False,
                )
            else:
                response = await client.post(
                    action, data=body, headers={"Content-Type": ctype}, allow_redirects=False
                )
            text = await response.text()
            sent += 1
            COUNTS["bad input: requests"] += 1
            COUNTS["bad input: faults injected"] += 1
            COUNTS[f"bad input: {response.status // 100}xx responses"] += 1
            assert response.status < 500, (action, name, fault, response.status, text[:500])
            assert MARK not in text, (form.action, name, fault)
    assert sent > 500, sent

    after = await _saved(sessions)
    for table, count in before.items():
        assert after[table] >= count, (table, count, after[table])
    for page in pages:
        response = await client.get(page, allow_redirects=False)
        assert response.status < 500, (page, response.status)
        if response.content_type == "text/html":
            assert MARK not in await response.text(), page
    # Still logged in and able to work.
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200
