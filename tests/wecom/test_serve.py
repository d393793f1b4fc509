"""``pufa serve`` as an operator runs it, with WeCom configured: a real process, real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.fakes.wecom_api import WeComCallbacks, random_aes_key
from tests.helpers import pufa_env, start_serve

PUFA = [sys.executable, "-m", "bot"]


def _serve(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    return start_serve(cwd, pufa_env(**env))


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return out, err


def test_serve_with_wecom_unreachable_starts_answers_callbacks_and_stops(
    db_url: str, tmp_path: Path
) -> None:
    aes_key = random_aes_key()
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_WECOM_CORP_ID": "wwpufaserve",
        "PUFA_WECOM_AGENT_ID": "1000002",
        "PUFA_WECOM_SECRET": "secret",
        "PUFA_WECOM_TOKEN": "servetoken",
        "PUFA_WECOM_AES_KEY": aes_key,
        "PUFA_WECOM_API_BASE": "http://127.0.0.1:1",  # nothing listens there
    }
    proc, port = _serve(tmp_path, env)
    try:
        callbacks = WeComCallbacks("servetoken", aes_key, "wwpufaserve")
        params, body = callbacks.encrypt(callbacks.text("zhang", "help"))
        query = "&".join(f"{k}={v}" for k, v in params.items())
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/wecom/callback?{query}", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and response.read() == b""
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                health = json.loads(r.read())
            state = health.get("channels", {}).get("wecom", {}).get("state")
            if state == "unreachable" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert health["status"] == "ok" and health["db"] == "ok"
        assert health["channels"]["wecom"]["state"] == "unreachable"
    finally:
        out, _ = _stop(proc)
    assert f"wecom:    callback http://127.0.0.1:{port}/wecom/callback" in out
    assert "shutting down" in out


def test_serve_says_why_wecom_is_off_when_partly_configured(db_url: str, tmp_path: Path) -> None:
    env = {
        "PUFA_DATABASE_URL": db_url,
        "PUFA_WECOM_CORP_ID": "wwpufaserve",
        "PUFA_WECOM_SECRET": "secret",
    }
    proc, port = _serve(tmp_path, env)
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/wecom/callback", data=b"<xml/>", method="POST"
        )
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("the callback should not exist")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        out, err = _stop(proc)
    line = "wecom:    off — PUFA_WECOM_AGENT_ID, PUFA_WECOM_TOKEN, PUFA_WECOM_AES_KEY not set"
    assert line in out
    assert "PUFA_WECOM_AGENT_ID, PUFA_WECOM_TOKEN, PUFA_WECOM_AES_KEY not set" in err
