"""Helpers shared by tests of several features (fixtures live in the conftest files)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import seed_all
from core.feature import Catalogs, SeedReport
from core.settings import Settings
from storage.db import transaction

TEST_SECRET = "test-secret-key-not-for-production-0123456789"

FULL_RELIABILITY = os.environ.get("PUFA_RELIABILITY", "") == "full"
"""``make reliability`` (``PUFA_RELIABILITY=full``): property tests run many more examples."""


def examples(quick: int) -> int:
    """Hypothesis examples for a property test: ``quick`` in ``make test``, ten times as many
    in ``make reliability``."""
    return quick * 10 if FULL_RELIABILITY else quick


def plain_settings(database_url: str = "sqlite+aiosqlite:///./unused.db") -> Settings:
    """Settings with the test secret key (for helpers that have no fixture at hand)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, secret_key=SecretStr(TEST_SECRET), env="test"
    )


async def seed_db(
    sessions: async_sessionmaker[AsyncSession],
    *,
    demo: bool = False,
    settings: Settings | None = None,
) -> SeedReport:
    """Load the catalog of every feature (and the demo data), as ``pufa seed [--demo]`` does."""
    async with transaction(sessions) as session:
        return await seed_all(session, settings or plain_settings(), Catalogs(), demo=demo)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PUFA = [sys.executable, "-m", "bot"]
"""The ``pufa`` command, run as a real process."""


def pufa_env(**values: str) -> dict[str, str]:
    """The environment of a ``pufa`` process: this one's without any ``PUFA_*`` variable,
    text logs, then ``values`` (e.g. ``PUFA_DATABASE_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update({"PUFA_LOG_FORMAT": "text", **values})
    return env


def start_serve(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """A real ``pufa serve`` on a free port, returned once ``/healthz`` answers 200."""
    port = free_port()
    proc = subprocess.Popen(
        [*PUFA, "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"pufa serve did not start: {err[-2000:]}")
        time.sleep(0.2)
