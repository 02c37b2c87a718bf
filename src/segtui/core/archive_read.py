"""Reading a segtui archive that nothing vouches for: verify it whole, then extract it.

One streaming pass (tarfile ``r|`` over our own gzip reader, which counts the bytes it
really inflates) checks every member against the manifest. An archive whose members fit
in ArchiveLimits.max_buffered_bytes keeps them in memory as they were hashed, and
extraction writes those bytes; a larger one is extracted by the same pass again with a
writer attached, so an archive changed in between is refused as well.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from segtui.core.archive_manifest import (
    MANIFEST_NAME,
    ArchiveLimits,
    ArchiveRefused,
    Manifest,
    MemberEntry,
    human_size,
    name_problem,
    parse_manifest,
    quoted,
    refuse_member,
)
from segtui.core.archive_stream import (
    CHUNK,
    STREAM_ERRORS,
    CheckedInfo,
    Inflated,
    open_archive,
    translated,
)
from segtui.core.progress import CancelToken, ProgressCallback, no_progress

#: Tar bytes one member may bring besides its data: header, pax record, padding.
_ENTRY_ALLOWANCE = 8 << 10
#: End-of-archive blocks and the record padding after them, with room to spare.
_END_ALLOWANCE = 64 << 10
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)
_TYPE_NAMES = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO (named pipe)",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_CHANGED_HINT = "Something changed the archive while it was read: try again; nothing was imported."


@dataclass(frozen=True)
class VerifiedArchive:
    """An archive verify_archive read whole and found valid; `kept` holds the members asked for.

    `buffered` holds every member's verified bytes (read-only views, by member path) when
    they fit in ArchiveLimits.max_buffered_bytes, else None (extraction reads the file again).
    """

    path: Path
    manifest: Manifest
    kept: Mapping[str, bytes]
    buffered: Mapping[str, memoryview] | None = None


class Sink(Protocol):
    """Where a pass puts the members it reads (kept in memory, or written out)."""

    def plan(self, manifest: Manifest) -> None: ...
    def begin(self, entry: MemberEntry) -> memoryview | None:
        """A writable buffer of the member's size to read it into, or None to be fed it."""

    def feed(self, data: bytes) -> None: ...
    def end(self) -> None: ...


@dataclass
class ReadPass:
    """One streaming read of the archive, and how far it got."""

    path: Path
    kind: str
    limits: ArchiveLimits
    sink: Sink
    stage: str
    progress: ProgressCallback
    cancel: CancelToken | None
    expected: Manifest | None = None
    done: int = 0
    total: int = 0
    seen: set[str] = field(default_factory=set)  # every entry's name, folders included
    received: set[str] = field(default_factory=set)  # the members whose data was read

    def tick(self) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()


def _check_entry(info: tarfile.TarInfo, scan: ReadPass, listed: Mapping[str, MemberEntry]) -> None:
    """Refuse a member that is not a listed regular file of the manifest's size."""
    name = info.name
    problem = name_problem(name)
    if problem is not None:
        raise refuse_member(name, f"has {problem}")
    if name in scan.seen or name == MANIFEST_NAME:
        raise refuse_member(name, "appears more than once")
    scan.seen.add(name)
    if info.isdir():
        return  # tolerated and ignored: extraction makes the folders members need
    if info.type not in _FILE_TYPES or info.sparse is not None:
        what = _TYPE_NAMES.get(info.type, f"an entry of unknown type {info.type!r}")
        if info.sparse is not None:
            what = "a sparse file"
        if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            what += f" (to {quoted(info.linkname)})"
        raise refuse_member(name, f"is {what}; a segtui archive holds regular files only")
    entry = listed.get(name)
    if entry is None:
        raise refuse_member(name, "is not listed in the manifest")
    if info.size != entry["size"]:
        raise refuse_member(
            name, f"is {info.size:,} bytes, but the manifest says {entry['size']:,} bytes"
        )


