"""Headless Chromium for tests, driven over the DevTools protocol on a pipe.

``--remote-debugging-pipe`` makes Chromium read DevTools commands from file
descriptor 3 and write answers to 4, each a JSON text ended by a NUL byte: no
port, no WebSocket library, nothing on the network. The browser runs with a fresh
profile, no network features, and (`Page.open`) the network emulated offline, and
it records every request the page makes, so a test can prove a page loads nothing.

    with Browser.start() as browser:
        page = browser.open(Path("report.html"))
        page.evaluate("document.title")
        page.click("td.cell")
        page.screenshot(Path("shot.png"))
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Browser", "BrowserError", "Page", "chromium_path"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")

_FLAGS = (
    "--headless",
    "--no-sandbox",  # the suite runs as root, where the sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above fd 9, so moving them to fds 3 and 4 cannot clobber one."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class BrowserError(RuntimeError):
    """The browser did not start, or answered a command with an error."""


def chromium_path() -> str | None:
    """The Chromium executable on PATH (``$OTTO_CHROMIUM`` first), or None."""
    named = os.environ.get("OTTO_CHROMIUM")
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium process and its DevTools pipe."""

    def __init__(
        self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int, profile: str
    ) -> None:
        self._proc = proc
        self._out = to_browser
        self._in = from_browser
        self._profile = profile
        self._next_id = 0
        self._pending = b""
        #: every event the browser sent, in order (a page's requests among them)
        self.events: list[dict[str, Any]] = []

    @classmethod
    def start(cls, executable: str | None = None, timeout: float = 60.0) -> Browser:
        """Start Chromium with a fresh profile; `BrowserError` if it cannot answer in ``timeout``."""
        exe = executable or chromium_path()
        if exe is None:
            raise BrowserError(
                "no chromium found on PATH (Debian package 'chromium'; scripts/install-system-deps)"
            )
        profile = tempfile.mkdtemp(prefix="otto-chromium-")
        cmd_r, cmd_w = _high_pipe()  # we write commands, the browser reads them on fd 3
        ans_r, ans_w = _high_pipe()  # the browser writes answers on fd 4
        # bash (dash takes one-digit fds only) puts the pipe ends on fds 3 and 4 (no preexec_fn in a
        # process that runs threads).
        redirect = f'exec "$0" "$@" 3<&{cmd_r} 4>&{ans_w} {cmd_r}<&- {ans_w}>&-'
        proc = subprocess.Popen(
            ["/bin/bash", "-c", redirect, exe, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(cmd_r, ans_w),
            start_new_session=True,
        )
        os.close(cmd_r)
        os.close(ans_w)
        browser = cls(proc, cmd_w, ans_r, profile)
        try:
            browser.send("Browser.getVersion", timeout=timeout)
        except BaseException:
            browser.close()
            raise
        return browser

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("chromium did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium closed its DevTools pipe (exit code {self._proc.poll()})")
            self._pending += chunk
        message, _, self._pending = self._pending.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one DevTools command and wait for its answer (events meanwhile go to `events`)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            result: dict[str, Any] = answer.get("result", {})
            return result

    def wait_event(self, method: str, session: str | None, timeout: float = 30.0) -> dict[str, Any]:
        """The first event ``method`` (of ``session``) not consumed yet, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(index)
            self.events.append(self._read_message(deadline))

    def open(self, path: Path, width: int = 1200, height: int = 900) -> Page:
        """Load a local file in a new tab with the network offline; wait until it has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Network.enable")
        page.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.send("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_event("Page.loadEventFired", session)
        return page

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Page:
    """One tab: evaluate script, click what a person would click, take a screenshot."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression!r}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def click(self, selector: str) -> None:
        """Scroll the first element matching ``selector`` into view and click its middle with the mouse."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"nothing on the page matches {selector!r}")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def requests(self) -> list[str]:
        """The URLs of every request the page made so far."""
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save a PNG of the page (the viewport, or the whole page)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
