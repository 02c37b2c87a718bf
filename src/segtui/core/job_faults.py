"""Why a job ended badly, in words: a storage fault, a kill, a crash, a restart.

A job's error names the real cause, so that the user knows what to do: "disk full"
and where, not "iostream error"; "killed" or "the machine restarted", not only
"interrupted". (Workspace-level storage faults have their own module; this one
names the faults met while a job writes its files.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from segtui.core.errors import SegtuiError
from segtui.core.fault_kinds import (
    DISK_FAULTS,
    Fault,
    disk_of,
    errno_fault,
    file_size_limited,
    says_write_failed,
    text_fault,
)
from segtui.core.records import JobRecord
from segtui.core.types import JobState

_HINTS = {
    Fault.DISK_FULL: "Free some space on that disk and run the job again.",
    Fault.QUOTA: "Free some of your disk quota (or have it raised) and run the job again.",
    Fault.FILE_TOO_LARGE: "A file-size limit (ulimit -f) stops the job's files from growing: "
    "raise it and run the job again.",
    Fault.READ_ONLY: "Make it writable (or use another workspace) and run the job again.",
    Fault.DENIED: "Give yourself write access to it and run the job again.",
    Fault.IO_ERROR: "The disk reported an error: check it before running the job again.",
    # A write failed, and the disk does not say why (its partial file may be gone again).
    Fault.WRITE_FAILED: "That disk has {free} free now: check that the job's files fit there, "
    "then run the job again.",
}

#: The lines the job process writes to its log at its end (recovery reads them).
FAILED_LINE = "failed: "
CANCELLED_LINE = "cancelled"
DONE_LINE = "done: "
UNRECORDED_LINE = "could not record the end of the job: "
_CRASH_LINE = "Fatal Python error: "


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the errors it was raised from (bounded: a chain can loop)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < 20:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _inside(path: object, root: Path) -> bool:
    if not isinstance(path, str | bytes | os.PathLike):
        return False
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(root.resolve())
    except (OSError, ValueError):
        return False


def storage_cause(exc: BaseException, root: Path) -> Fault | None:
    """The disk fault behind `exc` (disk full, read-only file system, ...), or None.

    A permission error counts only on a path in the workspace `root` (an input file
    the job may not read is not the disk's fault).
    """
    for link in _chain(exc):
        fault = errno_fault(link.errno) if isinstance(link, OSError) else None
        if fault is Fault.DENIED:
            if _inside(getattr(link, "filename", None), root):
                return fault
        elif fault is not None:
            return fault
        named = text_fault(str(link), DISK_FAULTS - {Fault.DENIED})
        if named is not None:
            return named
    if says_write_failed(str(link) for link in _chain(exc)):
        return disk_state(root) or Fault.WRITE_FAILED
    return None


def disk_state(root: Path) -> Fault | None:
    """What stops writes under `root` now: read-only, full, a file-size limit (or None)."""
    disk = disk_of(root)
    if disk is None:
        return None
    if disk.read_only:
        return Fault.READ_ONLY
    if disk.low:
        return Fault.DISK_FULL
    if file_size_limited():
        return Fault.FILE_TOO_LARGE
    return None


def _detail(exc: BaseException) -> str:
    """`exc` in one line: its type and first line of text."""
    lines = str(exc).strip().splitlines()
    first = lines[0][:300] if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def failure_message(exc: BaseException, root: Path, stage: str = "") -> str:
    """A job's error for `exc`: the storage fault it comes from first, when there is one.

    `stage` is what the job was doing (its last progress stage), named with the fault.
    """
    cause = storage_cause(exc, root)
    if cause is not None:
        detail = (exc.message if isinstance(exc, SegtuiError) else _detail(exc)).rstrip(".")
        during = f" during “{stage}”" if stage else ""
        disk = disk_of(root)
        free = None if disk is None else disk.free_bytes
        hint = _HINTS[cause].format(free="?" if free is None else f"{free / 1e6:,.1f} MB")
        return f"{cause[0].upper()}{cause[1:]}{during} (writing in {root}): {detail}. {hint}"
    if isinstance(exc, SegtuiError):
        return str(exc)
    return f"{_detail(exc)} (details in the job log)"


def _last_words(tail: str) -> tuple[str, str]:
    """The job's last end line in its log ('failed: …', 'cancelled', …) and a refused record."""
    unrecorded = ""
    for line in reversed(tail.splitlines()):
        if line.startswith(UNRECORDED_LINE) and not unrecorded:
            unrecorded = line.removeprefix(UNRECORDED_LINE).strip()
        elif line.startswith((FAILED_LINE, DONE_LINE, _CRASH_LINE)) or line == CANCELLED_LINE:
            return line, unrecorded
    return "", unrecorded


def death_record(job: JobRecord, tail: str, boot_time: float) -> tuple[JobState, str | None]:
    """The state and error to record for a running job whose process is gone.

    `tail` is the end of its log, where the job wrote how it ended when the workspace
    could not record it; `boot_time` tells a restart from a kill.
    """
    last, unrecorded = _last_words(tail)
    if last.startswith(FAILED_LINE):
        return JobState.FAILED, last.removeprefix(FAILED_LINE).strip() or "The job failed."
    if last == CANCELLED_LINE:
        return JobState.CANCELLED, None
    where = f"“{job.stage}”" if job.stage and job.stage != "Starting" else "its start"
    if last.startswith(DONE_LINE):
        why = f": {unrecorded}" if unrecorded else ""
        return JobState.INTERRUPTED, f"The job finished, but its end could not be recorded{why}"
    if last.startswith(_CRASH_LINE):
        crash = last.removeprefix(_CRASH_LINE).strip()
        return JobState.INTERRUPTED, (
            f"The job's process crashed during {where} ({crash}; the job log has the details). "
            "Run the job again."
        )
    if job.started_at is not None and boot_time > job.started_at:
        cause = "the machine restarted"
    else:
        cause = "it was killed (by a signal such as kill -9, or by the system when memory ran out)"
    return JobState.INTERRUPTED, (
        f"The job's process ended unexpectedly during {where}: {cause}. Run the job again."
    )
