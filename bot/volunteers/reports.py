"""Coverage and liaison lists as a terminal table, JSON, CSV and an Excel workbook.

Workbooks are written with XlsxWriter (text stays Unicode, so Chinese opens intact in Excel and
WPS); villages short of their target are highlighted. Lists and ordinary exports carry masked
mobile numbers; only :func:`liaison_rows` with ``full=True`` (an administrator's export) has
them whole.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from typing import Any

import xlsxwriter

from bot.volunteers.coverage import Coverage
from bot.volunteers.rules import KIND_LABELS, background_label, gender_label
from bot.volunteers.store import Liaison
from core.i18n import Translator

__all__ = [
    "format_table",
    "liaison_dict",
    "liaison_rows",
    "render_coverage_json",
    "render_coverage_table",
    "render_coverage_xlsx",
    "render_rows_csv",
    "render_rows_xlsx",
]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_table(rows: Sequence[Sequence[str]], right: set[int] | None = None) -> str:
    """Rows of text as aligned columns (CJK characters count double)."""
    right = right or set()
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * max(0, widths[i] - _width(cell))
            cells.append(pad + cell if i in right else cell + pad)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _yes(t: Translator, value: bool) -> str:
    return t._("yes") if value else ""


def _village_cells(t: Translator, cov: Coverage) -> tuple[list[str], list[list[Any]]]:
    header = [
        t._("Township"),
        t._("Village"),
        t._("Code"),
        t._("Type"),
        t._("Poor village"),
        t._("Registered"),
        t._("Target"),
        t._("Shortfall"),
    ]
    rows: list[list[Any]] = [
        [
            v.township_name,
            v.village_name,
            v.village,
            t._(KIND_LABELS.get(v.kind, v.kind)),
            _yes(t, v.poor),
            v.count,
            v.target,
            v.shortfall,
        ]
        for v in cov.villages
    ]
    return header, rows


def _township_cells(t: Translator, cov: Coverage) -> tuple[list[str], list[list[Any]]]:
    header = [
        t._("Township"),
        t._("Code"),
        t._("Villages"),
        t._("Villages short"),
        t._("Registered"),
        t._("Target"),
        t._("Shortfall"),
    ]
    rows: list[list[Any]] = [
        [x.township_name, x.township, x.villages, x.short, x.count, x.target, x.shortfall]
        for x in cov.townships
    ]
    return header, rows


def render_coverage_table(cov: Coverage, t: Translator) -> str:
    """Coverage for a terminal: the townships, then every village."""
    if not cov.villages:
        lines = [t._("No villages yet: import them with pufa import villages FILE.")]
        if not cov.include_sample:
            lines.append(t._("Sample (demo) data is left out; add --include-sample to see it."))
        return "\n".join(lines) + "\n"
    out = [t._("法律明白人 coverage: at least 2 per village, 3 per poor village.")]
    if cov.include_sample:
        out.append(t._("Sample (demo) data is included in these figures."))
    header, rows = _township_cells(t, cov)
    out.append("")
    out.append(format_table([header, *[[str(c) for c in r] for r in rows]], {2, 3, 4, 5, 6}))
    header, rows = _village_cells(t, cov)
    out.append(format_table([header, *[[str(c) for c in r] for r in rows]], {5, 6, 7}))
    return "\n".join(out)


def render_coverage_json(cov: Coverage) -> str:
    """The JSON document of CONTRACT.md."""
    return json.dumps(cov.to_dict(), ensure_ascii=False, indent=2) + "\n"


def _sheet(
    book: Any, name: str, header: list[str], rows: list[list[Any]], short_col: int | None
) -> None:
    sheet = book.add_worksheet(name)
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    sheet.write_row(0, 0, header, bold)
    for r, row in enumerate(rows, start=1):
        sheet.write_row(r, 0, row)
    for c, title in enumerate(header):
        width = max([_width(str(title)), *(_width(str(row[c])) for row in rows)]) + 2
        sheet.set_column(c, c, min(width, 40))
    sheet.freeze_panes(1, 0)
    if rows:
        sheet.autofilter(0, 0, len(rows), len(header) - 1)
    if short_col is not None and rows:
        red = book.add_format({"bg_color": "#FFC7CE", "font_color": "#9C0006"})
        sheet.conditional_format(
            1,
            short_col,
            len(rows),
            short_col,
            {"type": "cell", "criteria": ">", "value": 0, "format": red},
        )


def render_coverage_xlsx(cov: Coverage, t: Translator) -> bytes:
    """A workbook: townships on the first sheet, villages on the second."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    header, rows = _township_cells(t, cov)
    _sheet(book, t._("Townships"), header, rows, 6)
    header, rows = _village_cells(t, cov)
    _sheet(book, t._("Villages"), header, rows, 7)
    if cov.include_sample:
        note = book.add_worksheet(t._("Note"))
        note.write(0, 0, t._("Sample (demo) data is included in these figures."))
    book.close()
    return buffer.getvalue()


def liaison_rows(
    liaisons: Sequence[Liaison], t: Translator, *, full: bool = False
) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a liaison list (numbers masked unless ``full``)."""
    header = [
        t._("Township"),
        t._("Village"),
        t._("Code"),
        t._("Name"),
        t._("Gender"),
        t._("Mobile"),
        t._("Background"),
        t._("Registered on"),
    ]
    rows: list[list[Any]] = []
    for item in liaisons:
        name = item.data.name + (" " + t._("(sample)") if item.sample else "")
        rows.append(
            [
                item.township_name,
                item.village_name,
                item.village,
                name,
                gender_label(t, item.data.gender),
                item.data.mobile if full else item.masked_mobile,
                background_label(t, item.data.background, item.data.note),
                item.created_at.date().isoformat(),
            ]
        )
    return header, rows


def liaison_dict(item: Liaison) -> dict[str, Any]:
    """A liaison for JSON (number masked)."""
    return {
        "id": item.id,
        "township": item.township,
        "township_name": item.township_name,
        "village": item.village,
        "village_name": item.village_name,
        "name": item.data.name,
        "gender": item.data.gender,
        "mobile": item.masked_mobile,
        "background": item.data.background,
        "background_note": item.data.note,
        "sample": item.sample,
        "registered_at": item.created_at.isoformat(),
    }


def render_rows_xlsx(sheet_name: str, header: list[str], rows: list[list[Any]]) -> bytes:
    """One sheet of rows as a workbook."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    _sheet(book, sheet_name, header, rows, None)
    book.close()
    return buffer.getvalue()


def render_rows_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    """Rows as CSV in UTF-8 with a byte-order mark (Excel and WPS open it correctly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")