def _copy_member(
    tar: tarfile.TarFile, info: tarfile.TarInfo, entry: MemberEntry, scan: ReadPass
) -> None:
    """Stream one member's data into the sink, hashing it; refuse it if the checksum differs."""
    handle = tar.extractfile(info)
    assert isinstance(handle, io.BufferedReader)  # a regular file's
    digest = hashlib.sha256()
    size = entry["size"]
    target = scan.sink.begin(entry)
    read = 0
    while read < size:
        scan.tick()
        want = min(CHUNK, size - read)
        data: bytes | memoryview
        if target is None:
            data = chunk = handle.read(want)
            scan.sink.feed(chunk)
        else:  # straight into the sink's buffer: no copy of each chunk to hand over
            data = target[read : read + handle.readinto(target[read : read + want])]
        if not data:
            raise tarfile.ReadError("unexpected end of data")
        digest.update(data)
        read += len(data)
        scan.done += len(data)
        scan.progress(scan.done / scan.total, scan.stage)
    if digest.hexdigest() != entry["sha256"]:
        raise refuse_member(info.name, "was altered: its checksum does not match the manifest")
    scan.sink.end()


def _read_manifest(tar: tarfile.TarFile, source: Inflated, scan: ReadPass) -> Manifest:
    first = tar.next()
    if first is None:
        raise ArchiveRefused(f"Archive {scan.path} is empty: it has no {quoted(MANIFEST_NAME)}.")
    if first.name != MANIFEST_NAME or not first.isreg() or first.sparse is not None:
        raise refuse_member(first.name, f"comes first, not {quoted(MANIFEST_NAME)}")
    if first.size > scan.limits.max_manifest_bytes:
        raise refuse_member(
            MANIFEST_NAME,
            f"is {human_size(first.size)}, over the limit of "
            f"{human_size(scan.limits.max_manifest_bytes)} for a manifest",
        )
    handle = tar.extractfile(first)
    assert handle is not None
    data = handle.read(first.size)
    if len(data) != first.size:
        raise tarfile.ReadError("unexpected end of data")
    source.after = MANIFEST_NAME
    manifest = parse_manifest(data, kind=scan.kind, limits=scan.limits)
    if scan.expected is not None and manifest != scan.expected:
        raise ArchiveRefused(
            f"Archive member {quoted(MANIFEST_NAME)} changed since the archive was checked.",
            _CHANGED_HINT,
            member=MANIFEST_NAME,
        )
    return manifest


def _drain(tar: tarfile.TarFile, scan: ReadPass) -> None:
    """Read to the end of the gzip stream (its checksum is checked there): zeros only."""
    while chunk := tar.fileobj.read(CHUNK):
        scan.tick()
        if chunk.count(0) != len(chunk):
            raise ArchiveRefused(f"Archive {scan.path} has data after its end-of-archive marker.")


def _walk(tar: tarfile.TarFile, source: Inflated, scan: ReadPass) -> Manifest:
    manifest = _read_manifest(tar, source, scan)
    listed = {entry["path"]: entry for entry in manifest["members"]}
    scan.total = max(1, sum(entry["size"] for entry in manifest["members"]))
    scan.sink.plan(manifest)
    # From here on the manifest says how much there is to inflate; a bomb stops right after.
    base = source.count + scan.total + CHUNK + _END_ALLOWANCE
    entries = 0
    while True:
        source.allowed = base + _ENTRY_ALLOWANCE * (entries + 2)
        info = tar.next()
        if info is None:
            break
        scan.tick()
        entries += 1
        if entries > scan.limits.max_members:
            raise ArchiveRefused(
                f"Archive {scan.path} holds more than {scan.limits.max_members:,} members."
            )
        _check_entry(info, scan, listed)
        if not info.isdir():
            _copy_member(tar, info, listed[info.name], scan)
            scan.received.add(info.name)
        source.after = info.name
    missing = [path for path in listed if path not in scan.received]
    if missing:
        more = f" (and {len(missing) - 1:,} more)" if len(missing) > 1 else ""
        raise refuse_member(
            missing[0], f"is listed in the manifest but missing from the archive{more}"
        )
    _drain(tar, scan)
    scan.progress(1.0, scan.stage)
    return manifest


