"""The appraisal report: per unit and committee, what the rota asked and what was done.

For a year (local dates), every one of the 40 rota places (20 per committee) gets a row, even
without a turn yet:

- ``assigned`` — lectures scheduled for the unit (cancelled meetings do not count);
- ``confirmed_on_time`` — confirmed for the meeting's final time before the coordinator would
  have been told (five days before, by default, or a day after the unit learnt of a lecture
  scheduled or moved at short notice);
- ``topic_on_time`` — topic sent by the content deadline (two days before; likewise a day after
  a late notice);
- ``delivered`` / ``missed`` — as marked after the meeting.

A lecture counts for the unit recorded when it was marked, otherwise the unit on duty. Sample
(demo) meetings are left out unless asked for, and the report then says so. Rendered as a
terminal table, JSON (CONTRACT.md's shape, plus names and positions) or an XLSX workbook
written with XlsxWriter (strings as strings, never formulas, so Chinese opens intact in Excel
and WPS).
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Any

import xlsxwriter

from bot.rota.calendar import COMMITTEES
from bot.rota.plan import Offsets, escalation_times
from bot.rota.store import Snapshot
from bot.rota.texts import committee_name
from core.i18n import Translator

__all__ = [
    "ReportRow",
    "compute",
    "format_table",
    "render_json",
    "render_table",
    "render_xlsx",
    "title",
]

FIGURES = ("assigned", "confirmed_on_time", "topic_on_time", "delivered", "missed")


@dataclass
class ReportRow:
    """One rota place's figures for the year."""

    unit: str
    unit_name: str
    unit_name_en: str
    committee: str
    position: int
    assigned: int = 0
    confirmed_on_time: int = 0
    topic_on_time: int = 0
    delivered: int = 0
    missed: int = 0


def compute(
    snapshot: Snapshot, year: int, tz: tzinfo, offsets: Offsets, *, include_sample: bool = False
) -> list[ReportRow]:
    """The figures of every rota place for ``year``."""
    rows: dict[tuple[str, int], ReportRow] = {}
    order: list[ReportRow] = []
    for committee in COMMITTEES:
        for position, unit_id in enumerate(snapshot.rotas.get(committee, []), start=1):
            unit = snapshot.units[unit_id]
            row = ReportRow(unit.code, unit.name, unit.name_en, committee, position)
            rows.setdefault((committee, unit_id), row)
            order.append(row)
    for slot in snapshot.slots.values():
        meeting = slot.meeting
        if meeting.sample and not include_sample:
            continue
        if meeting.starts_at.astimezone(tz).year != year:
            continue
        found = rows.get((meeting.committee, snapshot.credited_unit(slot)))
        if found is None:
            continue
        row = found
        row.assigned += 1
        reply = snapshot.reply(slot)
        confirm_by, topic_by = escalation_times(slot, offsets, tz)
        if (
            reply is not None
            and reply.confirmed_for(meeting)
            and reply.confirmed_at is not None
            and reply.confirmed_at <= confirm_by
        ):
            row.confirmed_on_time += 1
        if reply is not None and reply.topic_at is not None and reply.topic_at <= topic_by:
            row.topic_on_time += 1
        if meeting.outcome == "delivered":
            row.delivered += 1
        elif meeting.outcome == "missed":
            row.missed += 1
    return order


def render_json(rows: Sequence[ReportRow], year: int, include_sample: bool) -> str:
    """``{"year", "include_sample", "units": [...]}``."""
    body: dict[str, Any] = {
        "year": year,
        "include_sample": include_sample,
        "units": [asdict(row) for row in rows],
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def _headers(t: Translator) -> list[str]:
    return [
        t._("Committee"),
        t._("Period"),
        t._("Unit"),
        t._("Assigned"),
        t._("Confirmed on time"),
        t._("Topic on time"),
        t._("Delivered"),
        t._("Missed"),
    ]


def _cells(t: Translator, row: ReportRow) -> list[str]:
    name = row.unit_name_en if t.locale != "zh_CN" and row.unit_name_en else row.unit_name
    return [
        committee_name(t, row.committee),
        str(row.position),
        name,
        *(str(getattr(row, f)) for f in FIGURES),
    ]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_table(rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Rows of text as aligned columns (CJK characters count double)."""
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - _width(cell))
            cells.append(pad + cell if i in right else cell + pad)
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def title(t: Translator, year: int, include_sample: bool) -> str:
    """The report's title line."""
    text = t._("普法学法微课堂 — lectures of {year}", year=year)
    if include_sample:
        text += " " + t._("(sample meetings included)")
    return text


def render_table(rows: Sequence[ReportRow], year: int, t: Translator, include_sample: bool) -> str:
    """The report as aligned columns for the terminal."""
    lines = [_headers(t)] + [_cells(t, row) for row in rows]
    totals = [t._("Total"), "", ""] + [str(sum(getattr(r, f) for r in rows)) for f in FIGURES]
    lines.append(totals)
    right = {1, 3, 4, 5, 6, 7}
    return f"{title(t, year, include_sample)}\n{format_table(lines, right)}\n"


def render_xlsx(rows: Sequence[ReportRow], year: int, t: Translator, include_sample: bool) -> bytes:
    """The report as an XLSX workbook (one sheet; text written as text)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    book.set_properties({"title": title(t, year, include_sample)})
    head = book.add_format({"bold": True, "bg_color": "#F2DCDB", "border": 1, "text_wrap": True})
    text = book.add_format({"border": 1})
    number = book.add_format({"border": 1, "num_format": "0"})
    bold = book.add_format({"bold": True, "font_size": 14})
    sheet = book.add_worksheet(t._("Lectures {year}", year=year)[:31])
    sheet.write_string(0, 0, title(t, year, include_sample), bold)
    for column, header in enumerate(_headers(t)):
        sheet.write_string(2, column, header, head)
    for index, row in enumerate(rows, start=3):
        cells = _cells(t, row)
        sheet.write_string(index, 0, cells[0], text)
        sheet.write_number(index, 1, row.position, number)
        sheet.write_string(index, 2, cells[2], text)
        for offset, figure in enumerate(FIGURES, start=3):
            sheet.write_number(index, offset, getattr(row, figure), number)
    last = 3 + len(rows)
    sheet.write_string(last, 0, t._("Total"), head)
    for offset, figure in enumerate(FIGURES, start=3):
        sheet.write_number(last, offset, sum(getattr(r, figure) for r in rows), number)
    sheet.set_column(0, 0, 26)
    sheet.set_column(1, 1, 8)
    sheet.set_column(2, 2, 30)
    sheet.set_column(3, 7, 14)
    sheet.freeze_panes(3, 3)
    book.close()
    return buffer.getvalue()
