"""Bulk import of villages and of liaisons from a clerk's spreadsheet.

Both imports work in two passes. First every row is checked — the fields with the same rules
as the chat dialog (:mod:`bot.volunteers.rules`), then against the file itself (a code or number
twice) and the database (unknown village, number already registered in the township, a
township outside the caller's scope). Then, only if nothing was refused (or the caller chose
``skip_bad``) and this is not a dry run, the good rows are written in the caller's transaction:
all of them or none.

- Villages are matched by code: a known code is updated in place (name, type, 贫困村 flag,
  township), a new one created; townships named in the file are created (or renamed). A village
  that moves to another township takes its liaisons along, unless a number would then be
  registered twice in that township.
- Liaisons are matched by mobile number within the township: a row identical to the stored
  liaison is "unchanged", the same person (village and name) with another gender or
  background is updated, and any other use of a registered number is refused.

Every created or changed record is written to the audit log (names and numbers masked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.volunteers.rules import (
    Problem,
    mask_name,
    parse_background,
    parse_code,
    parse_gender,
    parse_mobile,
    parse_name,
    parse_poor,
    parse_village_kind,
    parse_village_name,
    township_kind,
)
from bot.volunteers.store import Keys, LiaisonData, audit_snapshot, sealed_values
from bot.volunteers.tabular import Table, map_headers
from core.i18n import N_, Translator
from storage.models import AuditLog, Township, Village
from storage.models_volunteers import Volunteer
from storage.types import table_of

__all__ = [
    "VILLAGE_HEADERS",
    "VOLUNTEER_HEADERS",
    "ImportResult",
    "RowProblem",
    "import_villages",
    "import_volunteers",
    "parse_village_rows",
    "parse_volunteer_rows",
]

Progress = Callable[[int], None]

VILLAGE_HEADERS: Mapping[str, Sequence[str]] = {
    "township_code": ("镇街代码", "镇街编码", "乡镇代码", "乡镇街道代码"),
    "township_name": ("镇街名称", "镇街", "乡镇", "乡镇名称", "乡镇街道"),
    "village_code": ("村居代码", "村居编码", "村代码", "村委会代码"),
    "village_name": ("村居名称", "村居", "村名", "村委会名称"),
    "kind": ("类型", "村居类型"),
    "poor": ("贫困村", "是否贫困村"),
}
VILLAGE_REQUIRED = ("township_code", "township_name", "village_code", "village_name")
VOLUNTEER_HEADERS: Mapping[str, Sequence[str]] = {
    "village_code": ("村居代码", "村居编码", "村代码"),
    "name": ("姓名",),
    "gender": ("性别",),
    "mobile": ("手机号", "手机号码", "手机", "联系电话", "电话"),
    "background": ("身份", "人员类别", "类别"),
}
VOLUNTEER_REQUIRED = tuple(VOLUNTEER_HEADERS)
_BATCH = 500


def _noop(_n: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A refused row: its number as in Excel, the column (as headed in the file) and why."""

    row: int
    column: str
    problem: Problem

    def render(self, t: Translator) -> str:
        """``第 3 行（手机号）：…`` / ``row 3 (mobile): …``."""
        reason = self.problem.render(t)
        if self.column:
            return t._(
                "row {row} ({column}): {reason}", row=self.row, column=self.column, reason=reason
            )
        return t._("row {row}: {reason}", row=self.row, reason=reason)


