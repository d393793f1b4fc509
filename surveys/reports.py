"""Satisfaction reports: a terminal table, JSON, and an Excel workbook with a native chart.

The workbook (XlsxWriter) has a summary sheet — indicator, n, rate, 95% interval, target,
verdict, how many answered "don't know" (not part of n) — with a column chart of the rates
against their targets drawn by Excel itself, then one sheet per indicator with the breakdown
by township and by channel. Text is stored as Unicode in the XML, so Chinese opens intact in
Excel and WPS.

Every report says whether sample (demo) responses are in its figures. Text that came from
people (free-text comments, names) is written as text, never as a formula: XLSX cells are
written as strings (and the workbook never turns strings into formulas), and CSV cells that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading apostrophe (:func:`spreadsheet_text`).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from typing import Any

import xlsxwriter

from core.i18n import N_, Translator
from surveys.results import Comment, IndicatorRow, SurveyReport
from surveys.schema import DEFAULT_SCALE, SCALE_CODES, UNKNOWN_CODE, UNKNOWN_OPTION, localized

VERDICT_LABELS = {
    "met": N_("met"),
    "not_met": N_("not met"),
    "inconclusive": N_("inconclusive"),
}
CHANNEL_LABELS = {
    "h5": N_("mobile page"),
    "api": N_("API"),
    "telegram": "Telegram",
    "wecom": N_("WeCom"),
    "console": N_("console"),
}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make Excel or WPS read a CSV cell as a formula."""


