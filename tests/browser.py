"""Headless Chromium driven over the DevTools protocol, standard library only (tests).

Chromium is started with `--remote-debugging-pipe`: it reads the protocol's JSON
messages, each ended by a NUL byte, from its file descriptor 3 and writes its own to
descriptor 4. One page is opened per `Browser.open`; every event it sends is kept, so
a test can ask which console messages and exceptions the page raised and which URLs
it requested. Each read has a deadline: a stuck browser fails the test, never hangs it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

#: Where Debian's `chromium` package puts it, then whatever PATH has.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
#: Seconds a single protocol call may take (starting a fresh browser on a busy machine: a few).
CALL_TIMEOUT_S = 30.0

Message = dict[str, Any]
#: Headless, no sandbox (containers), no GPU, and nothing that would reach out on its own.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
    "about:blank",
)


def find_chromium() -> str | None:
    """The path of a Chromium-like browser, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(Exception):
    """The browser answered with an error, closed its pipe or did not answer in time."""


class Browser:
    """One headless browser process and the protocol connection to it."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser's ends, moved to fds 10 and up (so neither is 3 or 4 itself), are put on
        # 3 and 4 by posix_spawn's own file actions: no Python code runs in the child.
        reading = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        writing = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        self.pid = os.posix_spawn(
            executable,
            [executable, *BROWSER_FLAGS, f"--user-data-dir={profile}"],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, reading, 3),
                (os.POSIX_SPAWN_DUP2, writing, 4),
            ],
        )
        os.close(reading)
        os.close(writing)
        self._buffer = b""
        self._next_id = 0
        self.events: list[Message] = []
        self.session: str | None = None

    def _read(self, deadline: float) -> Message:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("the browser closed its protocol pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: Message = json.loads(message)
        return parsed

    def call(self, method: str, params: Message | None = None, *, page: bool = True) -> Message:
        """Send a command (to the open page's session unless `page` is False); its result."""
        self._next_id += 1
        message: Message = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            answer = self._read(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            result: Message = answer.get("result", {})
            return result

    def wait_for(self, method: str, timeout_s: float = CALL_TIMEOUT_S) -> Message:
        """The first event named `method` (already received or still to come)."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            self.events.append(self._read(deadline))

    def open(self, url: str, *, width: int = 1280, height: int = 800) -> None:
        """A new page of `width` × `height` CSS pixels, `url` loaded (its load event fired)."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a BrowserError if it throws)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def press(self, key: str, code: str, key_code: int, text: str = "") -> None:
        """A key press and release, as a keyboard sends them, to the focused element (`text`:
        what the key types, e.g. "\\r" for Enter: without it no keypress, so no activation)."""
        down: Message = {"type": "keyDown", "key": key, "code": code}
        down |= {"windowsVirtualKeyCode": key_code} | ({"text": text} if text else {})
        self.call("Input.dispatchKeyEvent", down)
        self.call(
            "Input.dispatchKeyEvent",
            {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": key_code},
        )

    def screenshot(self, path: Path) -> bytes:
        """A PNG of the viewport, written to `path`; its bytes."""
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        path.write_bytes(data)
        return data

    def print_pdf(self) -> bytes:
        """The page as the browser prints it (print media), A4."""
        result = self.call(
            "Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": True}
        )
        return base64.b64decode(result["data"])

    # -- what the page did ------------------------------------------------------

    def console_errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and browser log errors."""
        problems = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
                problems.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                problems.append(str(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") in (
                "error",
                "warning",
            ):
                problems.append(str(params["entry"].get("text")))
        return problems

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for (the page itself included)."""
        return [
            str(event["params"]["request"]["url"])
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        with suppress(BrowserError, OSError):
            self.call("Browser.close", page=False)
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        for fd in (self._to_browser, self._from_browser):
            with suppress(OSError):
                os.close(fd)


@contextmanager
def browser(executable: str) -> Iterator[Browser]:
    """A headless browser with a throw-away profile, closed afterwards."""
    with tempfile.TemporaryDirectory(prefix="segtui-chromium-") as profile:
        started = Browser(executable, Path(profile))
        try:
            yield started
        finally:
            started.close()
