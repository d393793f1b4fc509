"""``pufa import villages|volunteers`` and ``pufa volunteers coverage|list|export|nudge``.

The operator running ``pufa`` counts as an administrator. ``--token`` (or ``PUFA_API_TOKEN``)
acts on behalf of an API token's holder instead: a staff token limits lists, exports and
imports to its own township and may never export whole numbers; an analyst token sees figures
only. Reports are written in ``--lang`` or ``PUFA_DEFAULT_LOCALE``.

Imports print every refused row with its number and reason and exit with status 1 when any row
was refused (nothing is written then, unless ``--skip-bad``). A progress bar is drawn when
stderr is a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.volunteers.coverage import Coverage
from bot.volunteers.importer import ImportResult, import_villages, import_volunteers
from bot.volunteers.nudge import queue_nudges
from bot.volunteers.reports import (
    format_table,
    liaison_dict,
    liaison_rows,
    render_coverage_json,
    render_coverage_table,
    render_coverage_xlsx,
    render_rows_csv,
    render_rows_xlsx,
)
from bot.volunteers.store import Keys, Liaison, coverage, list_liaisons, township_by_code
from bot.volunteers.tabular import Table, TableError, read_table
from core.cli import get_settings
from core.clock import utcnow
from core.errors import PufaError
from core.i18n import Translator, negotiate, translator
from storage.api_tokens import authenticate
from storage.audit import record
from storage.db import transaction
from storage.runner import with_sessions

__all__ = ["commands"]


def _run(ctx: click.Context, body: Callable[[async_sessionmaker[AsyncSession]], Any]) -> Any:
    return asyncio.run(with_sessions(get_settings(ctx).database_url, body))


def _t(ctx: click.Context, lang: str | None) -> Translator:
    default = get_settings(ctx).default_locale
    return translator(negotiate(lang, default) if lang else default)


@dataclass(frozen=True, slots=True)
class Caller:
    """On whose behalf a command runs: the operator (an administrator) or a token's holder."""

    actor: str
    role: str
    township: str | None = None

    @property
    def admin(self) -> bool:
        """Whether this caller may see and export everything."""
        return self.role == "admin"


async def _caller(session: AsyncSession, token: str | None) -> Caller:
    if not token:
        return Caller("cli", "admin")
    row = await authenticate(session, token.strip())
    if row is None:
        raise PufaError("the API token is not valid (unknown or revoked)")
    return Caller(f"cli:token:{row.prefix}", row.role, row.township)


def _scope(caller: Caller, township: str | None, *, names: bool) -> str | None:
    """The township a caller may look at (``None`` = every township), or a refusal."""
    if caller.role == "staff":
        if township is not None and township != caller.township:
            raise PufaError(
                f"a staff token of {caller.township} sees its own township only, not {township}"
            )
        return caller.township
    if caller.role == "analyst" and not names:
        return township
    if caller.role == "admin":
        return township
    raise PufaError(f"a {caller.role} token may not see liaisons' personal data")


_token = click.option(
    "--token",
    envvar="PUFA_API_TOKEN",
    default=None,
    help="Act for an API token's holder (env PUFA_API_TOKEN); without it, the operator (admin).",
)
_lang = click.option("--lang", default=None, help="zh_CN (default PUFA_DEFAULT_LOCALE) or en.")
_sample = click.option(
    "--include-sample", is_flag=True, help="Count sample (demo) data too; it is left out otherwise."
)


# ---------------------------------------------------------------------------------- import


@click.group("import")
def import_group() -> None:
    """Import villages or legal liaisons from CSV or XLSX (Chinese or English headers)."""


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    if not sys.stderr.isatty() or total <= 0:
        yield lambda _n: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _read(path: Path, t: Translator) -> Table:
    try:
        return read_table(path.read_bytes())
    except TableError as exc:
        raise PufaError(f"{path}: {exc.problem.render(t)}") from None
    except OSError as exc:
        raise PufaError(f"{path}: {exc.strerror}") from None


def _report(result: ImportResult, t: Translator, *, dry_run: bool, skip_bad: bool) -> None:
    for problem in result.problems:
        click.echo(problem.render(t))
    click.echo(
        t._(
            "{rows} rows read: {created} new, {updated} updated, {unchanged} unchanged,"
            " {refused} refused.",
            rows=result.rows,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            refused=result.refused,
        )
    )
    if result.townships_created:
        click.echo(t._("New townships: {n}.", n=result.townships_created))
    if dry_run:
        click.echo(t._("Dry run: nothing was written."))
    elif result.written:
        click.echo(t._("Written."))
    if result.refused:
        if result.written:
            message = t._("{n} rows were refused and skipped.", n=result.refused)
        elif dry_run:
            message = t._("{n} rows would be refused.", n=result.refused)
        else:
            message = t._(
                "{n} rows were refused, so nothing was written. Correct them and import again,"
                " or use --skip-bad to import only the good rows.",
                n=result.refused,
            )
        raise PufaError(message)


