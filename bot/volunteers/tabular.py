"""Reading the spreadsheets township clerks keep: CSV or XLSX, Chinese or English headers.

CSV comes as Excel and WPS save it: UTF-8 with or without a byte-order mark, UTF-16 ("Unicode
text", tab-separated), or GBK on Chinese Windows — decoded as GB 18030, its superset, when the
bytes are not UTF-8. The delimiter (comma, tab, semicolon) is read from the header line. XLSX
is read with openpyxl (first sheet, values not formulas); an old binary ``.xls`` is refused with
a hint to save it again.

:func:`read_table` gives the header and the data rows, each with the row number the clerk sees
in Excel (blank rows are skipped but still counted). :func:`map_headers` matches headers in
either language to field names.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.volunteers.rules import Problem
from core.i18n import N_

__all__ = ["Table", "TableError", "decode_csv", "map_headers", "read_table"]

_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


class TableError(Exception):
    """The file as a whole cannot be read (wrong format, encoding, missing columns)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Table:
    """A sheet: its header cells and data rows as ``(row number, cells)``."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise TableError(
            Problem(
                N_(
                    "The file is neither UTF-8 nor GBK text. Save it from Excel or WPS as"
                    " “CSV UTF-8” or as an .xlsx workbook."
                )
            )
        ) from exc


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _csv_rows(text: str) -> Iterator[list[str]]:
    first_line = text.split("\n", 1)[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    for row in csv.reader(io.StringIO(text, newline=""), dialect):
        yield [cell.strip() for cell in row]


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    # openpyxl is loaded here, not with the module: it takes half a second to import, and
    # every ``pufa`` command (the registry's included) would pay for it at start-up.
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise TableError(
            Problem(N_("The workbook cannot be opened: {error}"), {"error": str(exc)[:200]})
        ) from exc
    try:
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in row]
    finally:
        book.close()


def read_table(data: bytes) -> Table:
    """The header and data rows of a CSV or XLSX file (blank rows skipped, numbers kept)."""
    if data.startswith(_XLS_MAGIC):
        raise TableError(
            Problem(
                N_(
                    "This is an old .xls workbook. Save it as .xlsx (Excel workbook) or CSV and"
                    " import that."
                )
            )
        )
    if data.startswith(_XLSX_MAGIC):
        rows, encoding = _xlsx_rows(data), "xlsx"
    else:
        text, encoding = decode_csv(data)
        rows = _csv_rows(text)
    header: list[str] | None = None
    body: list[tuple[int, list[str]]] = []
    for number, cells in enumerate(rows, start=1):
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        body.append((number, cells))
    if header is None:
        raise TableError(Problem(N_("The file is empty: the first row must hold the headers.")))
    return Table(header, body, encoding)


def _norm(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).strip().lower()
    for junk in ("*", " ", "_", "-", "（", "）", "(", ")", "\ufeff"):
        text = text.replace(junk, "")
    return text


def map_headers(
    header: Sequence[str],
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
    example: str,
) -> dict[str, int]:
    """Field name → column index for the headers found; :class:`TableError` naming the
    required columns that are missing (with the expected headers)."""
    lookup = {_norm(alias): name for name, names in aliases.items() for alias in (name, *names)}
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = lookup.get(_norm(cell))
        if name is not None and name not in found:
            found[name] = index
    missing = [name for name in required if name not in found]
    if missing:
        raise TableError(
            Problem(
                N_(
                    "Missing column(s): {missing}. The first row must hold the headers, in"
                    " Chinese or English: {example}"
                ),
                {
                    "missing": ", ".join(f"{name} ({aliases[name][0]})" for name in missing),
                    "example": example,
                },
            )
        )
    return found
