"""A minimal Chrome DevTools Protocol driver for Debian's headless chromium (no downloads).

Starts ``/usr/bin/chromium`` with a fresh profile, connects to its page target over a websocket
and offers the few actions the browser test needs: navigate, tap an element (a real touch-like
mouse press at its centre), type text, read values and take screenshots.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import websockets

CHROMIUM = os.environ.get("PUFA_CHROMIUM", "/usr/bin/chromium")
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065"
    " MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin"
    " NetType/WIFI Language/zh_CN ABI/arm64"
)
"""The user agent of WeChat's in-app browser on Android, so the page is served as to it."""

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def chromium_path() -> str | None:
    """The chromium executable, if installed."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


class Browser:
    """One headless chromium with one page, driven over CDP."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.ws: Any = None
        self.profile = tempfile.mkdtemp(prefix="pufa-chromium-")
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, width: int, height: int) -> None:
        """Launch chromium and attach to its first page with a mobile viewport."""
        exe = chromium_path()
        assert exe, "chromium is not installed"
        self.proc = await asyncio.create_subprocess_exec(
            exe,
            *FLAGS,
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        browser_ws = None
        async with asyncio.timeout(30):
            while browser_ws is None:
                line = (await self.proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("chromium exited before DevTools started")
                match = re.search(r"DevTools listening on (ws://\S+)", line)
                if match:
                    browser_ws = match.group(1)
        port = re.search(r":(\d+)/", browser_ws).group(1)  # type: ignore[union-attr]
        page_ws = await asyncio.to_thread(_first_page, int(port))
        self.ws = await websockets.connect(page_ws, max_size=50 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2,
            mobile=True,
        )
        await self.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=1)
        await self.send(
            "Emulation.setUserAgentOverride", userAgent=WECHAT_UA, acceptLanguage="zh-CN,zh;q=0.9"
        )

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message and message["id"] in self._pending:
                self._pending.pop(message["id"]).set_result(message)
            else:
                await self._events.put(message)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result (raise on a protocol error)."""
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(30):
            reply = await future
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        """Wait for the next event called ``method``."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._events.get()
                if event.get("method") == method:
                    return event

    def _drain(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self._drain()
        await self.send("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page (test-side inspection only)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def tap(self, selector: str) -> None:
        """Scroll ``selector`` into view and press at its centre like a finger would."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2,"
            " w: r.width, h: r.height}; })()"
        )
        assert box is not None, f"no element {selector}"
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    async def box(self, selector: str) -> dict[str, float]:
        """Width and height of an element in CSS pixels."""
        return await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {w: r.width, h: r.height}; })()"
        )

    async def type_text(self, text: str) -> None:
        """Type into the focused element."""
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path, full_page: bool = False) -> None:
        """Save a PNG of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        shot = await self.send("Page.captureScreenshot", **params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        """Stop chromium and remove its profile."""
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def _first_page(port: int) -> str:
    import time
    import urllib.request

    deadline = time.monotonic() + 15
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:
            targets = json.loads(resp.read())
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise RuntimeError("chromium has no page target")
        time.sleep(0.1)
