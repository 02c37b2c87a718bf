"""Storage faults named as what they are, and the workspace's files kept private.

A failure of the disk or of the database file becomes a `StorageError` subclass whose
message says what happened (disk full, read-only, locked, damaged) and what to do, so
that no front end shows a raw `sqlite3` or `OSError`. The workspace's folders are made
0700 and its files 0600 by explicit modes (never by changing the process umask).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import stat
import tempfile
import time
import traceback
import urllib.parse
from collections.abc import Collection, Iterator
from pathlib import Path

import platformdirs

from segtui.core.errors import (
    CorruptWorkspaceError,
    DiskFullError,
    ReadOnlyWorkspaceError,
    SegtuiError,
    StorageError,
    StorageIOError,
    WorkspaceError,
    WorkspaceLockedError,
)
from segtui.core.fault_kinds import (
    NO_SPACE,
    NOT_WRITABLE,
    Fault,
    disk_of,
    errno_fault,
    file_size_limited,
    low_on_space,
    sqlite_fault,
    text_fault,
)

DB_NAME = "segtui.db"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: The folders whose contents the database lists: without the database they are orphans.
LISTED_FOLDERS = ("models", "datasets", "reports", "jobs")
WORK_FOLDERS = (*LISTED_FOLDERS, "tmp")
#: quick_check reads every page: on open it runs only below this size (milliseconds there).
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
#: How long a write waits for another process's write to end before it is "locked".
BUSY_TIMEOUT_S = 30


# -- naming a fault ---------------------------------------------------------------------


def user_error(exc: BaseException, root: Path) -> SegtuiError | None:
    """`exc` as a message for the user, or None when it is not a known kind of failure."""
    if isinstance(exc, SegtuiError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return workspace_error(exc, root)
    if isinstance(exc, OSError):
        named = storage_error(exc, root)
        if named is not None:
            return named
        where = f": {exc.filename}" if exc.filename else ""
        return SegtuiError(
            f"{exc.strerror or exc}{where}.", "Check the path and the free disk space."
        )
    return None


def workspace_error(exc: sqlite3.Error | OSError, root: Path) -> WorkspaceError:
    """A database or file-system failure in the workspace at `root`, named as what it is."""
    named = storage_error(exc, root)
    if named is not None:
        return named
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return WorkspaceError(
            f"Cannot use the workspace folder {root}: {exc.strerror or exc}{where}.",
            "Check the path, or choose another folder with --workspace or SEGTUI_HOME.",
        )
    return WorkspaceError(
        f"The workspace database {root / DB_NAME} failed: {exc}.",
        "Try again; if it happens again, keep a copy of the workspace folder and report it.",
    )


def storage_error(exc: BaseException, root: Path) -> StorageError | None:
    """A disk-full, read-only, locked, corrupt or I/O failure in the workspace; else None.

    A file error about a path outside the workspace (an input or an output file) is
    not the workspace's: None, for the caller to report it with its path.
    """
    if isinstance(exc, sqlite3.Error):
        return _sqlite_error(exc, root)
    if not isinstance(exc, OSError):
        return None
    fault = errno_fault(exc.errno)
    if fault is Fault.FILE_TOO_LARGE:
        return disk_full(root, limit=True)
    if fault in NO_SPACE and (_in_workspace(exc, root) or low_on_space(root)):
        # (A copy names its source file, not the full disk it writes to.)
        return disk_full(root)
    if fault is None or not _in_workspace(exc, root):
        return None
    detail = exc.strerror or str(exc)
    if fault in NOT_WRITABLE:
        return not_writable(root, detail + (f": {exc.filename}" if exc.filename else ""))
    if fault is Fault.IO_ERROR:
        return io_failure(root, detail)
    return None


def _in_workspace(exc: OSError, root: Path) -> bool:
    """Whether the failed path is in the workspace (a write without a path is taken to be)."""
    if not isinstance(exc.filename, str | bytes):
        return True
    target = Path(os.path.abspath(os.fsdecode(exc.filename)))
    return any(
        target.is_relative_to(os.path.abspath(base)) for base in (root, os.path.realpath(root))
    )


def storage_error_from_text(text: str, root: Path) -> StorageError | None:
    """A storage fault known only by its message (an error passed on as text)."""
    if text_fault(text, sqlite_only=True) is None:
        return None
    return _sqlite_error(sqlite3.OperationalError(text), root)


def _sqlite_error(exc: sqlite3.Error, root: Path) -> StorageError | None:
    fault = sqlite_fault(exc)
    text = str(exc)
    if fault is Fault.DISK_FULL:
        return disk_full(root)
    if fault in NOT_WRITABLE:
        if low_on_space(root):  # opened read-only because the disk is full
            return disk_full(root)
        return not_writable(root, _why_not_writable(root) or text)
    if fault is Fault.LOCKED:
        return locked(root)
    if fault is Fault.NOT_A_DATABASE:
        return not_a_database(root)
    if fault is Fault.CORRUPT:
        return corrupt(root, text)
    if fault is Fault.IO_ERROR:
        limited = file_size_limited()
        if limited or low_on_space(root):
            return disk_full(root, limit=limited)
        return io_failure(root, text)
    if fault is Fault.CANNOT_OPEN and (why := _why_not_writable(root)):
        return not_writable(root, why)
    if fault is Fault.SCHEMA_CHANGED:
        # segtui's own statements match its schema: a missing part was removed from outside.
        return corrupt(root, f"{text}; it was changed outside segtui")
    return None


def disk_full(root: Path, *, limit: bool = False) -> DiskFullError:
    cause = ", or a file reached the file-size limit (ulimit -f)" if limit else ""
    return DiskFullError(
        f"The disk holding the workspace {root} is full{cause}: segtui cannot write there.",
        "Free some space there (or use another workspace with --workspace), then try again. "
        "What was saved before is intact; the change being made was not saved.",
    )


def not_writable(root: Path, detail: str) -> ReadOnlyWorkspaceError:
    return ReadOnlyWorkspaceError(
        f"The workspace {root} cannot be written ({detail}).",
        "Make the folder and its segtui.db writable for you (or mount the disk read-write), "
        "or use another workspace with --workspace or SEGTUI_HOME. Nothing in it was changed.",
    )


def locked(root: Path) -> WorkspaceLockedError:
    return WorkspaceLockedError(
        f"The workspace database {root / DB_NAME} stayed locked by another process "
        f"for {BUSY_TIMEOUT_S} s.",
        "Another segtui is writing to it (an import, a job); try again when it is done. "
        f"If none is running, see which process holds it: fuser {root / DB_NAME}",
    )


def corrupt(root: Path, detail: str) -> CorruptWorkspaceError:
    return CorruptWorkspaceError(
        f"The workspace database {root / DB_NAME} is damaged ({detail}).",
        "segtui left it as it is. Keep a copy of the folder, then restore segtui.db from a "
        "backup (or try `sqlite3 segtui.db .recover`), or start a new workspace with --workspace.",
    )


def not_a_database(root: Path) -> CorruptWorkspaceError:
    return CorruptWorkspaceError(
        f"{root / DB_NAME} is not a segtui workspace database (file is not a database).",
        "Move it away, or choose another folder with --workspace.",
    )


def io_failure(root: Path, detail: str) -> StorageIOError:
    return StorageIOError(
        f"The disk failed while segtui used the workspace {root} ({detail}).",
        "Check the disk (free space, `dmesg`), then try again.",
    )


def _why_not_writable(root: Path) -> str:
    """Why the workspace folder cannot be written ("" when it can, or is not there)."""
    disk = disk_of(root)
    if disk is None:
        return ""
    if disk.read_only:
        return "read-only file system"
    folder_ok = os.access(root, os.W_OK)
    db = root / DB_NAME
    if folder_ok and (not db.exists() or os.access(db, os.W_OK)):
        return ""
    return "no write permission for this user"


# -- opening the database ----------------------------------------------------------------


def open_database(root: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the workspace database at `root`, its folders made (unless `read_only`).

    Raises sqlite3.Error or OSError for the caller to name (`workspace_error`),
    ReadOnlyWorkspaceError for a workspace this user cannot write, and
    CorruptWorkspaceError for a database that lost its contents but not its files.
    """
    db = root / DB_NAME
    if read_only:
        return _connect_read_only(db)
    refuse_lost_database(root)  # before anything is created there
    why = _why_not_writable(root)
    if why:  # refused up front, not at the first write of some later step
        raise not_writable(root, why)
    prepare_folders(root)
    if not db.exists():
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile
            create_private_file(db)
    conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        conn.execute("PRAGMA journal_mode = WAL")
        # The -wal and -shm files SQLite creates take the database file's mode.
        tighten(db)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(db: Path) -> sqlite3.Connection:
    """Read-only: `mode=ro` when SQLite can share the WAL index, else as an immutable file."""
    if not db.is_file():
        raise ReadOnlyWorkspaceError(
            f"There is no workspace database at {db}, and the folder cannot be written.",
            "Use another workspace with --workspace or SEGTUI_HOME.",
        )
    uri = f"file:{urllib.parse.quote(str(db))}"
    last: sqlite3.Error | None = None
    for query in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{query}", uri=True, isolation_level=None)
        try:
            conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            last = exc
            continue
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    assert last is not None
    raise last


