"""Malicious segtui archives, each made from a good one, for the reader's tests (and the importer's).

Every attack is ``ATTACKS[name](good, out) -> out``: `good` is any archive write_archive
made, `out` where the attacked copy goes. ``ATTACKS[name].phrase`` is a phrase the
refusal's message must contain; with ``names_member`` the refusal also names the member
(ArchiveRefused.member, quoted in the message). All of them are refused under the
default ArchiveLimits, and quickly: the bomb inflates to 8 GiB but is 8 MiB on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segtui.core.archive import ARCHIVE_FORMAT, MANIFEST_NAME

FAKE_SHA256 = "0" * 64
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
GiB = 2**30
#: The bomb: this many gzip members of 1 MiB of zeros each (about 1 KiB each compressed).
BOMB_MIB = 8192


@dataclass(frozen=True)
class Member:
    """One tar entry: its header and the data that follows it."""

    info: tarfile.TarInfo
    data: bytes = b""


def read_archive(good: Path) -> tuple[dict[str, Any], list[Member]]:
    """The manifest (parsed JSON) and the other members of a trusted archive."""
    members: list[Member] = []
    with tarfile.open(good, "r:gz") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isreg() else None
            members.append(Member(info, handle.read() if handle else b""))
    if not members or members[0].info.name != MANIFEST_NAME:
        raise ValueError(f"{good} is not an archive made by write_archive")
    manifest: dict[str, Any] = json.loads(members[0].data)
    return manifest, members[1:]


def entry(
    name: str,
    data: bytes = b"",
    kind: bytes = tarfile.REGTYPE,
    *,
    size: int | None = None,
    link: str = "",
) -> Member:
    """A tar entry `name` of type `kind`; `size` may claim more than `data` holds."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    info.size = len(data) if size is None else size
    return Member(info, data)


