"""A job process's priority below the TUI that started it (Linux niceness, autogroup too).

A benchmark keeps every core busy; the TUI that follows it then waits for a core
before each frame (F1 took 0.1–0.9 s instead of 0.05). A job started from the TUI
lowers its own priority to `SEGTUI_JOB_NICE`, which the TUI sets: its threads (created
after this, so they inherit it) and, where the kernel shares CPU between sessions
first (autogroups), its session's, since the job runs in a session of its own.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

#: The niceness a job process takes, from the environment it starts in (none: 0).
JOB_NICE_ENV: Final = "SEGTUI_JOB_NICE"
#: Where Linux keeps the niceness of the process's autogroup (its session's CPU share).
AUTOGROUP: Final = Path("/proc/self/autogroup")


def requested_niceness() -> int:
    """The niceness asked for in the environment; 0 when unset or not a whole number."""
    try:
        return max(0, int(os.environ.get(JOB_NICE_ENV, "0")))
    except ValueError:
        return 0


def lower_priority(niceness: int) -> None:
    """Run this process (call it before any thread starts) at `niceness`, if that is lower.

    To that niceness, not by it: a job started by a job already has it. Only ever
    lowered (raising needs privileges). The autogroup only for a session of its own
    (the job's): it is shared by every process of the session, the TUI's too otherwise.
    """
    with contextlib.suppress(OSError):
        os.nice(max(0, niceness - os.nice(0)))
    if os.getsid(0) != os.getpid():
        return
    with contextlib.suppress(OSError, ValueError, IndexError):
        current = int(AUTOGROUP.read_text().split("nice")[1])
        if niceness > current:
            AUTOGROUP.write_text(str(niceness))
