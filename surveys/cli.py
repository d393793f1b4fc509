"""Survey commands: ``pufa surveys list|open|close|comments``, ``pufa invite residents``,
``pufa results`` and ``pufa token create|list|revoke``.

Exposed as :data:`commands` (the survey feature's ``commands``). Failures raise
:class:`~core.errors.PufaError` (one line on stderr, exit status 1); commands that create a
secret print it alone on the last line of stdout. An output file or folder that cannot be
written, or a filter that names nothing known, is refused before anything is computed or
stored. Sample (demo) responses are counted only with ``--include-sample``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.cli import (
    catalogs,
    check_writable_dir,
    check_writable_file,
    get_settings,
    local_time,
    write_output,
)
from core.clock import utcnow
from core.errors import PufaError
from core.i18n import negotiate
from core.settings import SHIPPED_LOCALES
from storage.api_tokens import create_api_token, list_api_tokens, revoke_api_token
from storage.audit import record
from storage.db import transaction
from storage.models import Township
from storage.models_surveys import SurveyResponse, SurveyState
from storage.runner import with_sessions
from surveys.invitations import create_invitations, invitations_csv, write_qr_codes
from surveys.reports import comments_csv, format_table, render_json, render_table, render_xlsx
from surveys.results import compute_results, fetch_comments, has_answers
from surveys.schema import CatalogError, Survey, load_catalog
from surveys.state import response_counts, state_is_open, sync_catalog

_include_sample = click.option(
    "--include-sample",
    is_flag=True,
    help="Count the sample (demo) responses of `pufa seed --demo` too (never for real use).",
)

__all__ = ["commands"]


def _catalog(ctx: click.Context) -> dict[str, Survey]:
    try:
        return catalogs(ctx).get(load_catalog)
    except CatalogError as exc:
        raise PufaError(f"the survey catalog is broken: {exc}") from exc


def _survey(ctx: click.Context, code: str) -> Survey:
    catalog = _catalog(ctx)
    if code not in catalog:
        known = ", ".join(sorted(catalog)) or "none"
        raise PufaError(f"unknown survey {code!r} (known: {known})")
    return catalog[code]


def _run(ctx: click.Context, body: Any) -> Any:
    settings = get_settings(ctx)
    return asyncio.run(with_sessions(settings.database_url, body))


async def _synced(ctx: click.Context, session: AsyncSession) -> None:
    """Make sure survey_state knows every catalog survey (as ``pufa seed`` does)."""
    await sync_catalog(session, _catalog(ctx))


# --------------------------------------------------------------------------------------------
# pufa surveys


@click.group()
def surveys() -> None:
    """List surveys; open or close one."""


@surveys.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def surveys_list(ctx: click.Context, fmt: str) -> None:
    """Surveys with their state (open now or not) and response counts."""

    async def body(sessions: Any) -> list[dict[str, Any]]:
        async with transaction(sessions) as session:
            await _synced(ctx, session)
            states = (
                (await session.execute(select(SurveyState).order_by(col(SurveyState.code))))
                .scalars()
                .all()
            )
            counts = await response_counts(session)
            samples = await response_counts(session, sample=True)
        now = utcnow()
        tz = get_settings(ctx).tz
        return [
            {
                "code": s.code,
                "title": s.title_zh,
                "status": s.status,
                "open": state_is_open(s.status, s.opens_at, s.closes_at, now),
                "opens_at": s.opens_at.astimezone(tz).isoformat() if s.opens_at else None,
                "closes_at": s.closes_at.astimezone(tz).isoformat() if s.closes_at else None,
                "responses": counts.get(s.code, 0),
                "sample_responses": samples.get(s.code, 0),
            }
            for s in states
        ]

    rows = _run(ctx, body)
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return

    table = [["code", "title", "status", "open now", "window", "responses", "sample"]]
    for r in rows:
        window = f"{(r['opens_at'] or '…')[:10]} – {(r['closes_at'] or '…')[:10]}"
        table.append(
            [
                r["code"],
                r["title"],
                r["status"],
                "yes" if r["open"] else "no",
                window,
                str(r["responses"]),
                str(r["sample_responses"]),
            ]
        )
    click.echo(format_table(table, right={5, 6}))


def _set_status(ctx: click.Context, code: str, status: str) -> None:
    _survey(ctx, code)

    async def body(sessions: Any) -> None:
        async with transaction(sessions) as session:
            await _synced(ctx, session)
            await session.execute(
                update(SurveyState)
                .where(col(SurveyState.code) == code)
                .values(status=status, updated_at=utcnow())
            )
            record(session, "cli", f"survey.{status}", code)

    _run(ctx, body)


@surveys.command("open")
@click.argument("survey")
@click.pass_context
def surveys_open(ctx: click.Context, survey: str) -> None:
    """Open SURVEY now, even outside its catalog window."""
    _set_status(ctx, survey, "open")
    click.echo(f"{survey}: open")


@surveys.command("close")
@click.argument("survey")
@click.pass_context
def surveys_close(ctx: click.Context, survey: str) -> None:
    """Close SURVEY: no more answers are taken."""
    _set_status(ctx, survey, "closed")
    click.echo(f"{survey}: closed")


# --------------------------------------------------------------------------------------------
# pufa invite residents


@click.group()
def invite() -> None:
    """Create invitations."""


@invite.command("residents")
@click.argument("survey")
@click.option("--township", required=True, help="Township code the invitations belong to.")
@click.option("--count", type=click.IntRange(1, 100_000), required=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="CSV file to write."
)
@click.option(
    "--qr",
    "qr_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write one QR image per token into this folder.",
)
@click.option("--batch", default=None, help="Batch label (default: township and time).")
@click.option(
    "--bot",
    envvar="PUFA_TELEGRAM_BOT_USERNAME",
    default=None,
    help="Telegram bot username: adds a chat_link column with each token's deep link"
    " (env PUFA_TELEGRAM_BOT_USERNAME).",
)
@click.pass_context
def invite_residents(
    ctx: click.Context,
    survey: str,
    township: str,
    count: int,
    output: Path | None,
    qr_dir: Path | None,
    batch: str | None,
    bot: str | None,
) -> None:
    """A batch of single-use invitation tokens for SURVEY: CSV with token,url (and chat_link,
    the Telegram deep link t_<token>, when the bot username is known)."""
    _survey(ctx, survey)
    settings = get_settings(ctx)
    # Only a hash of each token is stored: tokens nobody received would be lost for good, so
    # the outputs are checked first and written before the transaction commits.
    if output is not None:
        check_writable_file(output)
    if qr_dir is not None:
        check_writable_dir(qr_dir)
    written: list[Path] = []

    async def body(sessions: Any) -> tuple[str, list[str]]:
        async with transaction(sessions) as session:
            exists = (
                await session.execute(
                    select(col(Township.id)).where(col(Township.code) == township)
                )
            ).first()
            if exists is None:
                raise PufaError(f"unknown township {township!r} (load it with pufa seed/import)")
            made = await create_invitations(
                session,
                settings.secret(),
                survey,
                township=township,
                count=count,
                now=utcnow(),
                batch=batch,
            )
            record(session, "cli", "survey.invite", survey, township=township, count=count)
            _, tokens = made
            if output is not None:  # BOM: Excel/WPS read UTF-8
                text = invitations_csv(settings.public_url, survey, tokens, bot=bot or None)
                write_output(output, text, encoding="utf-8-sig")
            if qr_dir is not None:
                try:
                    written.extend(write_qr_codes(qr_dir, settings.public_url, survey, tokens))
                except OSError as exc:
                    raise PufaError(f"cannot write into {qr_dir}: {exc.strerror or exc}") from None
            return made

    batch_name, tokens = _run(ctx, body)
    if output is not None:
        click.echo(f"{count} invitations (batch {batch_name}) written to {output}")
    else:
        sys.stdout.write(invitations_csv(settings.public_url, survey, tokens, bot=bot or None))
    if qr_dir is not None:
        click.echo(f"{len(written)} QR codes written to {qr_dir}", err=output is None)


# --------------------------------------------------------------------------------------------
# pufa results


def _report_setup(
    ctx: click.Context, survey: str, fmt: str, output: Path | None, lang: str | None
) -> tuple[Survey, str]:
    """The survey and locale of a report, after checking the output can be written (before
    any work, so a bad ``-o`` is one line and nothing else happens)."""
    definition = _survey(ctx, survey)
    locale = _locale(lang, get_settings(ctx).default_locale)
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs -o FILE")
    if output is not None:
        check_writable_file(output)
    return definition, locale


@click.command()
@click.argument("survey")
@click.option("--by", type=click.Choice(["township", "channel"]), default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "xlsx"]), default="table")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--township", default=None, help="Only this township's answers.")
@click.option("--baseline", default=None, help="Previous period's survey (显著提高 indicators).")
@click.option("--lang", default=None, help="zh_CN (default) or en.")
@_include_sample
@click.pass_context
def results(
    ctx: click.Context,
    survey: str,
    by: str | None,
    fmt: str,
    output: Path | None,
    township: str | None,
    baseline: str | None,
    lang: str | None,
    include_sample: bool,
) -> None:
    """Satisfaction report of SURVEY: each indicator against its target. Sample (demo)
    responses count only with --include-sample, and the report then says so."""
    definition, locale = _report_setup(ctx, survey, fmt, output, lang)

    async def body(sessions: Any) -> Any:
        async with sessions() as session:
            await _check_filters(session, township, baseline, include_sample)
            report = await compute_results(
                session,
                definition,
                locale=locale,
                township=township,
                baseline=baseline,
                include_sample=include_sample,
            )
            if fmt == "xlsx":
                report.comments = await fetch_comments(
                    session,
                    definition,
                    township=township,
                    include_sample=include_sample,
                    tz=get_settings(ctx).tz,
                )
            return report

    report = _run(ctx, body)
    if fmt == "xlsx" and output is not None:
        write_output(output, render_xlsx(report, locale))
        click.echo(f"written {output}")
        return
    text = render_json(report, by) if fmt == "json" else render_table(report, locale, by)
    if output is not None:
        write_output(output, text)
        click.echo(f"written {output}")
    else:
        click.echo(text, nl=False)


def _locale(lang: str | None, default: str) -> str:
    if not lang:
        return default
    locale = negotiate(lang, default="")
    if not locale:
        raise PufaError(f"unsupported --lang {lang!r} (shipped: {', '.join(SHIPPED_LOCALES)})")
    return locale


async def _check_filters(
    session: AsyncSession, township: str | None, baseline: str | None, include_sample: bool
) -> None:
    """Refuse a ``--township`` or ``--baseline`` that names nothing (instead of zeros, or a
    verdict silently computed without the comparison asked for)."""
    if township is not None:
        found = (
            await session.execute(select(col(Township.id)).where(col(Township.code) == township))
        ).first()
        if found is None:
            raise PufaError(f"unknown township {township!r}")
    if baseline is not None and not await has_answers(
        session, baseline, include_sample=include_sample
    ):
        known = (
            await session.execute(
                select(col(SurveyState.code)).where(col(SurveyState.code) == baseline)
            )
        ).first() or (
            await session.execute(
                select(col(SurveyResponse.id)).where(col(SurveyResponse.survey) == baseline)
            )
        ).first()
        if known is None:
            raise PufaError(f"unknown baseline survey {baseline!r}")
        raise PufaError(
            f"baseline survey {baseline!r} has no responses to compare with"
            + ("" if include_sample else " (sample responses count only with --include-sample)")
        )


@surveys.command("comments")
@click.argument("survey")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--township", default=None, help="Only this township's answers.")
@click.option("--lang", default=None, help="zh_CN (default) or en.")
@_include_sample
@click.pass_context
def surveys_comments(
    ctx: click.Context,
    survey: str,
    fmt: str,
    output: Path | None,
    township: str | None,
    lang: str | None,
    include_sample: bool,
) -> None:
    """The free-text answers (comments) of SURVEY as CSV or XLSX; text that a spreadsheet
    would read as a formula is kept as text."""
    definition, locale = _report_setup(ctx, survey, fmt, output, lang)

    async def body(sessions: Any) -> Any:
        async with sessions() as session:
            await _check_filters(session, township, None, include_sample)
            report = await compute_results(
                session, definition, locale=locale, township=township, include_sample=include_sample
            )
            report.comments = await fetch_comments(
                session,
                definition,
                township=township,
                include_sample=include_sample,
                tz=get_settings(ctx).tz,
            )
            return report

    report = _run(ctx, body)
    if fmt == "xlsx" and output is not None:
        write_output(output, render_xlsx(report, locale))
    elif output is not None:
        write_output(output, comments_csv(report, locale), encoding="utf-8-sig")
    else:
        sys.stdout.write(comments_csv(report, locale))
        return
    click.echo(f"{len(report.comments)} comments written to {output}")


# --------------------------------------------------------------------------------------------
# pufa token


@click.group()
def token() -> None:
    """Bearer tokens for the results API."""


@token.command("create")
@click.option(
    "--role",
    type=click.Choice(["admin", "analyst", "coordinator", "staff"]),
    required=True,
)
@click.option("--township", default=None, help="Township code (required for staff).")
@click.option("--label", default="", help="A note on who uses the token.")
@click.pass_context
def token_create(ctx: click.Context, role: str, township: str | None, label: str) -> None:
    """Create a token; it is printed once, alone on the last line."""
    if role == "staff" and not township:
        raise click.UsageError("--role staff needs --township")
    if role != "staff" and township:
        raise click.UsageError("only --role staff takes --township")

    async def body(sessions: Any) -> tuple[str, Any]:
        async with transaction(sessions) as session:
            if township is not None:
                found = (
                    await session.execute(
                        select(col(Township.id)).where(col(Township.code) == township)
                    )
                ).first()
                if found is None:
                    raise PufaError(f"unknown township {township!r}")
            made = await create_api_token(
                session, role, township=township, label=label, now=utcnow()
            )
            record(session, "cli", "token.create", made[1].prefix, role=role, township=township)
            return made

    secret, row = _run(ctx, body)
    scope = f" for township {township}" if township else ""
    click.echo(f"API token #{row.id} ({row.prefix}…), role {role}{scope}; shown only now:")
    click.echo(secret)


@token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """Tokens (prefix, role, township, created, revoked); never the secrets."""

    async def body(sessions: Any) -> list[Any]:
        async with sessions() as session:
            return await list_api_tokens(session)

    tz = get_settings(ctx).tz
    rows = [["id", "prefix", "role", "township", "label", "created", "revoked"]]
    for t in _run(ctx, body):
        rows.append(
            [
                str(t.id),
                t.prefix,
                t.role,
                t.township or "",
                t.label,
                local_time(t.created_at, tz),
                local_time(t.revoked_at, tz) if t.revoked_at else "",
            ]
        )
    click.echo(format_table(rows))


@token.command("revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id or prefix (as shown by ``pufa token list``)."""

    async def body(sessions: Any) -> int:
        async with transaction(sessions) as session:
            n = await revoke_api_token(session, token_id, utcnow())
            if n:
                record(session, "cli", "token.revoke", token_id)
            return n

    if not _run(ctx, body):
        raise PufaError(f"no live token {token_id!r}")
    click.echo(f"revoked {token_id}")


commands = [surveys, invite, results, token]
"""The click commands this feature adds to ``pufa``."""