def listed(name: str, data: bytes) -> dict[str, Any]:
    """The manifest entry that `data` stored as `name` would have."""
    return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def tar_bytes(members: Sequence[Member], *, end: bool = True) -> bytes:
    """`members` as a tar stream, written as given (no checks), with or without its end blocks."""
    out = io.BytesIO()
    for member in members:
        out.write(member.info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        out.write(member.data)
        out.write(bytes(-len(member.data) % tarfile.BLOCKSIZE))
    if end:
        out.write(bytes(2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def manifest_member(manifest: dict[str, Any] | bytes) -> Member:
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return entry(MANIFEST_NAME, data)


def pack(out: Path, members: Sequence[Member], *, after: bytes = b"") -> Path:
    """Write `members` gzipped to `out`, `after` appended to the tar stream; return `out`."""
    out.write_bytes(gzip.compress(tar_bytes(members) + after, compresslevel=1, mtime=0))
    return out


def _rewrite(good: Path, out: Path, manifest: dict[str, Any], members: list[Member]) -> Path:
    return pack(out, [manifest_member(manifest), *members])


def _with_extra(member: Member) -> Callable[[Path, Path], Path]:
    """An attack that adds `member` (not in the manifest) after the good members."""

    def build(good: Path, out: Path) -> Path:
        manifest, members = read_archive(good)
        return _rewrite(good, out, manifest, [*members, member])

    return build


def _target(manifest: dict[str, Any], members: list[Member]) -> int:
    """The index of a non-empty listed member, adding one when the archive has none."""
    for index, member in enumerate(members):
        if member.data:
            return index
    data = b"a member added by the attack\n"
    manifest["members"].append(listed("attack/added.txt", data))
    members.append(entry("attack/added.txt", data))
    return len(members) - 1


def altered(good: Path, out: Path) -> Path:
    """One byte of a member changed, the manifest untouched."""
    manifest, members = read_archive(good)
    index = _target(manifest, members)
    data = bytearray(members[index].data)
    data[0] ^= 0xFF
    members[index] = Member(members[index].info, bytes(data))
    return _rewrite(good, out, manifest, members)


def wrong_size(good: Path, out: Path) -> Path:
    """The manifest says a member is one byte longer than it is."""
    manifest, members = read_archive(good)
    index = _target(manifest, members)
    name = members[index].info.name
    for item in manifest["members"]:
        if item["path"] == name:
            item["size"] += 1
    return _rewrite(good, out, manifest, members)


def missing(good: Path, out: Path) -> Path:
    """A listed member left out of the tar."""
    manifest, members = read_archive(good)
    index = _target(manifest, members)
    del members[index]
    return _rewrite(good, out, manifest, members)


def duplicate(good: Path, out: Path) -> Path:
    """A listed member stored twice (extraction would overwrite the first)."""
    manifest, members = read_archive(good)
    index = _target(manifest, members)
    return _rewrite(good, out, manifest, [*members, members[index]])


def _manifest_changed(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, Path], Path]:
    def build(good: Path, out: Path) -> Path:
        manifest, members = read_archive(good)
        change(manifest)
        return _rewrite(good, out, manifest, members)

    return build


def _newer(manifest: dict[str, Any]) -> None:
    manifest["format"] = ARCHIVE_FORMAT + 1
    manifest["segtui_version"] = "99.0.0"
    manifest["members"] = {"changed": "in a way this segtui cannot know"}


def _other_kind(manifest: dict[str, Any]) -> None:
    manifest["kind"] = "deployment" if manifest["kind"] != "deployment" else "project"


def _huge(count: int, size: int) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        manifest["members"] += [
            {"path": f"huge-{n}.bin", "size": size, "sha256": FAKE_SHA256} for n in range(count)
        ]

    return change


def _too_many(manifest: dict[str, Any]) -> None:
    manifest["members"] += [
        {"path": f"many/{n}", "size": 0, "sha256": EMPTY_SHA256} for n in range(100_001)
    ]


def _not_a_list(manifest: dict[str, Any]) -> None:
    manifest["members"] = {"models/model.bin": 3}


def member_over_limit(good: Path, out: Path) -> Path:
    """A listed member of 9 GiB (the tar header says so too; the data never comes)."""
    manifest, _ = read_archive(good)
    _huge(1, 9 * GiB)(manifest)
    huge = entry("huge-0.bin", b"", size=9 * GiB)
    return pack(out, [manifest_member(manifest), huge])


def manifest_not_first(good: Path, out: Path) -> Path:
    manifest, members = read_archive(good)
    first = members[:1] or [entry("first.txt", b"first")]
    return pack(out, [*first, manifest_member(manifest), *members[1:]])


def manifest_not_json(good: Path, out: Path) -> Path:
    _, members = read_archive(good)
    return pack(out, [manifest_member(b'{"format": 1, "kind": '), *members])


def manifest_dotdot(good: Path, out: Path) -> Path:
    """The manifest lists a `..` path, and the tar holds it."""
    manifest, members = read_archive(good)
    data = b"escaped\n"
    manifest["members"].append(listed("../escape.txt", data))
    return _rewrite(good, out, manifest, [*members, entry("../escape.txt", data)])


def file_folder_clash(good: Path, out: Path) -> Path:
    """Both "clash" and "clash/inner" listed: one would have to be a file and a folder."""
    manifest, members = read_archive(good)
    manifest["members"] += [listed("clash", b""), listed("clash/inner", b"")]
    return _rewrite(good, out, manifest, [*members, entry("clash"), entry("clash/inner")])


def pax_path(good: Path, out: Path) -> Path:
    """An innocent ustar name whose pax header says "../pax-escape.txt"."""
    member = entry("innocent.txt", b"pax\n")
    member.info.pax_headers = {"path": "../pax-escape.txt"}
    return _with_extra(member)(good, out)


def long_header(good: Path, out: Path) -> Path:
    """A GNU long-name header of 100 KiB (tarfile would read it into memory whole)."""
    header = entry("././@LongLink", b"x" * (100 << 10), tarfile.GNUTYPE_LONGNAME)
    return _with_extra(header)(good, out)


def folder_for_file(good: Path, out: Path) -> Path:
    """A listed file stored as a folder entry of the same name (no data ever comes)."""
    manifest, members = read_archive(good)
    index = _target(manifest, members)
    members[index] = entry(members[index].info.name, kind=tarfile.DIRTYPE)
    return _rewrite(good, out, manifest, members)


def header_chain(good: Path, out: Path) -> Path:
    """3000 pax headers in a row (tarfile follows each by recursion, holding all of them)."""
    manifest, members = read_archive(good)
    pax = entry("././@PaxHeader", b"19 comment=chained\n", tarfile.XHDTYPE)
    head = tar_bytes([manifest_member(manifest), *members], end=False)
    chain = tar_bytes([pax] * 3000, end=False) + tar_bytes([entry("last.txt", b"x")])
    out.write_bytes(gzip.compress(head + chain, compresslevel=1, mtime=0))
    return out


def data_after_end(good: Path, out: Path) -> Path:
    """A member hidden after the end-of-archive blocks."""
    manifest, members = read_archive(good)
    hidden = tar_bytes([entry("hidden.txt", b"hidden\n")])
    return pack(out, [manifest_member(manifest), *members], after=hidden)


def gzip_bomb(good: Path, out: Path) -> Path:
    """The good archive followed by 8 GiB of zeros (8192 gzip members of 1 MiB each)."""
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    with out.open("wb") as handle:
        handle.write(good.read_bytes())
        for _ in range(BOMB_MIB):
            handle.write(zeros)
    return out


def truncated(good: Path, out: Path) -> Path:
    data = good.read_bytes()
    out.write_bytes(data[: len(data) * 2 // 3])
    return out


def not_gzip(good: Path, out: Path) -> Path:
    out.write_bytes(b"This is a text file, not an archive.\n" * 20)
    return out


def not_tar(good: Path, out: Path) -> Path:
    out.write_bytes(gzip.compress(b"gzip data, but no tar inside\n" * 40, mtime=0))
    return out


def empty_tar(good: Path, out: Path) -> Path:
    return pack(out, [])


@dataclass(frozen=True)
class Attack:
    """How to build one malicious archive, and what its refusal must say."""

    build: Callable[[Path, Path], Path]
    phrase: str
    names_member: bool = True

    def __call__(self, good: Path, out: Path) -> Path:
        return self.build(good, out)


DOTDOT = '(".." component)'
ATTACKS: dict[str, Attack] = {
    "absolute_path": Attack(_with_extra(entry("/tmp/segtui-absolute.txt", b"x")), "absolute path"),
    "dotdot": Attack(_with_extra(entry("models/../../segtui-escape.txt", b"x")), DOTDOT),
    "manifest_dotdot": Attack(manifest_dotdot, DOTDOT),
    "pax_path": Attack(pax_path, DOTDOT),
    "backslash": Attack(_with_extra(entry("models\\..\\evil.bin", b"x")), "backslash"),
    "symlink": Attack(
        _with_extra(entry("link", kind=tarfile.SYMTYPE, link="/etc/passwd")), "is a symbolic link"
    ),
    "hardlink": Attack(
        _with_extra(entry("hard", kind=tarfile.LNKTYPE, link=MANIFEST_NAME)), "is a hard link"
    ),
    "char_device": Attack(
        _with_extra(entry("null", kind=tarfile.CHRTYPE)), "is a character device"
    ),
    "block_device": Attack(_with_extra(entry("sda", kind=tarfile.BLKTYPE)), "is a block device"),
    "fifo": Attack(_with_extra(entry("pipe", kind=tarfile.FIFOTYPE)), "is a FIFO"),
    "sparse": Attack(_with_extra(entry("sparse.bin", kind=tarfile.GNUTYPE_SPARSE)), "sparse file"),
    "unlisted": Attack(_with_extra(entry("unlisted.txt", b"x")), "is not listed in the manifest"),
    "duplicate": Attack(duplicate, "appears more than once"),
    "file_folder_clash": Attack(file_folder_clash, "also the folder of other members"),
    "altered": Attack(altered, "checksum does not match"),
    "wrong_size": Attack(wrong_size, "but the manifest says"),
    "missing": Attack(missing, "missing from the archive"),
    "newer_format": Attack(_manifest_changed(_newer), "newer than this segtui"),
    "wrong_kind": Attack(_manifest_changed(_other_kind), "archive, not a"),
    "manifest_not_first": Attack(manifest_not_first, 'not "manifest.json"'),
    "manifest_not_json": Attack(manifest_not_json, "is not valid JSON"),
    "manifest_shape": Attack(_manifest_changed(_not_a_list), "is not a segtui manifest"),
    "member_over_limit": Attack(member_over_limit, "for one member"),
    "total_over_limit": Attack(_manifest_changed(_huge(5, 7 * GiB)), "in all", False),
    "too_many_members": Attack(_manifest_changed(_too_many), "members, over the limit", False),
    "long_header": Attack(long_header, "extended header"),
    "gzip_bomb": Attack(gzip_bomb, "decompresses to more than"),
    "folder_for_file": Attack(folder_for_file, "missing from the archive"),
    "header_chain": Attack(header_chain, "nested too deeply"),
    "data_after_end": Attack(data_after_end, "data after its end", False),
    "truncated": Attack(truncated, "is truncated", False),
    "not_gzip": Attack(not_gzip, "is not a .tar.gz archive", False),
    "not_tar": Attack(not_tar, "is not a .tar.gz archive", False),
    "empty_tar": Attack(empty_tar, "is empty", False),
}


def attack(name: str, good: Path, out: Path) -> Path:
    """Build the attack `name` from the good archive `good` into `out`."""
    return ATTACKS[name](good, out)
