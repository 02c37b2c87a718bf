"""What a segtui archive may hold: its manifest, its member names, its size limits.

Shared by the writer (core.archive) and the reader (core.archive_read), so that an
archive segtui writes is always one it would read back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from segtui import __version__
from segtui.core.errors import SegtuiError

#: The manifest format this segtui writes and reads; a newer one is refused.
ARCHIVE_FORMAT: int = 1
#: Always the archive's first member.
MANIFEST_NAME = "manifest.json"
NOT_SEGTUI_HINT = "The archive was not made by segtui export or was changed; nothing was imported."
#: PATH_MAX and NAME_MAX on Linux: longer names could not be extracted anyway.
MAX_NAME_BYTES = 4096
MAX_COMPONENT_BYTES = 255
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHOWN_CHARS = 160
_TOP_KEYS = ("format", "kind", "segtui_version", "created_at", "members")
_ENTRY_KEYS = ("path", "size", "sha256")


class MemberEntry(TypedDict):
    path: str
    size: int
    sha256: str


class Manifest(TypedDict):
    format: int
    kind: str
    segtui_version: str
    created_at: float
    members: list[MemberEntry]


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may hold before segtui refuses to read it (all sizes uncompressed)."""

    max_member_bytes: int = 8 * 2**30
    max_total_bytes: int = 32 * 2**30  # gzip bombs
    max_members: int = 100_000
    max_manifest_bytes: int = 16 * 2**20
    #: All the members verify_archive keeps in memory for the caller, together.
    max_kept_bytes: int = 256 * 2**20
    #: Members up to this much in all are held in memory as verified, so extraction need
    #: not read the archive again; above it, extraction streams and checks it a second time.
    max_buffered_bytes: int = 256 * 2**20


class ArchiveRefused(SegtuiError):
    """An archive segtui will not read: the message names the member and why."""

    def __init__(
        self, message: str, hint: str = NOT_SEGTUI_HINT, *, member: str | None = None
    ) -> None:
        super().__init__(message, hint)
        self.member = member


def human_size(size: int) -> str:
    """`size` bytes for a person: "512 bytes", "1.5 MiB"."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size:,} bytes"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    value = size / 1024
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:,.1f} {units[index]}"


def _escape(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def quoted(name: str) -> str:
    """`name` in double quotes, unprintable characters escaped (a name never drives the terminal)."""
    shown = name if len(name) <= _SHOWN_CHARS else name[:_SHOWN_CHARS] + "…"
    text = "".join(c if c.isprintable() and c not in '"\\' else _escape(c) for c in shown)
    return f'"{text}"'


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a member's path (completes "has ..."), or None when it can."""
    if not name:
        return "an empty name"
    if "\0" in name:
        return "a NUL character in its name"
    if "\\" in name:
        return "a backslash in its name"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "a control character in its name"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "a name that is not valid UTF-8"
    if name.startswith("/"):
        return "an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return 'a path outside the archive (".." component)'
    if any(part in ("", ".") for part in parts):
        return 'an empty or "." component in its path'
    if len(encoded) > MAX_NAME_BYTES:
        return f"a name longer than {MAX_NAME_BYTES} bytes"
    if any(len(part.encode("utf-8")) > MAX_COMPONENT_BYTES for part in parts):
        return f"a path component longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def names_problem(names: Iterable[str]) -> tuple[str, str] | None:
    """The first name that cannot be a member among `names`, and why (completes "member X ...")."""
    seen: set[str] = set()
    folders: set[str] = set()
    for name in names:
        problem = name_problem(name)
        if problem is not None:
            return name, f"has {problem}"
        if name == MANIFEST_NAME:
            return name, "has the manifest's reserved name"
        if name in seen:
            return name, "appears more than once"
        seen.add(name)
        parts = name.split("/")
        folders.update("/".join(parts[:end]) for end in range(1, len(parts)))
    clashes = sorted(seen & folders)
    if clashes:
        return clashes[0], "is a file but also the folder of other members"
    return None


def refuse_member(name: str, predicate: str) -> ArchiveRefused:
    return ArchiveRefused(f"Archive member {quoted(name)} {predicate}.", member=name)


def _not_manifest(reason: str) -> ArchiveRefused:
    return ArchiveRefused(
        f"Archive member {quoted(MANIFEST_NAME)} is not a segtui manifest: {reason}.",
        member=MANIFEST_NAME,
    )