def run_pass(scan: ReadPass) -> Manifest:
    """Read the archive once, start to end, through `scan.sink`; refuse anything amiss."""
    scan.tick()
    with open_archive(scan.path) as raw:
        source = Inflated(raw, scan.path)
        limits = scan.limits
        source.allowed = limits.max_manifest_bytes + 2 * _ENTRY_ALLOWANCE + CHUNK + _END_ALLOWANCE
        try:
            with tarfile.open(fileobj=source, mode="r|", tarinfo=CheckedInfo, bufsize=CHUNK) as tar:
                return _walk(tar, source, scan)
        except STREAM_ERRORS as exc:
            raise translated(exc, scan.path, source) from exc


class _Keeper:
    """Keeps the members the caller asked for, and all of them when they fit; writes nothing."""

    def __init__(self, keep: Collection[str], limits: ArchiveLimits) -> None:
        self._keep = frozenset(keep)
        self._limits = limits
        self.kept: dict[str, bytes] = {}
        self.buffered: dict[str, memoryview] | None = None
        self._parts: list[bytes] | None = None
        # One buffer of the member's size (checked against the manifest before begin), read
        # into in place: the members are held once, never as chunks and a joined copy together.
        self._buffer: bytearray | None = None
        self._name = ""

    def plan(self, manifest: Manifest) -> None:
        wanted = [entry for entry in manifest["members"] if entry["path"] in self._keep]
        total = sum(entry["size"] for entry in wanted)
        limit = self._limits.max_kept_bytes
        if total > limit:
            largest = max(wanted, key=lambda entry: entry["size"])
            raise refuse_member(
                largest["path"],
                f"is {human_size(largest['size'])}; the members read before importing add up "
                f"to {human_size(total)}, over the limit of {human_size(limit)}",
            )
        everything = sum(entry["size"] for entry in manifest["members"])
        if everything <= self._limits.max_buffered_bytes:
            self.buffered = {}

    def begin(self, entry: MemberEntry) -> memoryview | None:
        self._name = entry["path"]
        self._parts = [] if self._name in self._keep else None
        if self.buffered is None or self._parts is not None:
            return None
        self._buffer = bytearray(entry["size"])
        return memoryview(self._buffer)

    def feed(self, data: bytes) -> None:
        if self._parts is not None:
            self._parts.append(data)

    def end(self) -> None:
        if self._parts is not None:
            data = self.kept[self._name] = b"".join(self._parts)
            if self.buffered is not None:
                self.buffered[self._name] = memoryview(data)  # the kept bytes, not a copy
        elif self._buffer is not None:
            assert self.buffered is not None  # a buffer is made only when buffering
            self.buffered[self._name] = memoryview(self._buffer).toreadonly()
        self._parts = self._buffer = None


DEFAULT_LIMITS = ArchiveLimits()


def verify_archive(
    path: Path,
    *,
    kind: str,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    keep: Collection[str] = (),
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> VerifiedArchive:
    """Read the whole archive once, writing nothing; ArchiveRefused unless all is as its manifest says.

    Members up to `limits.max_buffered_bytes` in all come back in `buffered` as hashed.
    """
    path = Path(path)
    keeper = _Keeper(keep, limits)
    manifest = run_pass(
        ReadPass(path, kind, limits, keeper, "Checking the archive", progress, cancel)
    )
    buffered = None if keeper.buffered is None else MappingProxyType(keeper.buffered)
    return VerifiedArchive(path, manifest, MappingProxyType(keeper.kept), buffered)
