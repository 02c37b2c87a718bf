"""Files the user names (packages, exports, results) written without harm to anything else.

The bytes go to a new partial file in the target's own folder, created with
``O_CREAT|O_EXCL|O_NOFOLLOW`` under a random name (so a link planted there is never
written through), synced, then renamed onto the target. A target that is a link, a
folder or a device is refused, and the partial file never outlives a failure.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from segtui.core.errors import SegtuiError
from segtui.core.fault_kinds import NO_SPACE, Fault, errno_fault

#: Created as a new file would be: the umask decides (0o644 under the usual 022).
DEFAULT_MODE = 0o666
PARTIAL_SUFFIX = ".partial"
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NAME_KEEP = 160  # of the target's name in the partial's: NAME_MAX is 255


class OutputFileError(SegtuiError):
    """An output file that cannot (or must not) be written."""


def partial_name(target: Path) -> str:
    """A fresh, unguessable name for `target`'s partial file (hidden, in the same folder)."""
    return f".{target.name[:_NAME_KEEP]}.{secrets.token_hex(8)}{PARTIAL_SUFFIX}"


def check_output_path(path: Path, *, overwrite: bool = True) -> None:
    """Refuse, with a message, a target segtui must not or cannot replace."""
    parent = path.parent
    try:
        if not parent.is_dir():
            if parent.exists():
                raise OutputFileError(f"{parent} is not a folder.", "Choose another place.")
            raise OutputFileError(
                f"Folder {parent} does not exist.", "Create it, or choose another place."
            )
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_error(path, exc) from exc
    if stat.S_ISLNK(info.st_mode):
        raise OutputFileError(
            f"{path} is a symbolic link; segtui never writes through a link.",
            "Remove the link, or choose another file name.",
        )
    if stat.S_ISDIR(info.st_mode):
        raise OutputFileError(f"{path} is a folder.", "Give the name of a file to write.")
    if not stat.S_ISREG(info.st_mode):
        raise OutputFileError(
            f"{path} exists and is not a regular file.", "Choose another file name."
        )
    if not overwrite:
        raise OutputFileError(f"{path} already exists.", "Choose another file name.")


def write_error(path: Path, exc: OSError) -> OutputFileError:
    """What an OSError while writing `path` means, and what to do about it."""
    where = path.parent
    fault = errno_fault(exc.errno)
    if fault in NO_SPACE:
        return OutputFileError(
            f"Could not write {path}: the disk is full or the file is too large for it.",
            f"Free some space in {where}, or choose a folder on another disk, and try again.",
        )
    if fault is Fault.READ_ONLY:
        return OutputFileError(
            f"Could not write {path}: {where} is on a read-only file system.",
            "Choose a folder you can write to.",
        )
    if fault is Fault.DENIED:
        return OutputFileError(
            f"Could not write {path}: permission denied in {where}.",
            "Choose a folder you can write to, or change its permissions.",
        )
    if exc.errno == errno.ENAMETOOLONG:
        return OutputFileError(
            f"Could not write {path}: the file name is too long.", "Choose a shorter name."
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputFileError(
        f"Could not write {path}: {reason}.", f"Check the free space and permissions of {where}."
    )


def make_output_folder(folder: Path) -> None:
    """Create `folder` (and its parents) for output files, or say clearly why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputFileError(f"{folder} is not a folder.", "Choose another place.") from None
    except NotADirectoryError:
        raise OutputFileError(
            f"Cannot create folder {folder}: part of its path is a file.", "Choose another place."
        ) from None
    except OSError as exc:
        error = write_error(folder, exc)
        raise OutputFileError(error.message.replace("write", "create", 1), error.hint) from exc


def _create_partial(target: Path, mode: int) -> tuple[int, Path]:
    for _ in range(8):
        partial = target.with_name(partial_name(target))
        try:
            return os.open(partial, _FLAGS, mode), partial
        except FileExistsError:
            continue  # someone else's file at a random name: take another
        except OSError as exc:
            raise write_error(target, exc) from exc
    raise OutputFileError(
        f"Could not create a temporary file beside {target}.",
        f"Check what is writing into {target.parent}.",
    )


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; some file systems cannot sync a folder, which is harmless."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(partial: Path, target: Path, overwrite: bool) -> None:
    """Put the finished partial file at `target`; without `overwrite`, never replace one."""
    check_output_path(target, overwrite=overwrite)  # again: it may have changed meanwhile
    if not overwrite:
        try:
            os.link(partial, target, follow_symlinks=False)  # fails if anything is there
        except FileExistsError:
            raise OutputFileError(
                f"{target} already exists.", "Choose another file name."
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
        else:
            os.unlink(partial)
            return
    # rename() replaces a link planted at the target meanwhile; it never writes through it.
    os.replace(partial, target)


@contextlib.contextmanager
def safe_output(
    path: Path, *, overwrite: bool = True, mode: int = DEFAULT_MODE
) -> Iterator[BinaryIO]:
    """A binary file whose content becomes `path` when the block ends without an error.

    Failures to write are OutputFileError with a message naming `path`; any exception
    (Cancelled and KeyboardInterrupt included) removes the partial file and leaves
    `path` as it was. OSErrors naming another file (a source being read) pass unchanged.
    """
    target = Path(path).expanduser()
    check_output_path(target, overwrite=overwrite)
    fd, partial = _create_partial(target, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(partial, target, overwrite)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        if exc.filename not in (None, str(partial), str(target)):
            raise
        raise write_error(target, exc) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    _sync_folder(target.parent)


def write_output_bytes(
    path: Path, data: bytes, *, overwrite: bool = True, mode: int = DEFAULT_MODE
) -> None:
    """Write `data` to the user-chosen file `path` (see safe_output)."""
    with safe_output(path, overwrite=overwrite, mode=mode) as handle:
        handle.write(data)


def write_output_text(
    path: Path, text: str, *, overwrite: bool = True, mode: int = DEFAULT_MODE
) -> None:
    """Write `text` as UTF-8 to the user-chosen file `path` (see safe_output)."""
    write_output_bytes(path, text.encode("utf-8"), overwrite=overwrite, mode=mode)
