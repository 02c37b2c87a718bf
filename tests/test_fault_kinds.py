"""One naming of storage faults: each errno, SQLite code and text means one fault, which the
workspace, a job and an output file each put in their own words."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from segtui.core import fault_kinds, job_faults, safe_files, storage
from segtui.core.errors import (
    CorruptWorkspaceError,
    DiskFullError,
    ReadOnlyWorkspaceError,
    StorageError,
    StorageIOError,
    WorkspaceLockedError,
)
from segtui.core.fault_kinds import Fault


def _os_error(code: int, where: Path) -> OSError:
    return OSError(code, os.strerror(code), str(where / "models" / "1" / "model.bin"))


# errno: the fault, the workspace's error, a job's message and an output file's message.
BY_ERRNO: list[tuple[int, Fault, type[StorageError], str, str]] = [
    (errno.ENOSPC, Fault.DISK_FULL, DiskFullError, "Disk full during", "the disk is full"),
    (errno.EDQUOT, Fault.QUOTA, DiskFullError, "Disk quota exceeded during", "the disk is full"),
    (errno.EFBIG, Fault.FILE_TOO_LARGE, DiskFullError, "File too large during", "too large"),
    (errno.EROFS, Fault.READ_ONLY, ReadOnlyWorkspaceError, "Read-only file system", "read-only"),
    (errno.EACCES, Fault.DENIED, ReadOnlyWorkspaceError, "No permission to write", "denied"),
    (errno.EIO, Fault.IO_ERROR, StorageIOError, "Disk I/O error during", "Input/output error"),
]


@pytest.mark.parametrize(("code", "fault", "workspace", "job", "output"), BY_ERRNO)
def test_an_errno_is_one_fault_in_each_audiences_words(
    tmp_path: Path,
    code: int,
    fault: Fault,
    workspace: type[StorageError],
    job: str,
    output: str,
) -> None:
    exc = _os_error(code, tmp_path)
    assert fault_kinds.errno_fault(code) is fault
    assert type(storage.storage_error(exc, tmp_path)) is workspace
    assert job_faults.storage_cause(exc, tmp_path) is fault
    assert job_faults.failure_message(exc, tmp_path, "Saving").startswith(job)
    written = safe_files.write_error(tmp_path / "out.json", OSError(code, os.strerror(code)))
    assert output in written.message and str(tmp_path / "out.json") in written.message


def test_faults_of_files_outside_the_workspace_are_not_the_workspaces(tmp_path: Path) -> None:
    outside = PermissionError(errno.EACCES, "Permission denied", "/etc/shadow")
    assert storage.storage_error(outside, tmp_path) is None
    assert job_faults.storage_cause(outside, tmp_path) is None
    # No space is the disk's fault wherever the error points (a copy names its source).
    full = OSError(errno.ENOSPC, "No space left on device", "/elsewhere/source.bin")
    assert fault_kinds.low_on_space(tmp_path) is False
    assert storage.storage_error(full, tmp_path) is None
    assert job_faults.storage_cause(full, tmp_path) is Fault.DISK_FULL
    assert fault_kinds.errno_fault(errno.ENOENT) is None
    assert fault_kinds.errno_fault(None) is None


@pytest.mark.parametrize(
    ("code", "text", "fault", "named"),
    [
        (13, "database or disk is full", Fault.DISK_FULL, DiskFullError),
        (8, "attempt to write a readonly database", Fault.READ_ONLY, ReadOnlyWorkspaceError),
        (5, "database is locked", Fault.LOCKED, WorkspaceLockedError),
        (11, "database disk image is malformed", Fault.CORRUPT, CorruptWorkspaceError),
        (26, "file is not a database", Fault.NOT_A_DATABASE, CorruptWorkspaceError),
        (1, "no such table: jobs", Fault.SCHEMA_CHANGED, CorruptWorkspaceError),
    ],
)
def test_an_sqlite_error_is_named_by_its_code_or_else_by_its_text(
    tmp_path: Path, code: int, text: str, fault: Fault, named: type[StorageError]
) -> None:
    coded = sqlite3.OperationalError(text)
    coded.sqlite_errorcode = code | 0x300  # an extended code: its low byte counts
    assert fault_kinds.sqlite_fault(coded) is fault
    assert type(storage.storage_error(coded, tmp_path)) is named
    bare = sqlite3.OperationalError(text)  # raised by hand, without a code
    by_text = None if fault is Fault.SCHEMA_CHANGED else fault
    assert fault_kinds.sqlite_fault(bare) is by_text
    assert (storage.storage_error_from_text(text, tmp_path) is None) is (by_text is None)


def test_a_job_names_only_the_disks_faults_from_text(tmp_path: Path) -> None:
    assert job_faults.storage_cause(RuntimeError("No space left on device"), tmp_path) == (
        Fault.DISK_FULL
    )
    assert job_faults.storage_cause(RuntimeError("database is locked"), tmp_path) is None
    # The C library's words are not SQLite's: the workspace does not take them for its own.
    assert fault_kinds.text_fault("Read-only file system", sqlite_only=True) is None
    assert fault_kinds.text_fault("Read-only file system") is Fault.READ_ONLY


def test_low_space_is_judged_by_one_threshold(tmp_path: Path) -> None:
    disk = fault_kinds.disk_of(tmp_path)
    assert disk is not None and disk.free_bytes > 0
    assert disk.low is (disk.free_bytes < fault_kinds.LOW_SPACE_BYTES)
    assert fault_kinds.DiskState(False, fault_kinds.LOW_SPACE_BYTES - 1).low
    assert not fault_kinds.DiskState(False, fault_kinds.LOW_SPACE_BYTES).low
    assert fault_kinds.disk_of(tmp_path / "missing") is None
    assert fault_kinds.low_on_space(tmp_path / "missing") is False