@dataclass
class ImportResult:
    """What an import did (or, in a dry run or after refusals, would do)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    townships_created: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    written: bool = False

    @property
    def refused(self) -> int:
        """How many rows were refused (a row with several problems counts once)."""
        return len({p.row for p in self.problems})


def _cells(cells: list[str], columns: Mapping[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index] if index is not None and index < len(cells) else ""


def _check(
    problems: list[RowProblem], row: int, header: str, value: Any
) -> Any:  # value or None after recording the problem
    if isinstance(value, Problem):
        problems.append(RowProblem(row, header, value))
        return None
    return value


# ---------------------------------------------------------------------------------- villages


@dataclass(frozen=True, slots=True)
class VillageRow:
    """A valid village row."""

    row: int
    township_code: str
    township_name: str
    code: str
    name: str
    kind: str
    poor: bool


def parse_village_rows(
    table: Table, progress: Progress = _noop
) -> tuple[list[VillageRow], list[RowProblem]]:
    """Check every village row; the good rows and the problems (pure, no database)."""
    example = "township_code/镇街代码, township_name/镇街名称, village_code/村居代码, " + (
        "village_name/村居名称, kind/类型, poor/贫困村"
    )
    columns = map_headers(table.header, VILLAGE_HEADERS, VILLAGE_REQUIRED, example)
    head = {name: table.header[i] for name, i in columns.items()}
    good: list[VillageRow] = []
    problems: list[RowProblem] = []
    seen_codes: dict[str, int] = {}
    town_names: dict[str, tuple[str, int]] = {}
    for number, cells in table.rows:
        progress(1)
        before = len(problems)
        got = {name: _cells(cells, columns, name) for name in VILLAGE_HEADERS}
        town_code = _check(
            problems, number, head["township_code"], parse_code(got["township_code"])
        )
        town_name = _check(
            problems, number, head["township_name"], parse_village_name(got["township_name"])
        )
        code = _check(problems, number, head["village_code"], parse_code(got["village_code"]))
        name = _check(
            problems, number, head["village_name"], parse_village_name(got["village_name"])
        )
        kind = (
            _check(
                problems, number, head.get("kind", "kind"), parse_village_kind(got["kind"], name)
            )
            if name is not None
            else None
        )
        poor = _check(problems, number, head.get("poor", "poor"), parse_poor(got["poor"]))
        if code is not None and code in seen_codes:
            problems.append(
                RowProblem(
                    number,
                    head["village_code"],
                    Problem(
                        N_("The village code {code} is already used on row {first}."),
                        {"code": code, "first": seen_codes[code]},
                    ),
                )
            )
        if town_code is not None and town_name is not None:
            first = town_names.setdefault(town_code, (town_name, number))
            if first is not None and first[0] != town_name:
                problems.append(
                    RowProblem(
                        number,
                        head["township_name"],
                        Problem(
                            N_(
                                "The township {code} is called “{first_name}” on row {first} and"
                                " “{name}” here."
                            ),
                            {
                                "code": town_code,
                                "first_name": first[0],
                                "first": first[1],
                                "name": town_name,
                            },
                        ),
                    )
                )
        if len(problems) > before:
            continue
        seen_codes[code] = number
        good.append(VillageRow(number, town_code, town_name, code, name, str(kind), bool(poor)))
    return good, problems


async def _villages_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Village]:
    wanted = list(set(codes))
    found: dict[str, Village] = {}
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        for village in (
            await session.execute(select(Village).where(col(Village.code).in_(chunk)))
        ).scalars():
            found[village.code] = village
    return found


async def _moves_conflict(
    session: AsyncSession, moves: list[tuple[VillageRow, Village]], towns: Mapping[str, Township]
) -> list[RowProblem]:
    """Moving a village's liaisons into a township where one of their numbers is registered."""
    problems: list[RowProblem] = []
    if not moves:
        return problems
    moving_ids = {v.id for _, v in moves}
    rows = (
        await session.execute(
            select(
                col(Volunteer.village_id), col(Volunteer.township_id), col(Volunteer.mobile_hash)
            )
        )
    ).all()
    by_town: dict[int, set[str]] = {}
    for village_id, township_id, mobile_hash in rows:
        if village_id not in moving_ids:
            by_town.setdefault(township_id, set()).add(mobile_hash)
    by_village: dict[int, set[str]] = {}
    for village_id, _tid, mobile_hash in rows:
        if village_id in moving_ids:
            by_village.setdefault(village_id, set()).add(mobile_hash)
    for row, village in moves:
        town = towns.get(row.township_code)
        target_id = town.id if town is not None else None
        mine = by_village.get(village.id or 0, set())
        there = by_town.setdefault(target_id or -1, set())
        if mine & there:
            problems.append(
                RowProblem(
                    row.row,
                    "",
                    Problem(
                        N_(
                            "Moving {village} to township {township} would register the same"
                            " mobile number twice there; remove the duplicate liaison first."
                        ),
                        {"village": row.code, "township": row.township_code},
                    ),
                )
            )
        else:
            there |= mine
    return problems


