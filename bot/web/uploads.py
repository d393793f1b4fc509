"""Import files in the console: streamed in under a size limit, then kept, sealed, until the
account that uploaded them confirms or discards the import.

An upload form posts ``multipart/form-data`` with its CSRF token in the action URL
(:mod:`bot.web.security`), so :func:`read_upload` reads the body itself, a chunk at a time,
and stops at :data:`MAX_UPLOAD`. The sheet read from the file is stored as a
:class:`~storage.models_console.ConsoleUpload`: sealed with a key of its own (it holds names
and mobile numbers), reachable by a random token only by the account that uploaded it, for
:data:`UPLOAD_TTL`. An account keeps one upload of each kind: a new one replaces the last.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.volunteers.tabular import Table
from core.crypto import Sealer, SealError
from core.i18n import N_, Translator
from storage.models_console import ConsoleUpload

__all__ = [
    "MAX_UPLOAD",
    "UPLOAD_TTL",
    "UploadProblem",
    "Uploaded",
    "discard_upload",
    "load_upload",
    "read_upload",
    "save_upload",
]

MAX_UPLOAD = 4 * 1024 * 1024
"""Largest import file the console takes (the command line takes any size)."""
UPLOAD_TTL = timedelta(hours=2)
"""How long a checked import waits for its confirmation."""
PURPOSE = "console.upload"
_CHUNK = 64 * 1024


class UploadProblem(Exception):
    """An upload that cannot be used: a message id and its parameters."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = params

    def render(self, t: Translator) -> str:
        """The message in ``t``'s language."""
        return t._(self.msgid, **self.params)


@dataclass(frozen=True, slots=True)
class Uploaded:
    """The file of an upload form: its name as the browser gave it, and its bytes."""

    filename: str
    data: bytes


async def read_upload(request: web.Request, field: str = "file") -> Uploaded:
    """The file in form field ``field`` of a multipart POST, read up to :data:`MAX_UPLOAD`
    bytes; :class:`UploadProblem` when there is none, it is empty or too large. The file's
    name is percent-decoded (browsers escape quotes in it, some clients everything else)."""
    if request.content_type != "multipart/form-data":
        raise UploadProblem(N_("Choose a file to import."))
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name != field:
                continue
            data = bytearray()
            while chunk := await part.read_chunk(_CHUNK):
                data.extend(chunk)
                if len(data) > MAX_UPLOAD:
                    raise UploadProblem(
                        N_("The file is larger than {mb} MB: split it, or use pufa import."),
                        mb=MAX_UPLOAD // (1024 * 1024),
                    )
            if not data:
                break
            return Uploaded(unquote(part.filename or "")[:200], bytes(data))
    except (ValueError, BadHttpMessage) as exc:  # a body that is not multipart as it says
        raise UploadProblem(
            N_("The upload arrived damaged or incomplete: choose the file and send it again.")
        ) from exc
    raise UploadProblem(N_("Choose a file to import."))


def _sealer(secret: bytes) -> Sealer:
    return Sealer(secret, PURPOSE)


def _dump(table: Table) -> str:
    return json.dumps(
        {"header": table.header, "rows": table.rows, "encoding": table.encoding},
        ensure_ascii=False,
    )


def _load(text: str) -> Table:
    raw = json.loads(text)
    rows = [(int(number), [str(c) for c in cells]) for number, cells in raw["rows"]]
    return Table([str(h) for h in raw["header"]], rows, str(raw["encoding"]))


async def save_upload(
    session: AsyncSession,
    secret: bytes,
    *,
    account_id: int,
    kind: str,
    township: str | None,
    filename: str,
    table: Table,
    now: datetime,
) -> str:
    """Keep ``table`` for the account's confirmation; the token that finds it again. Uploads
    past :data:`UPLOAD_TTL`, and the account's earlier upload of this kind, are deleted."""
    await session.execute(
        delete(ConsoleUpload).where(
            (col(ConsoleUpload.created_at) < now - UPLOAD_TTL)
            | ((col(ConsoleUpload.account_id) == account_id) & (col(ConsoleUpload.kind) == kind))
        )
    )
    token = secrets.token_urlsafe(24)
    session.add(
        ConsoleUpload(
            token=token,
            account_id=account_id,
            kind=kind,
            township=township,
            filename=filename,
            rows=len(table.rows),
            sealed=_sealer(secret).seal(_dump(table)),
            created_at=now,
        )
    )
    await session.flush()
    return token


async def load_upload(
    session: AsyncSession,
    secret: bytes,
    token: str,
    *,
    account_id: int,
    kind: str,
    now: datetime,
) -> tuple[ConsoleUpload, Table] | None:
    """The account's upload of ``kind`` with this token and its sheet, or ``None`` (unknown,
    another account's, another kind, expired, or not sealed with this key)."""
    row = (
        await session.execute(select(ConsoleUpload).where(col(ConsoleUpload.token) == token))
    ).scalar_one_or_none()
    if (
        row is None
        or row.account_id != account_id
        or row.kind != kind
        or row.created_at < now - UPLOAD_TTL
    ):
        return None
    try:
        table = _load(_sealer(secret).open(row.sealed))
    except (SealError, ValueError, KeyError, TypeError):
        return None
    return row, table


async def discard_upload(session: AsyncSession, row: ConsoleUpload) -> None:
    """Forget an upload (after it was written, or when the account discards it)."""
    await session.execute(delete(ConsoleUpload).where(col(ConsoleUpload.id) == row.id))
