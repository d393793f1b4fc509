"""A unit's WeCom group robot: its reminders also go to a WeCom group through the robot's
webhook URL (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``).

The URL is a credential (anyone holding it can post into the group), so it is checked, stored
only sealed (:class:`core.crypto.Sealer`, purpose ``wecom.robot``) on the unit's
:class:`~storage.models_outbox.PushTarget` (channel ``wecom_robot``, address
``robot:<unit code>``), and only ever shown masked. The WeCom sender opens it to post.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.outbox.queue import set_push_target
from core.crypto import Sealer
from storage.models import Unit
from storage.models_outbox import PushTarget

__all__ = [
    "PURPOSE",
    "ROBOT_PATH",
    "disable_robot",
    "mask_robot_url",
    "robot_address",
    "robot_url_problem",
    "set_robot",
]

PURPOSE = "wecom.robot"
ROBOT_PATH = "/cgi-bin/webhook/send"


def robot_address(unit: Unit) -> str:
    """The push-target address of a unit's robot."""
    return f"robot:{unit.code}"


def robot_url_problem(url: str) -> str | None:
    """Why ``url`` is not a WeCom group robot webhook URL, or ``None`` if it is one."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "not a URL"
    if parts.scheme != "https":
        return "the robot URL must start with https://"
    if not parts.hostname or parts.username or parts.password:
        return "the robot URL needs a host (and no user name or password)"
    if parts.path != ROBOT_PATH:
        return f"the robot URL's path must be {ROBOT_PATH}"
    keys = parse_qs(parts.query).get("key", [])
    if len(keys) != 1 or not keys[0].strip():
        return "the robot URL needs its key=… parameter"
    if parts.fragment:
        return "the robot URL cannot have a #fragment"
    return None


def mask_robot_url(url: str) -> str:
    """The URL with its key hidden but for the first and last four characters."""
    parts = urlsplit(url.strip())
    key = (parse_qs(parts.query).get("key") or [""])[0]
    shown = f"{key[:4]}…{key[-4:]}" if len(key) > 12 else "…"
    return f"{parts.scheme}://{parts.hostname}{parts.path}?key={shown}"


async def set_robot(
    session: AsyncSession, secret: bytes, unit: Unit, url: str, locale: str = "zh_CN"
) -> PushTarget:
    """Store the unit's robot (sealed); the unit's pushes go to it from now on."""
    problem = robot_url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return await set_push_target(
        session,
        channel="wecom_robot",
        address=robot_address(unit),
        role="unit",
        unit_id=unit.id,
        locale=locale,
        label=unit.name,
        secret=Sealer(secret, PURPOSE).seal(url.strip()),
    )


async def disable_robot(session: AsyncSession, unit: Unit) -> int:
    """Stop sending the unit's pushes to its robot; return how many targets were switched off."""
    result = await session.execute(
        update(PushTarget)
        .where(
            col(PushTarget.channel) == "wecom_robot",
            col(PushTarget.address) == robot_address(unit),
            col(PushTarget.active),
        )
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
