"""Coverage of the 法律明白人 target and the weekly shortfall nudge. Pure functions.

The 2020 rural 普法 plan asks for at least 2 liaisons in every village (村/社区) and at least 3 in
every poor village (贫困村) by year end (FACTS §4). Per village: ``count``, ``target``,
``shortfall`` (what is still missing; a village above target does not make up for another
one). Per township: its villages, how many are ``short``, and the sums of counts, targets and
shortfalls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from core.i18n import Translator

__all__ = [
    "NUDGE_LIMIT",
    "Coverage",
    "TownshipCoverage",
    "VillageCoverage",
    "VillageFacts",
    "compute_coverage",
    "iso_week",
    "nudge_due",
    "nudge_text",
    "target_for",
]

TARGET = 2
POOR_TARGET = 3
NUDGE_WEEKDAY = 0  # Monday
NUDGE_HOUR = 9
NUDGE_LIMIT = 20
"""Villages named in one nudge; the rest are counted."""


def target_for(poor: bool) -> int:
    """How many liaisons a village needs: 3 for a poor village, otherwise 2."""
    return POOR_TARGET if poor else TARGET


@dataclass(frozen=True, slots=True)
class VillageFacts:
    """What coverage needs to know about a village."""

    id: int
    township: str
    township_name: str
    village: str
    village_name: str
    kind: str
    poor: bool


@dataclass(frozen=True, slots=True)
class VillageCoverage:
    """One village's figures (keys as in CONTRACT.md, names added)."""

    township: str
    township_name: str
    village: str
    village_name: str
    kind: str
    poor: bool
    count: int
    target: int
    shortfall: int


@dataclass(frozen=True, slots=True)
class TownshipCoverage:
    """One township's totals."""

    township: str
    township_name: str
    villages: int
    short: int
    count: int
    target: int
    shortfall: int


@dataclass(frozen=True, slots=True)
class Coverage:
    """Coverage of every village asked for, and the township totals."""

    villages: tuple[VillageCoverage, ...]
    townships: tuple[TownshipCoverage, ...]
    include_sample: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of CONTRACT.md (CLI ``--format json`` and the API)."""
        return {
            "villages": [asdict(v) for v in self.villages],
            "townships": [asdict(t) for t in self.townships],
            "include_sample": self.include_sample,
        }

    def short_villages(self, township: str) -> list[VillageCoverage]:
        """The villages of ``township`` still below target."""
        return [v for v in self.villages if v.township == township and v.shortfall > 0]


def compute_coverage(
    villages: Iterable[VillageFacts], counts: Mapping[int, int], *, include_sample: bool = False
) -> Coverage:
    """Coverage of ``villages`` given the liaison ``counts`` by village id.

    Villages are ordered by township code, then village code; townships by code.
    """
    rows: list[VillageCoverage] = []
    for v in sorted(villages, key=lambda v: (v.township, v.village)):
        count = counts.get(v.id, 0)
        target = target_for(v.poor)
        rows.append(
            VillageCoverage(
                township=v.township,
                township_name=v.township_name,
                village=v.village,
                village_name=v.village_name,
                kind=v.kind,
                poor=v.poor,
                count=count,
                target=target,
                shortfall=max(0, target - count),
            )
        )
    towns: list[TownshipCoverage] = []
    by_town: dict[str, list[VillageCoverage]] = {}
    for row in rows:
        by_town.setdefault(row.township, []).append(row)
    for code, members in by_town.items():
        towns.append(
            TownshipCoverage(
                township=code,
                township_name=members[0].township_name,
                villages=len(members),
                short=sum(1 for m in members if m.shortfall > 0),
                count=sum(m.count for m in members),
                target=sum(m.target for m in members),
                shortfall=sum(m.shortfall for m in members),
            )
        )
    return Coverage(tuple(rows), tuple(towns), include_sample)


# ---------------------------------------------------------------------------------- nudge


def iso_week(local: datetime) -> str:
    """``2026-W23``: the ISO week of a local time (the nudge's dedupe period)."""
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def nudge_due(local: datetime) -> bool:
    """Whether this week's nudge may go out: from Monday 09:00 local time on."""
    return local.weekday() > NUDGE_WEEKDAY or local.hour >= NUDGE_HOUR


def nudge_text(
    t: Translator, township_name: str, short: Sequence[VillageCoverage], limit: int = NUDGE_LIMIT
) -> str:
    """The weekly reminder to a township's staff naming the villages still short."""
    lines = [
        t.ngettext(
            "法律明白人 this week: {n} village of {township} is still short of its target.",
            "法律明白人 this week: {n} villages of {township} are still short of their targets.",
            len(short),
            township=township_name,
        )
    ]
    for v in short[:limit]:
        lines.append(
            t._(
                "• {village}: {count} of {target}, {shortfall} more needed",
                village=v.village_name,
                count=v.count,
                target=v.target,
                shortfall=v.shortfall,
            )
        )
    if len(short) > limit:
        lines.append(t._("… and {more} more.", more=len(short) - limit))
    lines.append(t._("Send /register to register legal liaisons."))
    return "\n".join(lines)