async def import_villages(
    session: AsyncSession,
    table: Table,
    *,
    actor: str,
    now: datetime,
    skip_bad: bool = False,
    dry_run: bool = False,
    progress: Progress = _noop,
) -> ImportResult:
    """Check and (unless refused or a dry run) write the villages of ``table``."""
    good, problems = parse_village_rows(table, progress)
    result = ImportResult(rows=len(table.rows))
    towns = {
        t.code: t
        for t in (
            await session.execute(
                select(Township).where(
                    col(Township.code).in_(list({r.township_code for r in good}))
                )
            )
        ).scalars()
    }
    existing = await _villages_by_code(session, (r.code for r in good))
    town_codes_by_id = {t.id: t.code for t in towns.values()}
    missing_ids = {v.township_id for v in existing.values()} - set(town_codes_by_id)
    if missing_ids:
        for t in (
            await session.execute(select(Township).where(col(Township.id).in_(list(missing_ids))))
        ).scalars():
            town_codes_by_id[t.id] = t.code
    moves = [
        (r, existing[r.code])
        for r in good
        if r.code in existing
        and town_codes_by_id.get(existing[r.code].township_id) != r.township_code
    ]
    move_problems = await _moves_conflict(session, moves, towns)
    refused_rows = {p.row for p in move_problems}
    good = [r for r in good if r.row not in refused_rows]
    problems = sorted([*problems, *move_problems], key=lambda p: p.row)
    result.problems = problems

    new_towns: dict[str, VillageRow] = {}
    renamed: list[tuple[Township, VillageRow]] = []
    for r in good:
        town = towns.get(r.township_code)
        if town is None:
            new_towns.setdefault(r.township_code, r)
        elif town.name != r.township_name and all(t is not town for t, _ in renamed):
            renamed.append((town, r))
    result.townships_created = len(new_towns)
    creates: list[VillageRow] = []
    updates: list[tuple[VillageRow, Village]] = []
    for r in good:
        village = existing.get(r.code)
        if village is None:
            creates.append(r)
        elif (
            village.name,
            village.kind,
            village.poor,
            village.sample,
            town_codes_by_id.get(village.township_id),
        ) != (r.name, r.kind, r.poor, False, r.township_code):
            updates.append((r, village))
        else:
            result.unchanged += 1
    result.created, result.updated = len(creates), len(updates)
    if dry_run or (problems and not skip_bad):
        return result

    audit: list[dict[str, Any]] = []
    for code, r in new_towns.items():
        town = Township(
            code=code, name=r.township_name, kind=township_kind(r.township_name), created_at=now
        )
        session.add(town)
        towns[code] = town
        audit.append(_audit_row(now, actor, "township.create", code, after={"name": town.name}))
    for town, r in renamed:
        audit.append(
            _audit_row(
                now,
                actor,
                "township.update",
                town.code,
                before={"name": town.name},
                after={"name": r.township_name},
            )
        )
        town.name = r.township_name
        town.kind = township_kind(r.township_name)
    await session.flush()

    village_table = table_of(Village)
    new_rows = [
        {
            "code": r.code,
            "township_id": towns[r.township_code].id,
            "name": r.name,
            "kind": r.kind,
            "poor": r.poor,
            "sample": False,
            "created_at": now,
        }
        for r in creates
    ]
    for start in range(0, len(new_rows), _BATCH):
        chunk = new_rows[start : start + _BATCH]
        await session.execute(insert(village_table), chunk)
        progress(len(chunk))
    audit.extend(
        _audit_row(now, actor, "village.create", r.code, after=_village_detail(r)) for r in creates
    )
    if updates:
        statement = (
            update(village_table)
            .where(village_table.c.id == bindparam("p_id"))
            .values(
                township_id=bindparam("p_township_id"),
                name=bindparam("p_name"),
                kind=bindparam("p_kind"),
                poor=bindparam("p_poor"),
                sample=False,
            )
        )
        params = [
            {
                "p_id": v.id,
                "p_township_id": towns[r.township_code].id,
                "p_name": r.name,
                "p_kind": r.kind,
                "p_poor": r.poor,
            }
            for r, v in updates
        ]
        await session.execute(statement.execution_options(synchronize_session=False), params)
        moving = {m.id for _, m in moves}
        moved = [(towns[r.township_code].id, v.id) for r, v in updates if v.id in moving]
        if moved:
            await session.execute(
                update(table_of(Volunteer))
                .where(table_of(Volunteer).c.village_id == bindparam("p_village"))
                .values(township_id=bindparam("p_town"))
                .execution_options(synchronize_session=False),
                [{"p_village": vid, "p_town": tid} for tid, vid in moved],
            )
        progress(len(updates))
        for r, v in updates:
            before = {
                "township": town_codes_by_id.get(v.township_id),
                "name": v.name,
                "kind": v.kind,
                "poor": v.poor,
                "sample": v.sample,
            }
            audit.append(
                _audit_row(
                    now, actor, "village.update", r.code, before=before, after=_village_detail(r)
                )
            )
    audit.append(
        _audit_row(
            now,
            actor,
            "village.import",
            "",
            rows=result.rows,
            created=result.created,
            updated=result.updated,
            refused=result.refused,
        )
    )
    await _write_audit(session, audit)
    result.written = True
    return result


