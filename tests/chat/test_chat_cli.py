"""``pufa invite …`` and ``pufa chat`` as an operator and a staff member use them: real
processes on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from storage.db import create_engine, session_factory
from storage.models import ChatIdentity, Township, Unit

PUFA = [sys.executable, "-m", "bot"]


def _run(
    db_url: str, cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_DATABASE_URL=db_url,
        PUFA_LOG_FORMAT="text",
        PUFA_LOG_LEVEL="WARNING",
        PUFA_DATA_DIR=str(cwd / "data"),
    )
    return subprocess.run(
        [*PUFA, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_invite_codes_bind_roles_once(db_url: str, tmp_path: Path) -> None:
    assert _run(db_url, tmp_path, "seed", "--demo").returncode == 0

    unit = _run(db_url, tmp_path, "invite", "unit", "司法局")
    assert unit.returncode == 0, unit.stderr
    unit_code = unit.stdout.strip().splitlines()[-1]
    assert f"start=b_{unit_code}" in unit.stdout
    staff = _run(db_url, tmp_path, "invite", "staff", "--township", "zbp")
    assert staff.returncode == 0, staff.stderr
    staff_code = staff.stdout.strip().splitlines()[-1]

    bad_unit = _run(db_url, tmp_path, "invite", "unit", "不存在局")
    assert bad_unit.returncode == 1
    assert bad_unit.stderr.startswith("pufa: ") and len(bad_unit.stderr.splitlines()) == 1
    bad_town = _run(db_url, tmp_path, "invite", "staff", "--township", "nope")
    assert bad_town.returncode == 1
    assert _run(db_url, tmp_path, "invite", "staff").returncode == 2  # --township is required

    # The console runs the same dialogs: binding with the staff code gives the staff role.
    chat = _run(
        db_url, tmp_path, "chat", "--lang", "zh_CN", stdin=f"/bind {staff_code}\n/help\nquit\n"
    )
    assert chat.returncode == 0, chat.stderr
    assert "绑定成功" in chat.stdout
    assert "/survey" in chat.stdout
    # The same code a second time is refused and changes nothing.
    again = _run(db_url, tmp_path, "chat", "--lang", "en", stdin=f"/bind {staff_code}\nquit\n")
    assert again.returncode == 0, again.stderr
    assert "That invite code has already been used" in again.stdout

    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            identities = (await session.execute(select(ChatIdentity))).scalars().all()
            towns = dict((await session.execute(select(Township.id, Township.code))).all())
            units = dict((await session.execute(select(Unit.id, Unit.code))).all())
    finally:
        await engine.dispose()
    staff_ids = [i for i in identities if i.role == "staff"]
    assert len(staff_ids) == 1
    assert towns[staff_ids[0].township_id] == "zbp"
    assert not any(i.role == "unit" for i in identities)  # the unit code was never used
    assert "sfj" in units.values()


async def test_chat_as_unit_speaks_for_the_unit_whose_lecture_comes_next(
    db_url: str, tmp_path: Path
) -> None:
    """Trying the unit's side needs a lecture to confirm: ``--as unit`` takes the unit of the
    next scheduled lecture of the sample rota, not simply the first unit (whose lectures
    may all be past)."""
    assert _run(db_url, tmp_path, "seed", "--demo").returncode == 0
    chat = _run(db_url, tmp_path, "chat", "--as", "unit", "--lang", "zh_CN", stdin="duty\nquit\n")
    assert chat.returncode == 0, chat.stderr
    assert "贵单位近期的讲课安排" in chat.stdout, chat.stdout
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            identity = (
                await session.execute(
                    select(ChatIdentity).where(ChatIdentity.external_id == "local-unit")
                )
            ).scalar_one()
            unit = await session.get(Unit, identity.unit_id)
    finally:
        await engine.dispose()
    assert unit is not None and unit.name in chat.stdout
