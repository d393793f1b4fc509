"""法律明白人 (village legal liaisons): coverage, the list, and imports with a preview.

- ``/admin/liaisons``: coverage of the target (2 per village, 3 per poor village) per
  township and per village, filtered by township and to the villages still short; sample
  (demo) data only when asked. ``/admin/liaisons/coverage.xlsx`` is the same as a workbook.
- ``/admin/liaisons/list``: the registered liaisons of a township or village, mobile numbers
  masked (``138****1234``): the console never shows a whole number.
- ``/admin/liaisons/import``: a villages file (the district office only, as with
  ``pufa import villages``) or a liaisons file is checked first. The preview lists every
  refused row with its row number, column and reason, and what would be created or updated;
  nothing is written until the account confirms: the whole file when no row is refused, or
  only the good rows (``--skip-bad``). The checks and the writing are the registry's own
  (:mod:`bot.volunteers.importer`), run again at confirmation against the database as it is
  then; every record written is in the audit log.

A staff account sees, exports and imports its own township only: asking for another is
refused (403), and rows of another township's villages in its file are refused rows.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.volunteers.coverage import Coverage, TownshipCoverage
from bot.volunteers.importer import (
    ImportResult,
    RowProblem,
    import_villages,
    import_volunteers,
)
from bot.volunteers.reports import liaison_rows, render_coverage_xlsx
from bot.volunteers.rules import KIND_LABELS, Problem
from bot.volunteers.store import Keys, coverage, list_liaisons
from bot.volunteers.tabular import Table, TableError, read_table
from bot.web.auth import Principal
from bot.web.common import flash, flash_error, form_text, townships
from bot.web.layout import Page, Route, console_locale, render
from bot.web.uploads import (
    MAX_UPLOAD,
    UploadProblem,
    discard_upload,
    load_upload,
    read_upload,
    save_upload,
)
from core.appkeys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.i18n import N_, Translator, translator
from storage.db import transaction
from storage.models import Township, Village

__all__ = ["PAGE", "coverage_summary"]

HOME = "/admin/liaisons"
IMPORT = HOME + "/import"
LIST_MAX = 500
"""Liaisons listed on one page (a township's are far fewer)."""
KINDS = ("villages", "volunteers")
_DIGITS = re.compile(r"\d{7,}")


class Filters:
    """The coverage and list query: township (scoped to the account), short only, sample."""

    def __init__(self, request: web.Request, user: Principal) -> None:
        self.township = user.township_scope(request.query.get("township") or None)
        self.short_only = request.query.get("short") == "1"
        self.include_sample = request.query.get("sample") == "1"
        self.village = request.query.get("village") or None

    def query(self) -> str:
        """These filters as a query string (for the export link)."""
        parts = [f"township={self.township}"] if self.township else []
        if self.short_only:
            parts.append("short=1")
        if self.include_sample:
            parts.append("sample=1")
        return "&".join(parts)


async def _coverage(db: AsyncSession, f: Filters) -> tuple[Coverage, list[tuple[str, str]]]:
    towns = await townships(db)
    if f.township is not None and f.township not in dict(towns):
        raise web.HTTPNotFound()
    cov = await coverage(db, township=f.township, include_sample=f.include_sample)
    if f.short_only:
        cov = Coverage(
            tuple(v for v in cov.villages if v.shortfall > 0),
            tuple(t for t in cov.townships if t.short > 0),
            cov.include_sample,
        )
    return cov, towns


def _totals(towns: tuple[TownshipCoverage, ...]) -> dict[str, int]:
    return {
        "villages": sum(t.villages for t in towns),
        "short": sum(t.short for t in towns),
        "count": sum(t.count for t in towns),
        "target": sum(t.target for t in towns),
        "shortfall": sum(t.shortfall for t in towns),
    }


async def coverage_summary(db: AsyncSession, township: str | None) -> dict[str, int]:
    """What the dashboard shows of the registry: villages, how many are short, liaisons
    registered, the target and the shortfall (one township, or the district)."""
    cov = await coverage(db, township=township)
    return _totals(cov.townships)


async def coverage_view(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/liaisons``."""
    f = Filters(request, user)
    t = translator(await console_locale(request))
    async with request.config_dict[SESSIONS]() as db:
        cov, towns = await _coverage(db, f)
    query = f.query()
    return await render(
        request,
        "liaisons.html",
        {
            "f": f,
            "townships": towns,
            "cov": cov,
            "totals": _totals(cov.townships),
            "kinds": {code: t._(label) for code, label in KIND_LABELS.items()},
            "export": f"{HOME}/coverage.xlsx" + (f"?{query}" if query else ""),
        },
    )


async def coverage_xlsx(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/liaisons/coverage.xlsx``: the coverage shown, as a workbook."""
    f = Filters(request, user)
    t = translator(await console_locale(request))
    async with request.config_dict[SESSIONS]() as db:
        cov, _towns = await _coverage(db, f)
    name = f"coverage-{f.township or 'all'}{'-short' if f.short_only else ''}.xlsx"
    return web.Response(
        body=render_coverage_xlsx(cov, t),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def liaison_list(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/liaisons/list?township=&village=&sample=1``: numbers masked."""
    f = Filters(request, user)
    t = translator(await console_locale(request))
    keys = Keys(request.config_dict[SETTINGS].secret())
    async with request.config_dict[SESSIONS]() as db:
        towns = await townships(db)
        if f.township is not None and f.township not in dict(towns):
            raise web.HTTPNotFound()
        villages: list[tuple[str, str]] = []
        if f.township is not None:
            villages = [
                (code, name)
                for code, name in (
                    await db.execute(
                        select(col(Village.code), col(Village.name))
                        .join(Township, col(Township.id) == col(Village.township_id))
                        .where(col(Township.code) == f.township)
                        .order_by(col(Village.code))
                    )
                ).all()
            ]
        village = f.village if f.village in dict(villages) else None
        if f.village is not None and village is None:
            raise web.HTTPNotFound()
        found = await list_liaisons(
            db, keys, township=f.township, village=village, include_sample=f.include_sample
        )
    header, rows = liaison_rows(found[:LIST_MAX], t, full=False)
    return await render(
        request,
        "liaison_list.html",
        {
            "f": f,
            "townships": towns,
            "villages": villages,
            "village": village,
            "header": header,
            "rows": rows,
            "total": len(found),
            "shown": min(len(found), LIST_MAX),
        },
    )


# ---------------------------------------------------------------------------------- imports


async def import_page(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/liaisons/import``: the upload forms."""
    return await render(request, "import.html", {"max_mb": MAX_UPLOAD // (1024 * 1024)})


async def _check(
    db: AsyncSession,
    request: web.Request,
    kind: str,
    table: Table,
    township: str | None,
    actor: str,
    *,
    dry_run: bool,
    skip_bad: bool = False,
) -> ImportResult:
    now = utcnow()
    if kind == "villages":
        return await import_villages(
            db, table, actor=actor, now=now, skip_bad=skip_bad, dry_run=dry_run
        )
    return await import_volunteers(
        db,
        Keys(request.config_dict[SETTINGS].secret()),
        table,
        actor=actor,
        now=now,
        township=township,
        skip_bad=skip_bad,
        dry_run=dry_run,
    )


async def _upload(request: web.Request, user: Principal, kind: str) -> web.StreamResponse:
    t = translator(await console_locale(request))
    township = user.township_scope(None) if kind == "volunteers" else None
    try:
        uploaded = await read_upload(request)
    except UploadProblem as problem:
        await flash_error(request, problem.render(t))
        raise web.HTTPSeeOther(IMPORT) from None
    try:
        table = read_table(uploaded.data)
        async with request.config_dict[SESSIONS]() as db:  # headers checked, nothing kept
            await _check(db, request, kind, table, township, user.actor, dry_run=True)
    except TableError as exc:
        await flash_error(request, f"{uploaded.filename}: {exc.problem.render(t)}")
        raise web.HTTPSeeOther(IMPORT) from None
    async with transaction(request.config_dict[SESSIONS]) as db:
        token = await save_upload(
            db,
            request.config_dict[SETTINGS].secret(),
            account_id=user.id,
            kind=kind,
            township=township,
            filename=uploaded.filename,
            table=table,
            now=utcnow(),
        )
    raise web.HTTPSeeOther(f"{IMPORT}/{kind}/{token}")


async def upload_villages(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/liaisons/import/villages`` (multipart, field ``file``)."""
    return await _upload(request, user, "villages")


async def upload_volunteers(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/liaisons/import/volunteers`` (multipart, field ``file``)."""
    return await _upload(request, user, "volunteers")


def _mask_digits(match: re.Match[str]) -> str:
    run = match.group()
    front, back = (3, 4) if len(run) >= 10 else (2, 2)
    return run[:front] + "*" * (len(run) - front - back) + run[-back:]


def _masked(value: object) -> object:
    return _DIGITS.sub(_mask_digits, value) if isinstance(value, str) else value


def _reason(t: Translator, problem: Problem) -> str:
    """A refused row's reason, any long run of digits (a mobile number typed wrong) masked:
    the console shows no whole number."""
    shown = Problem(problem.message, {k: _masked(v) for k, v in problem.params.items()})
    return shown.render(t)


def _problems(t: Translator, problems: list[RowProblem]) -> list[dict[str, Any]]:
    return [{"row": p.row, "column": p.column, "reason": _reason(t, p.problem)} for p in problems]


async def _found(
    request: web.Request, db: AsyncSession, user: Principal, kind: str
) -> tuple[Any, Table] | None:
    found = await load_upload(
        db,
        request.config_dict[SETTINGS].secret(),
        request.match_info["token"],
        account_id=user.id,
        kind=kind,
        now=utcnow(),
    )
    if found is not None and kind == "volunteers":
        user.township_scope(found[0].township)  # a staff account moved meanwhile: 403
    return found


async def _gone(request: web.Request) -> NoReturn:
    t = translator(await console_locale(request))
    await flash_error(
        request, t._("This import is finished or has expired. Choose the file again.")
    )
    raise web.HTTPSeeOther(IMPORT)


async def _preview(request: web.Request, user: Principal, kind: str) -> web.StreamResponse:
    t = translator(await console_locale(request))
    async with request.config_dict[SESSIONS]() as db:  # a dry run: nothing is committed
        found = await _found(request, db, user, kind)
        if found is None:
            return await _gone(request)
        upload, table = found
        result = await _check(db, request, kind, table, upload.township, user.actor, dry_run=True)
    good = result.rows - result.refused
    return await render(
        request,
        "import_preview.html",
        {
            "kind": kind,
            "upload": upload,
            "result": result,
            "good": good,
            "problems": _problems(t, result.problems),
            "action": f"{IMPORT}/{kind}/{upload.token}",
        },
    )


async def preview_villages(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/liaisons/import/villages/{token}``: the preview."""
    return await _preview(request, user, "villages")


async def preview_volunteers(request: web.Request, user: Principal) -> web.StreamResponse:
    """``GET /admin/liaisons/import/volunteers/{token}``: the preview."""
    return await _preview(request, user, "volunteers")


DONE = N_(
    "Imported: {created} new, {updated} updated, {unchanged} unchanged, {refused} rows skipped."
)


async def _confirm(request: web.Request, user: Principal, kind: str) -> web.StreamResponse:
    form = await request.post()
    action = form_text(form.get("action"), 16)
    if action not in ("import", "skip_bad", "discard"):
        raise web.HTTPUnprocessableEntity()
    t = translator(await console_locale(request))
    result: ImportResult | None = None
    async with transaction(request.config_dict[SESSIONS]) as db:
        found = await _found(request, db, user, kind)
        if found is None:
            return await _gone(request)
        upload, table = found
        back = f"{IMPORT}/{kind}/{upload.token}"
        if action == "discard":
            await discard_upload(db, upload)
        else:
            result = await _check(
                db,
                request,
                kind,
                table,
                upload.township,
                user.actor,
                dry_run=False,
                skip_bad=action == "skip_bad",
            )
            if result.written:
                await discard_upload(db, upload)
    if result is None:
        await flash(request, N_("The import was discarded; nothing was written."))
        raise web.HTTPSeeOther(IMPORT)
    if not result.written:
        await flash_error(
            request,
            t.ngettext(
                "{n} row is refused, so nothing was written.",
                "{n} rows are refused, so nothing was written.",
                result.refused,
            ),
        )
        raise web.HTTPSeeOther(back)
    await flash(
        request,
        DONE,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        refused=result.refused,
    )
    raise web.HTTPSeeOther(HOME if kind == "villages" else f"{HOME}/list")


async def confirm_villages(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/liaisons/import/villages/{token}``: ``action`` import, skip_bad or
    discard."""
    return await _confirm(request, user, "villages")


async def confirm_volunteers(request: web.Request, user: Principal) -> web.StreamResponse:
    """``POST /admin/liaisons/import/volunteers/{token}``: ``action`` import, skip_bad or
    discard."""
    return await _confirm(request, user, "volunteers")


PAGE = Page(
    name="liaisons",
    title=N_("Legal liaisons"),
    path="/liaisons",
    permission="liaisons.view",
    routes=(
        Route("GET", "/liaisons", coverage_view, "liaisons.view"),
        Route("GET", "/liaisons/coverage.xlsx", coverage_xlsx, "liaisons.view"),
        Route("GET", "/liaisons/list", liaison_list, "liaisons.view"),
        Route("GET", "/liaisons/import", import_page, "liaisons.manage"),
        Route("POST", "/liaisons/import/villages", upload_villages, "villages.import"),
        Route("POST", "/liaisons/import/volunteers", upload_volunteers, "liaisons.manage"),
        Route("GET", "/liaisons/import/villages/{token}", preview_villages, "villages.import"),
        Route("POST", "/liaisons/import/villages/{token}", confirm_villages, "villages.import"),
        Route("GET", "/liaisons/import/volunteers/{token}", preview_volunteers, "liaisons.manage"),
        Route("POST", "/liaisons/import/volunteers/{token}", confirm_volunteers, "liaisons.manage"),
    ),
)
"""The liaison registry page."""