def _village_detail(r: VillageRow) -> dict[str, Any]:
    return {"township": r.township_code, "name": r.name, "kind": r.kind, "poor": r.poor}


def _audit_row(
    now: datetime, actor: str, action: str, subject: str, **detail: Any
) -> dict[str, Any]:
    return {"at": now, "actor": actor, "action": action, "subject": subject, "detail": detail}


async def _write_audit(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    audit_table = table_of(AuditLog)
    for start in range(0, len(rows), _BATCH):
        await session.execute(insert(audit_table), rows[start : start + _BATCH])


# ---------------------------------------------------------------------------------- liaisons


async def _village_name(session: AsyncSession, village_id: int) -> str:
    village = await session.get(Village, village_id)
    return village.name if village is not None else str(village_id)


@dataclass(frozen=True, slots=True)
class VolunteerRow:
    """A valid liaison row."""

    row: int
    village_code: str
    data: LiaisonData


def parse_volunteer_rows(
    table: Table, progress: Progress = _noop
) -> tuple[list[VolunteerRow], list[RowProblem]]:
    """Check every liaison row with the dialog's rules (pure, no database)."""
    example = "village_code/村居代码, name/姓名, gender/性别, mobile/手机号, background/身份"
    columns = map_headers(table.header, VOLUNTEER_HEADERS, VOLUNTEER_REQUIRED, example)
    head = {name: table.header[i] for name, i in columns.items()}
    good: list[VolunteerRow] = []
    problems: list[RowProblem] = []
    for number, cells in table.rows:
        progress(1)
        before = len(problems)
        got = {name: _cells(cells, columns, name) for name in VOLUNTEER_HEADERS}
        code = _check(problems, number, head["village_code"], parse_code(got["village_code"]))
        name = _check(problems, number, head["name"], parse_name(got["name"]))
        gender = _check(problems, number, head["gender"], parse_gender(got["gender"]))
        mobile = _check(problems, number, head["mobile"], parse_mobile(got["mobile"]))
        background = _check(
            problems, number, head["background"], parse_background(got["background"])
        )
        if len(problems) > before:
            continue
        good.append(
            VolunteerRow(
                number, code, LiaisonData(name, gender, mobile, background[0], background[1])
            )
        )
    return good, problems


async def import_volunteers(
    session: AsyncSession,
    keys: Keys,
    table: Table,
    *,
    actor: str,
    now: datetime,
    township: str | None = None,
    skip_bad: bool = False,
    dry_run: bool = False,
    progress: Progress = _noop,
) -> ImportResult:
    """Check and (unless refused or a dry run) write the liaisons of ``table``; with
    ``township``, rows for villages of other townships are refused (a staff member's scope)."""
    parsed, problems = parse_volunteer_rows(table, progress)
    result = ImportResult(rows=len(table.rows))
    villages = await _villages_by_code(session, (r.village_code for r in parsed))
    town_ids = {v.township_id for v in villages.values()}
    towns = {
        t.id: t
        for t in (
            await session.execute(select(Township).where(col(Township.id).in_(list(town_ids))))
        ).scalars()
    }
    stored: dict[tuple[int, str], Volunteer] = {}
    if town_ids:
        for row in (
            await session.execute(
                select(Volunteer).where(col(Volunteer.township_id).in_(list(town_ids)))
            )
        ).scalars():
            stored[(row.township_id, row.mobile_hash)] = row
    seen: dict[tuple[int, str], int] = {}
    creates: list[tuple[VolunteerRow, Village, str]] = []
    updates: list[tuple[VolunteerRow, Village, Volunteer, LiaisonData]] = []
    columns = map_headers(table.header, VOLUNTEER_HEADERS, VOLUNTEER_REQUIRED, "")
    mobile_header = table.header[columns["mobile"]]
    code_header = table.header[columns["village_code"]]
    for r in parsed:
        village = villages.get(r.village_code)
        if village is None:
            problems.append(
                RowProblem(
                    r.row,
                    code_header,
                    Problem(
                        N_("There is no village with the code {code}: import the villages first."),
                        {"code": r.village_code},
                    ),
                )
            )
            continue
        town = towns[village.township_id]
        if township is not None and town.code != township:
            problems.append(
                RowProblem(
                    r.row,
                    code_header,
                    Problem(
                        N_(
                            "The village {code} belongs to {township}; you may only register"
                            " liaisons of {own}."
                        ),
                        {"code": r.village_code, "township": town.name, "own": township},
                    ),
                )
            )
            continue
        digest = keys.mobile_hash(r.data.mobile)
        key = (village.township_id, digest)
        if key in seen:
            problems.append(
                RowProblem(
                    r.row,
                    mobile_header,
                    Problem(
                        N_(
                            "The same mobile number is on row {first}; a number counts once in a"
                            " township."
                        ),
                        {"first": seen[key]},
                    ),
                )
            )
            continue
        seen[key] = r.row
        existing = stored.get(key)
        if existing is None:
            creates.append((r, village, digest))
            continue
        old = LiaisonData(
            name=keys.name.open(existing.name_sealed),
            gender=existing.gender,
            mobile=r.data.mobile,
            background=existing.background,
            note=existing.background_note,
        )
        if existing.village_id != village.id or old.name != r.data.name:
            problems.append(
                RowProblem(
                    r.row,
                    mobile_header,
                    Problem(
                        N_(
                            "This mobile number is already registered in {township} for"
                            " {village} ({name})."
                        ),
                        {
                            "township": town.name,
                            "village": await _village_name(session, existing.village_id),
                            "name": mask_name(old.name),
                        },
                    ),
                )
            )
        elif old == r.data:
            result.unchanged += 1
        else:
            updates.append((r, village, existing, old))
    problems.sort(key=lambda p: p.row)
    result.problems = problems
    result.created, result.updated = len(creates), len(updates)
    if dry_run or (problems and not skip_bad):
        return result

    volunteer_table = table_of(Volunteer)
    audit: list[dict[str, Any]] = []
    statement = insert(volunteer_table).returning(
        volunteer_table.c.id, volunteer_table.c.township_id, volunteer_table.c.mobile_hash
    )
    created_ids: dict[tuple[int, str], int] = {}
    for start in range(0, len(creates), _BATCH):
        chunk = creates[start : start + _BATCH]
        values = [
            {
                "township_id": village.township_id,
                "village_id": village.id,
                "sample": False,
                "created_by": actor,
                "created_at": now,
                "updated_at": now,
                **sealed_values(keys, r.data),
            }
            for r, village, _digest in chunk
        ]
        for vid, tid, digest in (await session.execute(statement, values)).all():
            created_ids[(tid, digest)] = vid
        progress(len(chunk))
    for r, village, digest in creates:
        audit.append(
            _audit_row(
                now,
                actor,
                "volunteer.create",
                f"volunteer:{created_ids.get((village.township_id, digest), '')}",
                after=audit_snapshot(village.code, r.data),
            )
        )
    for r, village, row, old in updates:
        for column, value in sealed_values(keys, r.data).items():
            setattr(row, column, value)
        row.updated_at = now
        audit.append(
            _audit_row(
                now,
                actor,
                "volunteer.update",
                f"volunteer:{row.id}",
                before=audit_snapshot(village.code, old),
                after=audit_snapshot(village.code, r.data),
            )
        )
    await session.flush()
    progress(len(updates))
    audit.append(
        _audit_row(
            now,
            actor,
            "volunteer.import",
            township or "",
            rows=result.rows,
            created=result.created,
            updated=result.updated,
            refused=result.refused,
        )
    )
    await _write_audit(session, audit)
    result.written = True
    return result
