"""The reliability suite: scale, counts, and a real ``pufa serve`` on its own database.

``PUFA_RELIABILITY=full`` (``make reliability``) scales the generated examples up; without it
the same tests run a few hundred requests as part of ``make test``. Each test adds what it did
to :data:`COUNTS`, printed at the end of the run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import fresh_database
from tests.helpers import PUFA, TEST_SECRET, pufa_env, start_serve
from tests.reliability.counts import COUNTS, FULL, scale

__all__ = ["COUNTS", "FULL", "Served", "scale"]


@dataclass
class Served:
    """A running ``pufa serve`` and what a test needs to talk to it."""

    proc: subprocess.Popen[str]
    base: str
    db_url: str
    cwd: Path
    env: dict[str, str]

    def pufa(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``pufa`` command on the same database."""
        return subprocess.run(
            [*PUFA, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120
        )


def serve_env(db_url: str, cwd: Path, **extra: str) -> dict[str, str]:
    """The environment of a test ``pufa serve`` (no chat channels, generous open-link limits
    unless ``extra`` says otherwise)."""
    values = {
        "PUFA_ENV": "test",
        "PUFA_DATABASE_URL": db_url,
        "PUFA_DATA_DIR": str(cwd / "data"),
        "PUFA_SECRET_KEY": TEST_SECRET,
        "PUFA_OPEN_LINK_PER_RESPONDENT_PER_MINUTE": "100000",
        "PUFA_OPEN_LINK_PER_ADDRESS_PER_MINUTE": "1000000",
        **extra,
    }
    return pufa_env(**values)


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop a ``pufa serve`` started by a test (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def served(_template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``pufa serve`` on a database with the demo data and both surveys open."""
    cwd = tmp_path_factory.mktemp("served")
    db_url = fresh_database(_template_db, cwd)
    env = serve_env(db_url, cwd)
    for args in (("seed", "--demo"), ("surveys", "open", "fazhi-2026")):
        done = subprocess.run(
            [*PUFA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    proc, port = start_serve(cwd, env)
    try:
        yield Served(proc, f"http://127.0.0.1:{port}", db_url, cwd, env)
    finally:
        stop(proc)