def _import_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in (
        click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--skip-bad", is_flag=True, help="Write the good rows, skip the bad ones."),
        click.option("--dry-run", is_flag=True, help="Check and report; write nothing."),
        _lang,
    ):
        fn = option(fn)
    return fn


@import_group.command("villages")
@_import_options
@_token
@click.pass_context
def import_villages_cmd(
    ctx: click.Context,
    file: Path,
    skip_bad: bool,
    dry_run: bool,
    lang: str | None,
    token: str | None,
) -> None:
    """Townships and villages: township_code/镇街代码, township_name/镇街名称,
    village_code/村居代码, village_name/村居名称, kind/类型 (村/社区), poor/贫困村 (是/否).
    Villages are updated in place by code."""
    t = _t(ctx, lang)
    table = _read(file, t)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> ImportResult:
        async with transaction(sessions) as session:
            caller = await _caller(session, token)
            if not caller.admin:
                raise PufaError("only an administrator may import villages")
            with _progress(len(table.rows) * 2, t._("Importing villages")) as tick:
                return await import_villages(
                    session,
                    table,
                    actor=caller.actor,
                    now=utcnow(),
                    skip_bad=skip_bad,
                    dry_run=dry_run,
                    progress=tick,
                )

    try:
        result = _run(ctx, body)
    except TableError as exc:
        raise PufaError(f"{file}: {exc.problem.render(t)}") from None
    _report(result, t, dry_run=dry_run, skip_bad=skip_bad)


@import_group.command("volunteers")
@_import_options
@click.option("--township", default=None, help="Refuse rows of villages outside this township.")
@_token
@click.pass_context
def import_volunteers_cmd(
    ctx: click.Context,
    file: Path,
    skip_bad: bool,
    dry_run: bool,
    lang: str | None,
    township: str | None,
    token: str | None,
) -> None:
    """Legal liaisons: village_code/村居代码, name/姓名, gender/性别 (男/女), mobile/手机号,
    background/身份 (FACTS §4, in Chinese). Checked like /register in chat."""
    t = _t(ctx, lang)
    table = _read(file, t)
    settings = get_settings(ctx)

    async def body(sessions: async_sessionmaker[AsyncSession]) -> ImportResult:
        async with transaction(sessions) as session:
            caller = await _caller(session, token)
            scope = _scope(caller, township, names=True)
            if scope is not None and await township_by_code(session, scope) is None:
                raise PufaError(f"unknown township {scope!r}")
            with _progress(len(table.rows) * 2, t._("Importing legal liaisons")) as tick:
                return await import_volunteers(
                    session,
                    Keys(settings.secret()),
                    table,
                    actor=caller.actor,
                    now=utcnow(),
                    township=scope,
                    skip_bad=skip_bad,
                    dry_run=dry_run,
                    progress=tick,
                )

    try:
        result = _run(ctx, body)
    except TableError as exc:
        raise PufaError(f"{file}: {exc.problem.render(t)}") from None
    _report(result, t, dry_run=dry_run, skip_bad=skip_bad)


# ---------------------------------------------------------------------------------- volunteers


@click.group()
def volunteers() -> None:
    """法律明白人 (village legal liaisons): coverage, lists, exports, the weekly nudge."""


