"""Start → first frame of the real TUI on the sample workspace (issue #12, item 9).

Each run starts `python -m segtui --workspace WS` in a pseudo-terminal of `--size`
(as a terminal emulator would), reads what it writes, and times two moments from the
start of the process: the first frame (the start screen's footer keys are on the
screen) and the projects listed (the sample's project names are on the screen). Then
it sends `q` and waits for the process to end. The workspace has the sample registered
before the first run; one unmeasured run warms the disk cache and writes the bytecode
cache (in a temporary PYTHONPYCACHEPREFIX, even where PYTHONDONTWRITEBYTECODE is set: an
installed segtui has its .pyc files; `--no-bytecode` measures without them). Prints
median / p95 / max.

With `--f1`, then runs `benchmarks/ui_responsiveness.py` (F1 → help painted while a
benchmark job runs) and prints its figures.

    python benchmarks/tui_startup.py [--runs 10] [--size 120x36] [--f1 [--presses 20]]

To measure another tree (e.g. the code before a change), put its src first:
`PYTHONPATH=/tmp/before/src python benchmarks/tui_startup.py`.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Escape sequences (CSI, OSC, two-byte ESC forms) between the characters a TUI writes.
ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b."
)
#: On the start screen's footer from its first frame (the table is hidden until rows arrive).
FIRST_FRAME_TEXT = "New project"
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StartTimes:
    """Seconds from starting the process to each moment."""

    first_frame: float
    listed: float


def prepared_workspace(folder: Path) -> tuple[Path, list[str]]:
    """A workspace with the sample registered (as a first start leaves it); its project names."""
    from segtui.core.projects import project_rows
    from segtui.core.sample import ensure_sample
    from segtui.core.workspace import Workspace

    root = folder / "ws"
    with Workspace(root) as ws:
        ensure_sample(ws)
        names = [row.name for row in project_rows(ws)]
    if not names:
        raise SystemExit("the sample did not register: no projects in the workspace")
    return root, names


def screen_text(raw: bytes) -> str:
    """The characters written so far, without escape sequences (enough to find a word)."""
    return ESCAPES.sub(b"", raw).decode("utf-8", "replace")


def start_once(
    workspace: Path, names: list[str], size: tuple[int, int], pycache: Path | None
) -> StartTimes:
    """Start the TUI in a pty, time the first frame and the listed projects, then quit."""
    master, slave = pty.openpty()
    columns, lines = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
    env.pop("TEXTUAL", None)  # no devtools
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "segtui", "--workspace", str(workspace)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    raw = b""
    first_frame: float | None = None
    listed: float | None = None
    try:
        while listed is None:
            elapsed = time.perf_counter() - start
            if elapsed > TIMEOUT_S:
                tail = screen_text(raw)[-600:]
                raise SystemExit(f"no project list after {TIMEOUT_S:.0f} s; last output:\n{tail}")
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the process ended and closed the terminal
                raise SystemExit(f"segtui ended early:\n{screen_text(raw)[-600:]}") from None
            now = time.perf_counter() - start
            raw += chunk
            text = screen_text(raw)
            if first_frame is None and FIRST_FRAME_TEXT in text:
                first_frame = now
            if all(name in text for name in names):
                listed = now
        os.write(master, b"q")
        _drain_until_exit(master, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(master)
    return StartTimes(first_frame if first_frame is not None else listed, listed)


def _drain_until_exit(master: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Read the terminal until the process has quit (a full pty would block its last writes)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                os.read(master, 65536)
            except OSError:
                break
    process.wait(timeout=max(0.1, deadline - time.monotonic()))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label}: median {statistics.median(ms):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms, "
        f"min {min(ms):.0f} ms, max {max(ms):.0f} ms ({len(ms)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", default="120x36", help="terminal COLUMNSxLINES")
    parser.add_argument("--f1", action="store_true", help="then F1 latency during a benchmark")
    parser.add_argument("--presses", type=int, default=20, help="F1 presses (with --f1)")
    parser.add_argument("--duration", type=float, default=120.0, help="benchmark job s (--f1)")
    parser.add_argument("--no-bytecode", action="store_true", help="no .pyc cache (compile)")
    args = parser.parse_args()
    columns, lines = (int(n) for n in args.size.lower().split("x"))
    import segtui

    print(f"segtui from {Path(segtui.__file__).parent}, terminal {columns}x{lines}")
    with tempfile.TemporaryDirectory(prefix="segtui-start-bench-") as tmp:
        workspace, names = prepared_workspace(Path(tmp))
        pycache = None if args.no_bytecode else Path(tmp) / "pycache"
        start_once(workspace, names, (columns, lines), pycache)  # warm-up, not counted
        runs = [start_once(workspace, names, (columns, lines), pycache) for _ in range(args.runs)]
    print(summary("start → first frame", [run.first_frame for run in runs]))
    print(summary("start → projects listed", [run.listed for run in runs]))
    if args.f1:
        command = [sys.executable, str(HERE / "ui_responsiveness.py")]
        command += ["--presses", str(args.presses), "--duration", str(args.duration)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
