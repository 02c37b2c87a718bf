"""Extracting a verified archive: the same checked pass again, writing into a new folder.

Every file and folder is created new below the destination (``O_EXCL|O_NOFOLLOW``,
relative to an open folder, so a link planted meanwhile is never followed); any
failure or cancel removes the destination whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from segtui.core.archive_manifest import ArchiveLimits, Manifest, MemberEntry, human_size
from segtui.core.archive_read import DEFAULT_LIMITS, ReadPass, VerifiedArchive, run_pass
from segtui.core.errors import DiskFullError
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.safe_files import OutputFileError, write_error

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Extractor:
    """Writes members below a new folder, creating every file and folder new, never via a link."""

    def __init__(self, dest: Path) -> None:
        self._dest = dest
        try:
            self._root = os.open(dest, _FOLDER)
        except OSError as exc:
            raise write_error(dest, exc) from exc
        self._handle: BinaryIO | None = None
        self._target = dest

    def plan(self, manifest: Manifest) -> None:
        """Nothing to plan: the free space was checked before the folder was made."""

    def _create(self, name: str) -> int:
        *folders, leaf = name.split("/")
        fd = os.dup(self._root)
        try:
            for part in folders:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
                inner = os.open(part, _FOLDER, dir_fd=fd)
                os.close(fd)
                fd = inner
            return os.open(leaf, _NEW_FILE, 0o600, dir_fd=fd)
        finally:
            os.close(fd)

    def begin(self, entry: MemberEntry) -> None:
        self._target = self._dest / entry["path"]
        try:
            self._handle = os.fdopen(self._create(entry["path"]), "wb")
        except OSError as exc:
            raise write_error(self._target, exc) from exc

    def feed(self, data: bytes) -> None:
        assert self._handle is not None
        try:
            self._handle.write(data)
        except OSError as exc:
            raise write_error(self._target, exc) from exc

    def end(self) -> None:
        assert self._handle is not None
        handle, self._handle = self._handle, None
        try:
            with handle:
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise write_error(self._target, exc) from exc

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        os.close(self._root)


def _check_destination(dest: Path, manifest: Manifest) -> None:
    """Refuse an existing `dest`, a missing parent, or too little free space for the members."""
    if os.path.lexists(dest):
        raise OutputFileError(
            f"{dest} already exists.", "Extract into a folder that does not exist yet."
        )
    parent = dest.parent
    if not parent.is_dir():
        raise OutputFileError(
            f"Folder {parent} does not exist.", "Create it, or choose another place."
        )
    try:
        info = os.statvfs(parent)
    except OSError as exc:
        raise write_error(dest, exc) from exc
    free = info.f_bavail * info.f_frsize
    # Every file takes whole blocks: count one more per file.
    needed = sum(entry["size"] for entry in manifest["members"])
    needed += info.f_frsize * (len(manifest["members"]) + 1)
    if free < needed:
        raise DiskFullError(
            f"Extracting the archive needs {human_size(needed)} of free space in {parent}, "
            f"but only {human_size(free)} is free.",
            f"Free some space in {parent}, or use a workspace on another disk; nothing was imported.",
        )


def extract_archive(
    verified: VerifiedArchive,
    dest: Path,
    *,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> None:
    """Extract a verified archive into the new folder `dest` (0700), checking every byte again.

    Anything that differs from the verified manifest (the file may have changed since)
    is refused, and any failure or cancel removes `dest` whole.
    """
    dest = Path(dest)
    _check_destination(dest, verified.manifest)
    try:
        os.mkdir(dest, 0o700)
    except FileExistsError:
        raise OutputFileError(
            f"{dest} already exists.", "Extract into a folder that does not exist yet."
        ) from None
    except OSError as exc:
        raise write_error(dest, exc) from exc
    try:
        extractor = _Extractor(dest)
        try:
            scan = ReadPass(
                verified.path,
                verified.manifest["kind"],
                limits,
                extractor,
                "Extracting the archive",
                progress,
                cancel,
                expected=verified.manifest,
            )
            run_pass(scan)
        finally:
            extractor.close()
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
