"""Extracting a verified archive into a new folder: from the bytes verify_archive buffered,
or, for an archive too large to hold, by the same checked pass over the file again.

Every file and folder is created new below the destination (``O_EXCL|O_NOFOLLOW``,
relative to an open folder, so a link planted meanwhile is never followed); any
failure or cancel removes the destination whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from segtui.core.archive_manifest import ArchiveLimits, Manifest, MemberEntry, human_size
from segtui.core.archive_read import DEFAULT_LIMITS, ReadPass, VerifiedArchive, run_pass
from segtui.core.archive_stream import CHUNK
from segtui.core.errors import DiskFullError
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.safe_files import OutputFileError, write_error

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_STAGE = "Extracting the archive"


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
        """Create the member's file; it is then fed (returns None: no buffer to read into)."""
        self._target = self._dest / entry["path"]
        try:
            self._handle = os.fdopen(self._create(entry["path"]), "wb")
        except OSError as exc:
            raise write_error(self._target, exc) from exc

    def feed(self, data: bytes | memoryview) -> None:
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


def _write_buffered(
    buffered: Mapping[str, memoryview],
    manifest: Manifest,
    extractor: _Extractor,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> None:
    """Write the members verify_archive held in memory, in CHUNKs (so cancel is prompt)."""
    total = max(1, sum(entry["size"] for entry in manifest["members"]))
    done = 0
    for entry in manifest["members"]:
        data = buffered[entry["path"]]
        if len(data) != entry["size"]:  # never, from verify_archive: refuse rather than trust
            raise ValueError(f"buffered member {entry['path']!r} is not its manifest's size")
        extractor.begin(entry)
        for start in range(0, len(data), CHUNK):
            if cancel is not None:
                cancel.raise_if_cancelled()
            piece = data[start : start + CHUNK]
            extractor.feed(piece)
            done += len(piece)
            progress(done / total, _STAGE)
        extractor.end()
    progress(1.0, _STAGE)


def extract_archive(
    verified: VerifiedArchive,
    dest: Path,
    *,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> None:
    """Extract a verified archive into the new folder `dest` (0700), removed on failure or cancel.

    With `verified.buffered` the members are written from memory and the archive file is
    not opened again: those bytes are the ones verified, so a change to the file since
    does not matter. Otherwise the file is read and checked again, and anything that
    differs from the verified manifest (the file may have changed since) is refused.
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
            if verified.buffered is not None:
                _write_buffered(verified.buffered, verified.manifest, extractor, progress, cancel)
            else:
                scan = ReadPass(
                    verified.path,
                    verified.manifest["kind"],
                    limits,
                    extractor,
                    _STAGE,
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