def _write(output: Path | None, data: bytes | str) -> None:
    if output is None:
        if isinstance(data, bytes):
            raise click.UsageError("this format needs -o FILE")
        click.echo(data, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        output.write_bytes(data)
    else:
        output.write_text(data, encoding="utf-8")
    click.echo(f"written {output}")


@volunteers.command("coverage")
@click.option("--township", default=None, help="Only this township (its code).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "xlsx"]), default="table")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@_sample
@_lang
@_token
@click.pass_context
def coverage_cmd(
    ctx: click.Context,
    township: str | None,
    fmt: str,
    output: Path | None,
    include_sample: bool,
    lang: str | None,
    token: str | None,
) -> None:
    """Coverage per village (count, target 2 or 3 for a poor village, shortfall) and township."""
    t = _t(ctx, lang)
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs -o FILE")

    async def body(sessions: async_sessionmaker[AsyncSession]) -> Coverage:
        async with sessions() as session:
            caller = await _caller(session, token)
            scope = _scope(caller, township, names=False)
            if scope is not None and await township_by_code(session, scope) is None:
                raise PufaError(f"unknown township {scope!r}")
            return await coverage(session, township=scope, include_sample=include_sample)

    figures = _run(ctx, body)
    if fmt == "json":
        _write(output, render_coverage_json(figures))
    elif fmt == "xlsx":
        _write(output, render_coverage_xlsx(figures, t))
    else:
        _write(output, render_coverage_table(figures, t))


async def _liaisons(
    sessions: async_sessionmaker[AsyncSession],
    keys: Keys,
    token: str | None,
    township: str | None,
    village: str | None,
    include_sample: bool,
) -> tuple[Caller, str | None, list[Liaison]]:
    async with sessions() as session:
        caller = await _caller(session, token)
        scope = _scope(caller, township, names=True)
        if scope is not None and await township_by_code(session, scope) is None:
            raise PufaError(f"unknown township {scope!r}")
        found = await list_liaisons(
            session, keys, township=scope, village=village, include_sample=include_sample
        )
    return caller, scope, found


@volunteers.command("list")
@click.option("--township", default=None, help="Only this township (its code).")
@click.option("--village", default=None, help="Only this village (its code).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@_sample
@_lang
@_token
@click.pass_context
def list_cmd(
    ctx: click.Context,
    township: str | None,
    village: str | None,
    fmt: str,
    include_sample: bool,
    lang: str | None,
    token: str | None,
) -> None:
    """Registered liaisons, mobile numbers masked (138****1234)."""
    t = _t(ctx, lang)
    keys = Keys(get_settings(ctx).secret())

    async def body(
        sessions: async_sessionmaker[AsyncSession],
    ) -> tuple[Caller, str | None, list[Liaison]]:
        return await _liaisons(sessions, keys, token, township, village, include_sample)

    found = _run(ctx, body)[2]
    if fmt == "json":
        click.echo(json.dumps([liaison_dict(x) for x in found], ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(t._("No legal liaisons registered here yet."))
        if not include_sample:
            click.echo(t._("Sample (demo) data is left out; add --include-sample to see it."))
        return
    header, rows = liaison_rows(found, t)
    click.echo(format_table([header, *[[str(c) for c in r] for r in rows]]), nl=False)
    click.echo(t._("{n} legal liaisons.", n=len(found)))


@volunteers.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--township", default=None, help="Only this township (its code).")
@click.option("--full", is_flag=True, help="Whole mobile numbers (administrators only; audited).")
@_sample
@_lang
@_token
@click.pass_context
def export_cmd(
    ctx: click.Context,
    output: Path,
    township: str | None,
    full: bool,
    include_sample: bool,
    lang: str | None,
    token: str | None,
) -> None:
    """Liaisons to an .xlsx or .csv file (by the name's ending); numbers masked unless --full.
    Every export is written to the audit log."""
    t = _t(ctx, lang)
    settings = get_settings(ctx)
    keys = Keys(settings.secret())
    if output.suffix.lower() not in (".xlsx", ".csv"):
        raise click.UsageError("-o must name an .xlsx or .csv file")

    async def body(sessions: async_sessionmaker[AsyncSession]) -> list[Liaison]:
        caller, scope, found = await _liaisons(
            sessions, keys, token, township, None, include_sample
        )
        if full and not caller.admin:
            raise PufaError("a full export (whole mobile numbers) is for administrators only")
        async with transaction(sessions) as session:
            record(
                session,
                caller.actor,
                "volunteers.export_full" if full else "volunteers.export",
                scope or "",
                rows=len(found),
                file=output.name,
                include_sample=include_sample,
            )
        return found

    found = _run(ctx, body)
    header, rows = liaison_rows(found, t, full=full)
    if output.suffix.lower() == ".csv":
        data = render_rows_csv(header, rows)
    else:
        data = render_rows_xlsx(t._("Legal liaisons"), header, rows)
    _write(output, data)
    click.echo(t._("{n} legal liaisons exported.", n=len(found)))


@volunteers.command("nudge")
@click.option(
    "--now",
    "now_text",
    default=None,
    help="Run as if it were this time (ISO 8601, local time if no offset).",
)
@click.pass_context
def nudge_cmd(ctx: click.Context, now_text: str | None) -> None:
    """Queue this week's reminder to each township's staff about villages still short
    (what pufa serve does every Monday from 09:00); prints how many were queued."""
    settings = get_settings(ctx)
    if now_text:
        try:
            parsed = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter(f"not an ISO 8601 time: {now_text!r}") from None
        now = parsed if parsed.tzinfo else parsed.replace(tzinfo=settings.tz)
    else:
        now = utcnow()

    async def body(sessions: async_sessionmaker[AsyncSession]) -> int:
        async with transaction(sessions) as session:
            return await queue_nudges(
                session, now=now, tz=settings.tz, default_locale=settings.default_locale
            )

    queued = _run(ctx, body)
    click.echo(f"queued {queued}")


commands = [import_group, volunteers]
