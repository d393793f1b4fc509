"""Create or drop a PostgreSQL database for a test run: ``pgdb.py create|drop URL``."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from sqlalchemy.engine import make_url


async def main(action: str, url: str) -> None:
    """Connect to the server's ``postgres`` database and create or drop the named one."""
    parsed = make_url(url)
    name = parsed.database
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing database name {name!r}")
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        if action == "create":
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        elif action == "drop":
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            raise SystemExit(f"unknown action {action!r}")
    finally:
        await conn.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: pgdb.py create|drop URL")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
