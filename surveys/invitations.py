"""Single-use invitation tokens for residents: created in batches per township, exported as CSV
(``token,url``, plus ``chat_link`` when the Telegram bot's username is known) and as printable
QR codes.

A token is 16 characters of ``A-Z a-z 0-9 - _``, so the chat deep link ``t_<token>`` (18
characters) fits Telegram's start payload (``A-Z a-z 0-9 _ -``, at most 64).

Only a keyed hash of each token is stored, so the CSV printed at creation is the one chance to
get the tokens; a lost batch is replaced by creating a new one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import segno
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models_surveys import SurveyInvitation
from surveys.respondents import invitation_hash, new_invitation_token

MAX_BATCH = 100_000


CHAT_LINK = "https://t.me/{bot}?start=t_{token}"
"""The Telegram deep link that starts an invitation's survey in chat."""


def chat_invitation_link(bot: str, token: str) -> str:
    """The Telegram deep link for ``token``: ``https://t.me/{bot}?start=t_{token}`` (a leading
    ``@`` of the bot username is dropped)."""
    return CHAT_LINK.format(bot=bot.strip().lstrip("@"), token=token)


def invitation_url(public_url: str, survey: str, token: str) -> str:
    """The link a resident opens (or scans): ``{public_url}/s/{survey}?t={token}``."""
    return f"{public_url.rstrip('/')}/s/{survey}?" + urlencode({"t": token})


async def create_invitations(
    session: AsyncSession,
    secret: bytes,
    survey: str,
    *,
    township: str | None,
    count: int,
    now: datetime,
    batch: str | None = None,
) -> tuple[str, list[str]]:
    """Create ``count`` tokens for ``survey`` and ``township``; return ``(batch, tokens)``."""
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"count must be between 1 and {MAX_BATCH}")
    batch = batch or f"{township or 'all'}-{now:%Y%m%d%H%M%S}"
    tokens = [new_invitation_token() for _ in range(count)]
    rows = [
        {
            "survey": survey,
            "token_hash": invitation_hash(secret, token),
            "township": township,
            "batch": batch[:40],
            "created_at": now,
        }
        for token in tokens
    ]
    for start in range(0, len(rows), 5000):
        await session.execute(insert(SurveyInvitation), rows[start : start + 5000])
    return batch, tokens


def invitations_csv(
    public_url: str, survey: str, tokens: Sequence[str], bot: str | None = None
) -> str:
    """CSV text with a ``token,url`` header and one row per token; with the Telegram ``bot``
    username a third column ``chat_link`` holds each token's chat deep link."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["token", "url", "chat_link"] if bot else ["token", "url"])
    for token in tokens:
        row = [token, invitation_url(public_url, survey, token)]
        if bot:
            row.append(chat_invitation_link(bot, token))
        writer.writerow(row)
    return buffer.getvalue()


def write_qr_codes(
    directory: Path, public_url: str, survey: str, tokens: Sequence[str], kind: str = "png"
) -> list[Path]:
    """One QR image per token in ``directory`` (``{token}.png``, or ``.svg``), scale for
    printing at about 3 cm; returns the files written."""

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for token in tokens:
        path = directory / f"{token}.{kind}"
        segno.make(invitation_url(public_url, survey, token), error="m").save(
            str(path), scale=8, border=2
        )
        written.append(path)
    return written