def refuse_lost_database(root: Path) -> None:
    """Refuse to start a new database beside the files of one that is gone or empty.

    A new database would list none of them, and would hand their ids out again.
    """
    db = root / DB_NAME
    wal = root / f"{DB_NAME}-wal"
    if _size(db) > 0 or _size(wal) > 0:
        return
    listed = [name for name in LISTED_FOLDERS if _has_entries(root / name)]
    if not listed:
        return
    state = "is empty (0 bytes)" if db.exists() else "is missing"
    raise CorruptWorkspaceError(
        f"The workspace database {db} {state}, but the workspace holds files it listed "
        f"(in {', '.join(f'{name}/' for name in listed)}).",
        "Restore segtui.db from a backup (it may have been truncated by a full disk or a "
        "failed copy), or move the whole folder away to start a new workspace; segtui will "
        "not start a new database over these files.",
    )


def verify_database(conn: sqlite3.Connection, root: Path, tables: Collection[str]) -> None:
    """Refuse a database whose tables are missing or whose pages fail `PRAGMA quick_check`."""
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = sorted(set(tables) - present)
    if missing:
        lost = ", ".join(missing)
        raise corrupt(root, f"table(s) {lost} missing; it was changed outside segtui")
    size = _size(root / DB_NAME) + _size(root / f"{DB_NAME}-wal")
    if size > QUICK_CHECK_MAX_BYTES:
        return  # too long to read on every start; damage there is named when it is met
    first = conn.execute("PRAGMA quick_check(1)").fetchone()
    if first is None or first[0] != "ok":
        detail = str(first[0]).splitlines()[-1] if first is not None else "no answer"
        raise corrupt(root, f"quick_check: {detail}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _has_entries(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


# -- private files -------------------------------------------------------------------------


def prepare_folders(root: Path) -> None:
    """The workspace folder and its subfolders, 0700; an existing workspace is tightened."""
    existing = (root / DB_NAME).exists()
    private_dir(root)
    if existing:
        tighten(root)
    for name in WORK_FOLDERS:
        private_dir(root / name)
        tighten(root / name)


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents readable by the owner only (0700), whatever the umask."""
    missing: list[Path] = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # made by another process meanwhile
        os.chmod(folder, PRIVATE_DIR)  # the umask may have taken bits from the owner too
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path))
    return path


def open_private(path: Path, flags: int) -> int:
    """`os.open(path, flags)`, a file it creates 0600 whatever the umask; its descriptor."""
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken bits from the owner too
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private_file(path: Path) -> None:
    """Create an empty file readable by the owner only (0600); FileExistsError if it exists."""
    os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW))


def tighten(path: Path) -> None:
    """Take group and other permissions off a path this user owns (nothing when it cannot)."""
    with contextlib.suppress(OSError):
        info = os.stat(path, follow_symlinks=False)
        if info.st_uid == os.geteuid() and info.st_mode & 0o077 and not stat.S_ISLNK(info.st_mode):
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)


def make_private(path: Path) -> None:
    """Folders 0700 and files 0600 under `path` (files copied in keep their source's mode)."""
    for folder, _dirs, files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(folder, PRIVATE_DIR)
        for name in files:
            file = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                if not os.path.islink(file):
                    os.chmod(file, PRIVATE_FILE)


@contextlib.contextmanager
def exclusive_lock(path: Path, *, timeout_s: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a private file, removed after); the kernel frees
    it if the process dies."""
    private_dir(path.parent)
    deadline = time.monotonic() + timeout_s
    while True:
        fd = _lock_file(path, deadline, what)
        # The holder before us removes the file as it lets go: a lock on that removed file
        # would exclude no one, so we lock again the file that is there now.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # releases the lock


def _lock_file(path: Path, deadline: float, what: str) -> int:
    """A descriptor of `path` locked exclusively, waiting until `deadline` at most."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken bits from the owner too
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise WorkspaceLockedError(
                    f"Another segtui process has been {what} for too long.",
                    "Wait for it to finish, then try again.",
                ) from None
            time.sleep(0.05)


# -- where a failure's details go -----------------------------------------------------------


def write_error_log(error: BaseException, root: Path | None) -> Path | None:
    """Write `error` with its traceback to a private log file; its path, None if none could be written.

    The workspace's logs/ folder first, then the user's log folder, then a private
    folder in the temp dir: a full or read-only workspace cannot take it.
    """
    text = "".join(traceback.format_exception(error))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"error-{stamp}-{os.getpid()}.log"
    for folder in _log_folders(root):
        try:
            path = _owned_private_dir(folder) / name
            fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"segtui error at {time.ctime()} (workspace: {root})\n\n{text}")
        except OSError:
            continue
        return path
    return None


def _log_folders(root: Path | None) -> Iterator[Path]:
    if root is not None and root.is_dir():
        yield root / "logs"
    yield Path(platformdirs.user_log_dir("segtui", appauthor=False))
    yield Path(tempfile.gettempdir()) / f"segtui-{os.geteuid()}"


def _owned_private_dir(folder: Path) -> Path:
    """`folder` made private; refused unless it is a real folder of this user's (in /tmp too)."""
    private_dir(folder)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise PermissionError(errno.EPERM, "Not a private folder", str(folder))
    if info.st_mode & 0o077:
        os.chmod(folder, PRIVATE_DIR)
    return folder


__all__ = [
    "DB_NAME",
    "LISTED_FOLDERS",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "QUICK_CHECK_MAX_BYTES",
    "create_private_file",
    "exclusive_lock",
    "make_private",
    "open_database",
    "open_private",
    "private_dir",
    "refuse_lost_database",
    "storage_error",
    "storage_error_from_text",
    "user_error",
    "verify_database",
    "workspace_error",
    "write_error_log",
]