def _newer(found: int, version: object) -> ArchiveRefused:
    writer = f"segtui {quoted(version)[1:-1]}" if isinstance(version, str) else "a newer segtui"
    upgrade = f"segtui {quoted(version)[1:-1]} or later" if isinstance(version, str) else "segtui"
    return ArchiveRefused(
        f"Archive member {quoted(MANIFEST_NAME)} has format {found}, newer than this segtui "
        f"({__version__}) reads (format {ARCHIVE_FORMAT}); {writer} wrote it.",
        f"Upgrade to {upgrade} to import it; nothing was imported.",
        member=MANIFEST_NAME,
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _load_json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except (ValueError, RecursionError) as exc:  # a number of 5000 digits, deep nesting
        reason = str(exc) or "it is nested too deeply"
    raise ArchiveRefused(
        f"Archive member {quoted(MANIFEST_NAME)} is not valid JSON ({reason}).",
        member=MANIFEST_NAME,
    )


def _check_keys(value: dict[str, object], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in value:
            raise _not_manifest(f'{where} lacks "{key}"')
    for key in value:
        if key not in keys:
            raise _not_manifest(f"{where} has an unknown field {quoted(key)}")


def _entry(item: object, number: int) -> MemberEntry:
    where = f"member {number}"
    if not isinstance(item, dict):
        raise _not_manifest(f"{where} is not a JSON object")
    _check_keys(item, _ENTRY_KEYS, where)
    path, size, sha256 = item["path"], item["size"], item["sha256"]
    if not isinstance(path, str):
        raise _not_manifest(f'{where} has a "path" that is not text')
    if not _is_count(size):
        raise _not_manifest(f"{where} ({quoted(path)}) has a size that is not a whole number")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise _not_manifest(f"{where} ({quoted(path)}) has a sha256 that is not 64 hex digits")
    return MemberEntry(path=path, size=size, sha256=sha256)


def _check_count(count: int, limits: ArchiveLimits) -> None:
    if count > limits.max_members:
        raise ArchiveRefused(
            f"The archive's manifest lists {count:,} members, over the limit of "
            f"{limits.max_members:,} members."
        )


def check_member_limits(entries: list[MemberEntry], limits: ArchiveLimits) -> None:
    """Refuse a member list over `limits`: too many members, one too large, too large in all."""
    _check_count(len(entries), limits)
    for entry in entries:
        if entry["size"] > limits.max_member_bytes:
            raise refuse_member(
                entry["path"],
                f"is {human_size(entry['size'])}, over the limit of "
                f"{human_size(limits.max_member_bytes)} for one member",
            )
    total = sum(entry["size"] for entry in entries)
    if total > limits.max_total_bytes:
        raise ArchiveRefused(
            f"The archive's members add up to {human_size(total)}, over the limit of "
            f"{human_size(limits.max_total_bytes)} in all."
        )


def _members(value: object, limits: ArchiveLimits) -> list[MemberEntry]:
    if not isinstance(value, list):
        raise _not_manifest('"members" is not a list')
    _check_count(len(value), limits)  # before looking at each of a million entries
    entries = [_entry(item, number) for number, item in enumerate(value, 1)]
    problem = names_problem(entry["path"] for entry in entries)
    if problem is not None:
        raise refuse_member(*problem)
    check_member_limits(entries, limits)
    return entries


def parse_manifest(data: bytes, *, kind: str, limits: ArchiveLimits) -> Manifest:
    """The manifest in `data`, checked for shape, kind, format and limits (ArchiveRefused)."""
    raw = _load_json(data)
    if not isinstance(raw, dict):
        raise _not_manifest("it is not a JSON object")
    found = raw.get("format")
    if not _is_count(found) or not isinstance(found, int) or found < 1:
        raise _not_manifest('"format" is not a whole number of 1 or more')
    if found > ARCHIVE_FORMAT:
        raise _newer(found, raw.get("segtui_version"))
    _check_keys(raw, _TOP_KEYS, "it")
    found_kind, version, created = raw["kind"], raw["segtui_version"], raw["created_at"]
    if not isinstance(found_kind, str) or not isinstance(version, str):
        raise _not_manifest('"kind" and "segtui_version" must be text')
    if found_kind != kind:
        raise ArchiveRefused(
            f"Archive member {quoted(MANIFEST_NAME)} says this is a {quoted(found_kind)} "
            f"archive, not a {quoted(kind)} archive.",
            f"Choose a {kind} archive made by segtui; nothing was imported.",
            member=MANIFEST_NAME,
        )
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise _not_manifest('"created_at" is not a number')
    if not math.isfinite(created):
        raise _not_manifest('"created_at" is not a finite number')
    members = _members(raw["members"], limits)
    return Manifest(
        format=found,
        kind=found_kind,
        segtui_version=version,
        created_at=float(created),
        members=members,
    )


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as the archive stores it (UTF-8 JSON, one member a line)."""
    head = {key: value for key, value in manifest.items() if key != "members"}
    lines = ",\n".join(json.dumps(entry, ensure_ascii=False) for entry in manifest["members"])
    text = json.dumps(head, ensure_ascii=False)[:-1] + f', "members": [\n{lines}\n]}}\n'
    return text.encode("utf-8")
