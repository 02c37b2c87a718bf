"""The bytes of an untrusted .tar.gz: counted as they inflate, headers checked, errors named.

tarfile alone would take a damaged header for the archive's end, read a pax header of
any size into memory, and let a gzip bomb inflate for as long as it likes; the reader
here stops each of these, and turns gzip, zlib and tarfile errors into clear refusals.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Self

from segtui.core.archive_manifest import ArchiveRefused, human_size, quoted, refuse_member
from segtui.core.errors import SegtuiError

#: How much is read at a time (and how far tarfile reads ahead).
CHUNK = 1 << 20
#: A pax or GNU long-name header is held in memory whole: segtui's are a few KiB.
MAX_META_BYTES = 64 << 10
_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_TRUNCATED_HINT = "The file is incomplete: copy it again; nothing was imported."


class BadHeader(Exception):
    """A tar header tarfile would quietly take for the archive's end."""

    def __init__(self, detail: str, *, truncated: bool) -> None:
        super().__init__(detail)
        self.truncated = truncated


class CheckedInfo(tarfile.TarInfo):
    """TarInfo that reports damaged headers and refuses oversized extended headers early."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        if len(buf) != tarfile.BLOCKSIZE:
            raise BadHeader("truncated header", truncated=True)
        if buf.count(0) == tarfile.BLOCKSIZE:
            return super().frombuf(buf, encoding, errors)  # the archive's end, for tarfile
        try:
            info = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            raise BadHeader(str(exc), truncated=False) from None
        if info.type in _META_TYPES and info.size > MAX_META_BYTES:
            raise refuse_member(
                info.name,
                f"has an extended header of {human_size(info.size)}, over the limit of "
                f"{human_size(MAX_META_BYTES)}",
            )
        return info


class Inflated:
    """The archive's decompressed bytes, counted as they come; refused past `allowed`."""

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self._path = path
        self.count = 0
        self.allowed = 0
        self.after: str | None = None  # the last member read, for messages

    def read(self, size: int, /) -> bytes:
        data = self._gzip.read(size)
        self.count += len(data)
        if self.count > self.allowed:
            where = f"after member {quoted(self.after)}" if self.after else "before its manifest"
            raise ArchiveRefused(
                f"Archive {self._path} decompresses to more than its manifest declares: "
                f"reading stopped at {human_size(self.count)}, {where}.",
                member=self.after,
            )
        return data

    def write(self, b: bytes, /) -> int:
        raise OSError("read-only")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> int:
        raise OSError("not seekable")

    def close(self) -> None:
        self._gzip.close()


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[BinaryIO]:
    """The archive file, opened for reading; a folder, FIFO or device refused (never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SegtuiError(f"Archive {path} does not exist.", "Check the file name.") from None
    except OSError as exc:
        raise _read_failure(path, exc) from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise SegtuiError(f"Archive {path} is a folder.", "Give the archive file.")
        raise ArchiveRefused(
            f"Archive {path} is not a regular file.", "Give the archive file itself."
        )
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _read_failure(path: Path, exc: OSError) -> SegtuiError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return SegtuiError(
        f"Could not read archive {path}: {reason}.",
        "Check that the file is readable and try again; nothing was imported.",
    )


def _not_tar(path: Path, why: str) -> ArchiveRefused:
    return ArchiveRefused(f"Archive {path} is not a .tar.gz archive ({why}).")


def _truncated(path: Path, after: str | None) -> ArchiveRefused:
    where = f": it ends in or after member {quoted(after)}" if after else ""
    return ArchiveRefused(f"Archive {path} is truncated{where}.", _TRUNCATED_HINT, member=after)


def _damaged(path: Path, after: str | None, detail: str) -> ArchiveRefused:
    where = f" after member {quoted(after)}" if after else ""
    return ArchiveRefused(f"Archive {path} is damaged{where} ({detail}).", member=after)


def translated(exc: Exception, path: Path, source: Inflated) -> SegtuiError:
    """What an error from gzip, zlib or tarfile means for the user."""
    after = source.after
    if isinstance(exc, BadHeader):
        if after is None and source.count <= tarfile.BLOCKSIZE:
            return _not_tar(path, "it is empty" if source.count == 0 else "no tar header")
        if exc.truncated:
            return _truncated(path, after)
        return _not_tar(path, "no tar header") if after is None else _damaged(path, after, str(exc))
    if isinstance(exc, EOFError):
        return _truncated(path, after)
    if isinstance(exc, gzip.BadGzipFile):
        return (
            _not_tar(path, "not gzip data")
            if source.count == 0
            else _damaged(path, after, str(exc))
        )
    if isinstance(exc, zlib.error):
        return _damaged(path, after, f"bad compressed data: {exc}")
    if isinstance(exc, tarfile.ReadError):
        if "unexpected end of data" in str(exc):
            return _truncated(path, after)
        return _not_tar(path, str(exc)) if after is None else _damaged(path, after, str(exc))
    if isinstance(exc, RecursionError):
        return _damaged(path, after, "headers nested too deeply")
    assert isinstance(exc, OSError)
    return _read_failure(path, exc)


#: What reading an archive may raise besides SegtuiError: see translated().
STREAM_ERRORS = (BadHeader, EOFError, zlib.error, tarfile.TarError, RecursionError, OSError)
