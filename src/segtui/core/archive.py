"""segtui's archives (project export/import): a .tar.gz whose first member is a manifest.

The manifest (``manifest.json``) lists every other member with its size and sha256.
write_archive makes one; verify_archive reads one whole, trusting nothing and writing
nothing; extract_archive writes a verified one into a new folder, checking it again.
The rules shared by both sides live in archive_manifest, the reading in archive_stream,
archive_read and archive_extract; this module is the one to import.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from segtui import __version__
from segtui.core.archive_extract import extract_archive
from segtui.core.archive_manifest import (
    ARCHIVE_FORMAT,
    MANIFEST_NAME,
    ArchiveLimits,
    ArchiveRefused,
    Manifest,
    MemberEntry,
    check_member_limits,
    human_size,
    manifest_bytes,
    names_problem,
    quoted,
)
from segtui.core.archive_read import DEFAULT_LIMITS, VerifiedArchive, verify_archive
from segtui.core.archive_stream import CHUNK
from segtui.core.errors import SegtuiError
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.safe_files import check_output_path, safe_output

__all__ = [
    "ARCHIVE_FORMAT",
    "MANIFEST_NAME",
    "ArchiveLimits",
    "ArchiveRefused",
    "Manifest",
    "MemberEntry",
    "VerifiedArchive",
    "extract_archive",
    "verify_archive",
    "write_archive",
]

_MEMBER_MODE = 0o644
#: gzip's own default: weights shrink ~7% at any level (level 1 measured no faster), JSON a lot.
_COMPRESS_LEVEL = 6
_UNEXPORTABLE_HINT = "Rename the file, or report this to the segtui developers."


@dataclass
class _Progress:
    """Bytes done over both passes (hashing, then writing), for one callback."""

    callback: ProgressCallback
    cancel: CancelToken | None
    total: int
    done: int = 0

    def add(self, size: int, stage: str) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        self.done += size
        self.callback(min(1.0, self.done / max(1, 2 * self.total)), stage)


def _open_source(path: Path) -> BinaryIO:
    """`path` opened for reading: a regular file (links followed), never a FIFO that blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SegtuiError(f"Cannot export {path}: it does not exist.", "Check the file.") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SegtuiError(f"Cannot export {path}: {reason}.", "Check the file.") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SegtuiError(
            f"Cannot export {path}: it is not a regular file.",
            "segtui archives hold regular files only.",
        )
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _changed(path: Path) -> SegtuiError:
    return SegtuiError(
        f"{path} changed while it was being exported.",
        "Wait until nothing writes to it and export again.",
    )


def _read_error(path: Path, exc: OSError) -> SegtuiError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return SegtuiError(f"Could not read {path}: {reason}.", "Check the file and try again.")


def _hash_source(name: str, path: Path, progress: _Progress) -> MemberEntry:
    digest = hashlib.sha256()
    size = 0
    with _open_source(path) as handle:
        try:
            while data := handle.read(CHUNK):
                digest.update(data)
                size += len(data)
                progress.add(len(data), "Checking the files")
        except OSError as exc:
            raise _read_error(path, exc) from exc
    return MemberEntry(path=name, size=size, sha256=digest.hexdigest())


class _CheckedSource:
    """A source file read for the archive, hashed again on the way: it must not have changed."""

    def __init__(self, handle: BinaryIO, path: Path, entry: MemberEntry, progress: _Progress):
        self._handle = handle
        self._path = path
        self._left = entry["size"]
        self._digest = hashlib.sha256()
        self._progress = progress
        self._sha256 = entry["sha256"]

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        try:
            data = self._handle.read(want)
        except OSError as exc:
            raise _read_error(self._path, exc) from exc
        if len(data) < want:
            raise _changed(self._path)  # it shrank
        self._left -= len(data)
        self._digest.update(data)
        self._progress.add(len(data), "Writing the archive")
        return data

    def check(self) -> None:
        if self._left or self._digest.hexdigest() != self._sha256:
            raise _changed(self._path)


def _member_info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = _MEMBER_MODE
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _check_members(members: Sequence[tuple[str, Path]], kind: str) -> None:
    if not kind or not kind.isprintable():
        raise ValueError(f"archive kind {kind!r} is not a printable name")
    problem = names_problem(name for name, _ in members)
    if problem is not None:
        name, predicate = problem
        raise SegtuiError(
            f"Cannot export archive member {quoted(name)}: it {predicate}.", _UNEXPORTABLE_HINT
        )


def _check_importable(entries: list[MemberEntry], manifest_size: int = 0) -> None:
    """Refuse to write an archive that segtui's own reader would refuse (default limits)."""
    hint = "segtui could not import such an archive: export less at a time."
    try:
        check_member_limits(entries, DEFAULT_LIMITS)
    except ArchiveRefused as exc:
        raise SegtuiError(
            f"Cannot export: {exc.message[0].lower()}{exc.message[1:]}", hint
        ) from None
    if manifest_size > DEFAULT_LIMITS.max_manifest_bytes:
        raise SegtuiError(
            f"Cannot export: the manifest would be {human_size(manifest_size)}, over the "
            f"limit of {human_size(DEFAULT_LIMITS.max_manifest_bytes)}.",
            hint,
        )


def write_archive(
    out: Path,
    members: Sequence[tuple[str, Path]],
    *,
    kind: str,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Manifest:
    """Write `members` (archive name, source file) to the .tar.gz `out`, manifest first.

    Each file is hashed first, then copied and hashed again (a file changed in between is
    refused). `out` appears only complete: a failure or cancel leaves no partial file and
    an existing `out` as it was.
    """
    _check_members(members, kind)
    check_output_path(Path(out))  # before hashing gigabytes; safe_output checks it again
    counter = _Progress(progress, cancel, total=0)
    sizes = [_open_size(path) for _, path in members]
    # Too large for segtui to import again: say so before hashing gigabytes.
    _check_importable(
        [MemberEntry(path=n, size=s, sha256="") for (n, _), s in zip(members, sizes, strict=True)]
    )
    counter.total = sum(sizes)
    entries = [_hash_source(name, path, counter) for name, path in members]
    manifest = Manifest(
        format=ARCHIVE_FORMAT,
        kind=kind,
        segtui_version=__version__,
        created_at=time.time(),
        members=entries,
    )
    data = manifest_bytes(manifest)
    _check_importable(entries, len(data))
    counter.total = sum(entry["size"] for entry in entries)
    counter.done = counter.total
    mtime = int(manifest["created_at"])
    with (
        safe_output(Path(out)) as handle,
        gzip.GzipFile("", "wb", _COMPRESS_LEVEL, fileobj=handle, mtime=mtime) as packed,
        tarfile.TarFile(
            fileobj=packed, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        ) as tar,
    ):
        tar.addfile(_member_info(MANIFEST_NAME, len(data), mtime), io.BytesIO(data))
        for entry, (_, path) in zip(entries, members, strict=True):
            with _open_source(path) as source:
                checked = _CheckedSource(source, path, entry, counter)
                tar.addfile(_member_info(entry["path"], entry["size"], mtime), checked)
                checked.check()
    progress(1.0, "Writing the archive")
    return manifest


def _open_size(path: Path) -> int:
    """The size of the source file `path`, checked to be a readable regular file."""
    with _open_source(path) as handle:
        return os.fstat(handle.fileno()).st_size