def spreadsheet_text(value: str) -> str:
    """``value`` made safe for a CSV cell: a leading apostrophe when a spreadsheet would
    otherwise read it as a formula (OWASP's advice for CSV injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def sample_note(t: Translator, report: SurveyReport) -> str | None:
    """The line saying whether sample (demo) responses are in the figures, or ``None`` when
    the survey has none."""
    if report.sample_included:
        return t._(
            "Includes {n} sample (demo) responses: these figures are not real results.",
            n=report.sample_responses,
        )
    if report.sample_responses:
        return t._(
            "{n} sample (demo) responses are not counted (--include-sample counts them).",
            n=report.sample_responses,
        )
    return None


def _level_label(level: str, locale: str) -> str:
    option = next((o for o in (*DEFAULT_SCALE, UNKNOWN_OPTION) if o.code == level), None)
    return localized(option.label, locale) if option else level


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    space = " " * max(0, width - _width(text))
    return space + text if right else text + space


def format_table(rows: Sequence[Sequence[str]], right: set[int] | None = None) -> str:
    """Rows of text as aligned columns (CJK characters count double)."""
    right = right or set()
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(_pad(cell, widths[i], i in right) for i, cell in enumerate(row)).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pct(t: Translator, value: float | None) -> str:
    return "—" if value is None else t.percent(value)


def verdict_text(t: Translator, row: IndicatorRow) -> str:
    """The verdict in words, with the further responses needed when inconclusive."""
    result = row.result
    text = t._(VERDICT_LABELS[str(result.verdict)])
    if str(result.verdict) == "inconclusive" and result.more_needed:
        text += " " + t._("(more responses needed: about {n})", n=result.more_needed)
    elif str(result.verdict) == "inconclusive" and result.n:
        text += " " + t._("(no realistic sample settles it)")
    return text


def _target_text(t: Translator, row: IndicatorRow) -> str:
    if row.result.target is None:
        return t._("significant rise")
    return "≥ " + t.percent(row.result.target, 0)


def _indicator_cells(t: Translator, row: IndicatorRow) -> list[str]:
    r = row.result
    return [
        row.title,
        str(r.n),
        _pct(t, r.rate),
        f"{_pct(t, r.ci_low)}–{_pct(t, r.ci_high)}" if r.n else "—",
        _target_text(t, row),
        verdict_text(t, row),
        str(r.unknown),
    ]


def render_table(report: SurveyReport, locale: str, by: str | None = None) -> str:
    """The report as a plain-text table for the terminal."""
    t = Translator(locale)
    header = [
        t._("Indicator"),
        "n",
        t._("Rate"),
        t._("95% interval"),
        t._("Target"),
        t._("Verdict"),
        t._("Don't know"),
    ]
    rows = [header] + [_indicator_cells(t, row) for row in report.indicators]
    out = [f"{report.title} ({report.survey})"]
    note = sample_note(t, report)
    if note:
        out.append(note)
    out.append(format_table(rows, right={1, 2, 6}))
    if by in ("township", "channel"):
        groups = report.by_township if by == "township" else report.by_channel
        for code, indicator_rows in sorted(groups.items(), key=lambda kv: kv[0] or "~"):
            name = _group_name(t, report, by, code)
            out.append("")
            out.append(name)
            out.append(
                format_table(
                    [header] + [_indicator_cells(t, r) for r in indicator_rows], right={1, 2, 6}
                )
            )
    return "\n".join(out) + "\n"


def _group_name(t: Translator, report: SurveyReport, by: str, code: str | None) -> str:
    if by == "township":
        if code is None:
            return t._("No township")
        return f"{report.township_names.get(code, code)} ({code})"
    label = CHANNEL_LABELS.get(code or "", code or "")
    return t._(label) if label else ""


def render_json(report: SurveyReport, by: str | None = None) -> str:
    """The report as JSON (same shape as the results API)."""
    return json.dumps(report.to_dict(by), ensure_ascii=False, indent=2) + "\n"


def render_xlsx(report: SurveyReport, locale: str) -> bytes:
    """The report as an XLSX workbook (summary with chart, one sheet per indicator)."""

    t = Translator(locale)
    buffer = io.BytesIO()
    # never turn a string into a formula (XlsxWriter's write() would for text starting with "=")
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    book.set_properties({"title": report.title, "subject": report.survey})
    bold = book.add_format({"bold": True, "bg_color": "#F2DCDB", "border": 1, "text_wrap": True})
    pct = book.add_format({"num_format": "0.0%", "border": 1})
    num = book.add_format({"num_format": "0", "border": 1})
    dec = book.add_format({"num_format": "0.0", "border": 1})
    text = book.add_format({"border": 1, "text_wrap": True, "valign": "top"})
    title_fmt = book.add_format({"bold": True, "font_size": 14})

    headers = [
        t._("Indicator"),
        t._("Code"),
        "n",
        t._("Satisfied"),
        t._("Rate"),
        t._("95% lower bound"),
        t._("95% upper bound"),
        t._("Target"),
        t._("Verdict"),
        t._("More responses needed"),
        t._("Weighted index"),
        t._("Don't know"),
    ]

    def write_rows(sheet: Any, first_row: int, rows: Sequence[tuple[str, IndicatorRow]]) -> int:
        for col, head in enumerate(headers):
            sheet.write(first_row, col, head, bold)
        for i, (label, row) in enumerate(rows, start=first_row + 1):
            r = row.result
            sheet.write_string(i, 0, label, text)
            sheet.write_string(i, 1, r.code, text)
            sheet.write_number(i, 2, r.n, num)
            sheet.write_number(i, 3, r.satisfied, num)
            for col, value in (
                (4, r.rate),
                (5, r.ci_low if r.n else None),
                (6, r.ci_high if r.n else None),
                (7, r.target),
            ):
                if value is None:
                    sheet.write_blank(i, col, None, pct)
                else:
                    sheet.write_number(i, col, value, pct)
            if r.target is None:
                sheet.write_string(i, 7, t._("significant rise"), text)
            sheet.write_string(i, 8, t._(VERDICT_LABELS[str(r.verdict)]), text)
            if r.more_needed is None:
                sheet.write_blank(i, 9, None, num)
            else:
                sheet.write_number(i, 9, r.more_needed, num)
            if row.index is None:
                sheet.write_blank(i, 10, None, dec)
            else:
                sheet.write_number(i, 10, row.index, dec)
            sheet.write_number(i, 11, r.unknown, num)
        return first_row + len(rows)

    summary = book.add_worksheet(t._("Summary")[:31])
    summary.write_string(0, 0, f"{report.title} ({report.survey})", title_fmt)
    note = sample_note(t, report)
    if note:
        summary.write_string(1, 0, note, book.add_format({"bold": report.sample_included}))
    last = write_rows(summary, 2, [(row.title, row) for row in report.indicators])
    summary.set_column(0, 0, 46)
    summary.set_column(1, 1, 20)
    summary.set_column(2, 11, 12)
    summary.freeze_panes(3, 1)

    if report.indicators:
        chart = book.add_chart({"type": "column"})
        sheet_name = summary.get_name()
        chart.add_series(
            {
                "name": t._("Rate"),
                "categories": [sheet_name, 3, 1, last, 1],
                "values": [sheet_name, 3, 4, last, 4],
                "fill": {"color": "#9B1C1C"},
                "data_labels": {"value": True, "num_format": "0%"},
            }
        )
        line = book.add_chart({"type": "line"})
        line.add_series(
            {
                "name": t._("Target"),
                "categories": [sheet_name, 3, 1, last, 1],
                "values": [sheet_name, 3, 7, last, 7],
                "line": {"none": True},
                "marker": {"type": "dash", "size": 12, "fill": {"color": "#1D4ED8"}},
            }
        )
        chart.combine(line)
        chart.set_title({"name": t._("Satisfaction against target")})
        chart.set_y_axis({"min": 0, "max": 1, "num_format": "0%"})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 900, "height": 380})
        summary.insert_chart(last + 2, 0, chart)

    used: set[str] = {summary.get_name()}
    for index, row in enumerate(report.indicators):
        name = row.result.code[:31]
        if name in used:
            name = f"{index}-{name}"[:31]
        used.add(name)
        sheet = book.add_worksheet(name)
        sheet.write_string(0, 0, row.title, title_fmt)
        current = 2
        sheet.write(current, 0, t._("By township"), title_fmt)
        town_rows = []
        for code, rows in sorted(report.by_township.items(), key=lambda kv: kv[0] or "~"):
            match = next((r for r in rows if r.result.code == row.result.code), None)
            if match is not None:
                town_rows.append((_group_name(t, report, "township", code), match))
        current = write_rows(sheet, current + 1, town_rows) + 2
        sheet.write(current, 0, t._("By channel"), title_fmt)
        channel_rows = []
        for code, rows in sorted(report.by_channel.items()):
            match = next((r for r in rows if r.result.code == row.result.code), None)
            if match is not None:
                channel_rows.append((_group_name(t, report, "channel", code), match))
        current = write_rows(sheet, current + 1, channel_rows) + 2
        sheet.write(current, 0, t._("Answers per level"), title_fmt)
        ordered = sorted(row.levels.items(), key=lambda kv: SCALE_CODES.index(kv[0]))
        if row.result.unknown:
            ordered.append((UNKNOWN_CODE, row.result.unknown))
        for offset, (level, count) in enumerate(ordered):
            sheet.write_string(current + 1 + offset, 0, _level_label(level, locale), text)
            sheet.write_number(current + 1 + offset, 1, count, num)
        sheet.set_column(0, 0, 30)
        sheet.set_column(1, 1, 20)
        sheet.set_column(2, 11, 12)
    if report.comments:
        sheet = book.add_worksheet(t._("Comments")[:31])
        heads = [t._("Question"), t._("Township"), t._("Channel"), t._("Date"), t._("Comment")]
        for col, head in enumerate(heads):
            sheet.write_string(0, col, head, bold)
        for i, comment in enumerate(report.comments, start=1):
            for col, value in enumerate(_comment_cells(t, report, comment)):
                sheet.write_string(i, col, value, text)
        sheet.set_column(0, 3, 16)
        sheet.set_column(4, 4, 60)
    book.close()
    return buffer.getvalue()


def _comment_cells(t: Translator, report: SurveyReport, comment: Comment) -> list[str]:
    town = _group_name(t, report, "township", comment.township)
    return [
        comment.question,
        town,
        _group_name(t, report, "channel", comment.channel),
        comment.date,
        comment.text,
    ]


def comments_csv(report: SurveyReport, locale: str) -> str:
    """The free-text answers of ``report`` as CSV (question, township, channel, date, text),
    every cell safe from formula interpretation."""
    t = Translator(locale)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["question", "township", "channel", "date", "text"])
    for comment in report.comments:
        writer.writerow([spreadsheet_text(v) for v in _comment_cells(t, report, comment)])
    return buffer.getvalue()
