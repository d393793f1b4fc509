"""Charts as inline SVG, drawn from plain figures (pure functions, no I/O).

The text of a chart is real SVG text in the page, drawn by the browser with the fonts it has
(the stylesheet names the usual Chinese fonts of Windows, macOS, Android and Linux first), so
Chinese renders in any browser without images or scripts. Horizontal positions are
percentages of the chart's width, so bars stretch to the screen while text keeps its size: as
readable on a 360 px phone as on a desktop. Shapes carry classes, not inline styles, so the
console's Content-Security-Policy (no inline style or script) holds; the stylesheet colours
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["RateBar", "count_chart", "rate_chart"]

_LABEL_H = 20
_BAR_H = 18
_ROW_GAP = 12
_ROW_H = _LABEL_H + _BAR_H + _ROW_GAP


@dataclass(frozen=True, slots=True)
class RateBar:
    """One indicator in a rate chart: rate and interval as fractions, ``target`` ``None``
    when the indicator has no numeric target, ``verdict`` ``met``/``not_met``/
    ``inconclusive``, ``value_text`` the rate as printed (e.g. ``83.4%``)."""

    label: str
    rate: float | None
    ci_low: float
    ci_high: float
    target: float | None
    verdict: str
    value_text: str


def _pct(fraction: float) -> str:
    return f"{min(max(fraction, 0.0), 1.0) * 100:.2f}%"


def _open(rows: int, title: str) -> list[str]:
    height = max(rows, 1) * _ROW_H
    return [
        f'<svg class="chart" width="100%" height="{height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def _label(top: int, label: str) -> str:
    return f'<text class="chart-label" x="0" y="{top + 15}">{escape(label)}</text>'


def _value(y: int, value: str) -> str:
    # At the right end of the bar's row, with a white halo so it reads over a full bar.
    return (
        f'<text class="chart-value" x="100%" dx="-4" y="{y + _BAR_H - 3}" '
        f'text-anchor="end">{escape(value)}</text>'
    )


def rate_chart(bars: Sequence[RateBar], title: str, target_label: str) -> Markup:
    """Horizontal bars of indicator rates (0–100%) with their 95% interval as a whisker and
    the target as a dashed line; each label sits above its bar, so long titles fit."""
    parts = _open(len(bars), title)
    for i, bar in enumerate(bars):
        top = i * _ROW_H
        y = top + _LABEL_H
        parts.append(_label(top, bar.label))
        parts.append(f'<rect class="chart-track" x="0" y="{y}" width="100%" height="{_BAR_H}"/>')
        if bar.rate is not None:
            parts.append(
                f'<rect class="chart-bar v-{escape(bar.verdict)}" x="0" y="{y}" '
                f'width="{_pct(bar.rate)}" height="{_BAR_H}"/>'
            )
            low, high, mid = _pct(bar.ci_low), _pct(bar.ci_high), y + _BAR_H // 2
            parts.append(
                f'<line class="chart-ci" x1="{low}" x2="{high}" y1="{mid}" y2="{mid}"/>'
                f'<line class="chart-ci" x1="{low}" x2="{low}" y1="{y + 3}" y2="{y + 13}"/>'
                f'<line class="chart-ci" x1="{high}" x2="{high}" y1="{y + 3}" y2="{y + 13}"/>'
            )
        if bar.target is not None:
            x = _pct(bar.target)
            parts.append(
                f'<line class="chart-target" x1="{x}" x2="{x}" y1="{y - 3}" '
                f'y2="{y + _BAR_H + 3}"><title>{escape(target_label)}</title></line>'
            )
        parts.append(_value(y, bar.value_text))
    parts.append("</svg>")
    return Markup("".join(parts))


def count_chart(items: Sequence[tuple[str, int]], title: str) -> Markup:
    """Horizontal bars of counts (responses per township or channel); the largest fills the
    width."""
    parts = _open(len(items), title)
    top_count = max((n for _label, n in items), default=0) or 1
    for i, (label, count) in enumerate(items):
        top = i * _ROW_H
        y = top + _LABEL_H
        parts.append(_label(top, label))
        parts.append(
            f'<rect class="chart-bar v-count" x="0" y="{y}" '
            f'width="{_pct(count / top_count)}" height="{_BAR_H}"/>'
        )
        parts.append(_value(y, str(count)))
    parts.append("</svg>")
    return Markup("".join(parts))
