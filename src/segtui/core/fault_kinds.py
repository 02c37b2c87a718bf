"""What a storage fault is: the errnos, SQLite codes and texts of each kind, named once.

The facts live here; the words for the user stay with each audience: the workspace
(`core.storage`), a job (`core.job_faults`), an output file (`core.safe_files`) and an
input file (`core.json_input`). So is how low free space is judged, and whether a
file-size limit (ulimit -f) is in force.
"""

from __future__ import annotations

import errno
import os
import resource
import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Fault(StrEnum):
    """A kind of storage fault; its value is its name in plain words."""

    DISK_FULL = "disk full"
    QUOTA = "disk quota exceeded"
    FILE_TOO_LARGE = "file too large"
    READ_ONLY = "read-only file system"
    DENIED = "no permission to write"
    IO_ERROR = "disk I/O error"
    # A write failed and did not say why (OpenVINO's save): only the disk's state can tell.
    WRITE_FAILED = "write failed"
    LOCKED = "database is locked"
    CORRUPT = "database is damaged"
    NOT_A_DATABASE = "not a database"
    CANNOT_OPEN = "cannot open the database file"
    #: A table or column segtui's own statements name is gone: changed outside segtui.
    SCHEMA_CHANGED = "a table or column is missing"


#: No room to write: the disk, the user's quota or the file-size limit.
NO_SPACE = frozenset({Fault.DISK_FULL, Fault.QUOTA, Fault.FILE_TOO_LARGE})
#: Writes refused: the file system is mounted read-only, or this user may not write there.
NOT_WRITABLE = frozenset({Fault.READ_ONLY, Fault.DENIED})
#: The faults of the disk (the rest are the database file's own).
DISK_FAULTS = NO_SPACE | NOT_WRITABLE | {Fault.IO_ERROR}

ERRNO_FAULTS: dict[int, Fault] = {
    errno.ENOSPC: Fault.DISK_FULL,
    errno.EDQUOT: Fault.QUOTA,
    errno.EFBIG: Fault.FILE_TOO_LARGE,  # only the file-size limit (ulimit -f) says this
    errno.EROFS: Fault.READ_ONLY,
    errno.EACCES: Fault.DENIED,
    errno.EPERM: Fault.DENIED,
    errno.EIO: Fault.IO_ERROR,
}

# SQLite's primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE).
SQLITE_ERROR = 1
_SQLITE_CODES: dict[int, Fault] = {
    3: Fault.DENIED,  # SQLITE_PERM
    5: Fault.LOCKED,  # SQLITE_BUSY
    6: Fault.LOCKED,  # SQLITE_LOCKED
    8: Fault.READ_ONLY,  # SQLITE_READONLY
    10: Fault.IO_ERROR,  # SQLITE_IOERR
    11: Fault.CORRUPT,  # SQLITE_CORRUPT
    13: Fault.DISK_FULL,  # SQLITE_FULL
    14: Fault.CANNOT_OPEN,  # SQLITE_CANTOPEN
    26: Fault.NOT_A_DATABASE,  # SQLITE_NOTADB
}


@dataclass(frozen=True)
class _Phrase:
    text: str  # lower case
    fault: Fault
    sqlite: bool  # SQLite's own message for its code (else the C library's, for an errno)


# What SQLite and the C library say where no code or errno comes along (an error passed
# on as text, or wrapped by a library such as OpenVINO); the first that matches counts.
_PHRASES = (
    _Phrase("database or disk is full", Fault.DISK_FULL, sqlite=True),
    _Phrase("no space left on device", Fault.DISK_FULL, sqlite=False),
    _Phrase("disk quota exceeded", Fault.QUOTA, sqlite=False),
    _Phrase("file too large", Fault.FILE_TOO_LARGE, sqlite=False),
    _Phrase("read-only file system", Fault.READ_ONLY, sqlite=False),
    _Phrase("readonly database", Fault.READ_ONLY, sqlite=True),  # "attempt to write a …"
    _Phrase("disk i/o error", Fault.IO_ERROR, sqlite=True),
    _Phrase("database is locked", Fault.LOCKED, sqlite=True),
    _Phrase("database disk image is malformed", Fault.CORRUPT, sqlite=True),
    _Phrase("file is not a database", Fault.NOT_A_DATABASE, sqlite=True),
    _Phrase("unable to open database file", Fault.CANNOT_OPEN, sqlite=True),
)
# What a write that failed without saying why looks like (OpenVINO's save: "basic_ios::clear:
# iostream error"), lower case.
_WRITE_FAILURE_TEXTS = ("iostream error", "basic_ios", "failed to write", "cannot write")

#: Free space under which a failed write is put down to a full disk.
LOW_SPACE_BYTES = 1024 * 1024


def errno_fault(code: int | None) -> Fault | None:
    """The storage fault an errno stands for, or None."""
    return None if code is None else ERRNO_FAULTS.get(code)


def errnos_of(*faults: Fault) -> frozenset[int]:
    """The errnos that stand for any of `faults`."""
    return frozenset(code for code, fault in ERRNO_FAULTS.items() if fault in faults)


def text_fault(
    text: str, among: Collection[Fault] = frozenset(Fault), *, sqlite_only: bool = False
) -> Fault | None:
    """The first fault among `among` that `text` names (only SQLite's words, if `sqlite_only`)."""
    lowered = text.lower()
    for phrase in _PHRASES:
        if phrase.fault in among and (phrase.sqlite or not sqlite_only) and phrase.text in lowered:
            return phrase.fault
    return None


def says_write_failed(texts: Iterable[str]) -> bool:
    """Whether any of `texts` says only that a write failed (the disk's state tells why)."""
    return any(needle in text.lower() for text in texts for needle in _WRITE_FAILURE_TEXTS)


def sqlite_fault(exc: sqlite3.Error) -> Fault | None:
    """The fault an SQLite error names: by its code, or by its text when raised without one."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return text_fault(str(exc), sqlite_only=True)
    primary = code & 0xFF
    if primary == SQLITE_ERROR and str(exc).startswith(("no such table", "no such column")):
        return Fault.SCHEMA_CHANGED
    return _SQLITE_CODES.get(primary)


@dataclass(frozen=True)
class DiskState:
    """The file system under a path, as `statvfs` tells it."""

    read_only: bool
    free_bytes: int

    @property
    def low(self) -> bool:
        """Too little room left for a failed write to be put down to anything else."""
        return self.free_bytes < LOW_SPACE_BYTES


def disk_of(path: Path) -> DiskState | None:
    """The state of the file system holding `path` (None when it cannot be asked)."""
    try:
        fs = os.statvfs(path)
    except OSError:
        return None
    return DiskState(bool(fs.f_flag & os.ST_RDONLY), fs.f_bavail * fs.f_frsize)


def low_on_space(path: Path) -> bool:
    """Whether the disk holding `path` is (nearly) full; False when that cannot be told."""
    disk = disk_of(path)
    return disk is not None and disk.low


def file_size_limited() -> bool:
    """Whether this process runs under a file-size limit (ulimit -f)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY
