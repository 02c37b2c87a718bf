"""The archive under export/import: a round trip, every attack refused, nothing written on refusal."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import stat
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from archive_attacks import (
    ATTACKS,
    BOMB_MIB,
    EMPTY_SHA256,
    Member,
    entry,
    manifest_member,
    pack,
    read_archive,
    tar_bytes,
)

from segtui import __version__
from segtui.core.archive import (
    ARCHIVE_FORMAT,
    MANIFEST_NAME,
    ArchiveLimits,
    ArchiveRefused,
    Manifest,
    MemberEntry,
    VerifiedArchive,
    extract_archive,
    verify_archive,
    write_archive,
)
from segtui.core.archive_manifest import quoted
from segtui.core.errors import Cancelled, DiskFullError, SegtuiError
from segtui.core.progress import CancelToken
from segtui.core.safe_files import OutputFileError

KIND = "project"
NOTHING_IMPORTED = "nothing was imported"
#: A model file of three read chunks (1 MiB each), so progress and cancel happen mid-member.
MODEL = random.Random(15).randbytes(5 << 19)
CONTENT = {
    "project.json": json.dumps({"name": "Mask R-CNN", "children": [2]}).encode(),
    "models/1/model.xml": b"<net name='tiny'/>\n",
    "models/1/model.bin": MODEL,
    "empty.txt": b"",
    "images/ünï cødé photo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "deep/a/b/c/d/leaf.txt": b"leaf\n",
}
KEEP = ("project.json", "models/1/model.xml")
#: Limits that make verify_archive buffer nothing, so extraction streams the file again.
STREAMING = ArchiveLimits(max_buffered_bytes=1)
PATHS = {"buffered": ArchiveLimits(), "streaming": STREAMING}

Listing = dict[str, tuple[int, int, str]]


def listing(folder: Path) -> Listing:
    """Every path below `folder` with its mode, size and content hash (files only)."""
    found: Listing = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest = ""
        if stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found[path.relative_to(folder).as_posix()] = (info.st_mode, info.st_size, digest)
    return found


@pytest.fixture
def sources(tmp_path: Path) -> list[tuple[str, Path]]:
    folder = tmp_path / "sources"
    folder.mkdir()
    members = []
    for number, (name, data) in enumerate(CONTENT.items()):
        path = folder / f"file-{number}"  # a source's name has nothing to do with its member's
        path.write_bytes(data)
        members.append((name, path))
    return members


@pytest.fixture
def good(tmp_path: Path, sources: list[tuple[str, Path]]) -> Path:
    out = tmp_path / "archives" / "good.tar.gz"
    out.parent.mkdir()
    write_archive(out, sources, kind=KIND)
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("how", list(PATHS))
def test_round_trip_keeps_every_byte(
    tmp_path: Path, sources: list[tuple[str, Path]], how: str
) -> None:
    limits = PATHS[how]
    out = tmp_path / "project.tar.gz"
    before = time.time()
    manifest = write_archive(out, sources, kind=KIND)
    assert manifest["format"] == ARCHIVE_FORMAT == 1
    assert (manifest["kind"], manifest["segtui_version"]) == (KIND, __version__)
    assert before <= manifest["created_at"] <= time.time()
    expected = [MemberEntry(path=n, size=len(d), sha256=_sha(d)) for n, d in CONTENT.items()]
    assert manifest["members"] == expected

    verified = verify_archive(out, kind=KIND, keep=KEEP, limits=limits)
    assert verified.path == out
    assert verified.manifest == manifest
    assert dict(verified.kept) == {name: CONTENT[name] for name in KEEP}
    if how == "streaming":
        assert verified.buffered is None
    else:
        assert verified.buffered is not None
        assert {name: bytes(view) for name, view in verified.buffered.items()} == CONTENT

    dest = tmp_path / "workspace" / "import-1"
    dest.parent.mkdir()
    extract_archive(verified, dest, limits=limits)
    files = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*") if p.is_file()}
    assert {name: path.read_bytes() for name, path in files.items()} == CONTENT
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in files.values()} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in dest.rglob("*") if p.is_dir()} == {0o700}


def test_archive_holds_the_manifest_first_then_plain_files(
    good: Path, sources: list[tuple[str, Path]]
) -> None:
    with tarfile.open(good, "r:gz") as tar:
        infos = tar.getmembers()
        manifest = json.loads(tar.extractfile(infos[0]).read())  # type: ignore[union-attr]
    assert [info.name for info in infos] == [MANIFEST_NAME, *CONTENT]
    assert {(i.type, i.mode, i.uid, i.gid, i.uname, i.gname) for i in infos} == {
        (tarfile.REGTYPE, 0o644, 0, 0, "", "")
    }
    assert [info.size for info in infos[1:]] == [len(data) for data in CONTENT.values()]
    assert manifest == verify_archive(good, kind=KIND).manifest


@pytest.mark.parametrize("how", list(PATHS))
def test_progress_runs_from_zero_to_one_by_bytes(
    tmp_path: Path, good: Path, sources: list[tuple[str, Path]], how: str
) -> None:
    seen: dict[str, list[float]] = {}

    def record(fraction: float, stage: str) -> None:
        seen.setdefault(stage, []).append(fraction)

    write_archive(tmp_path / "again.tar.gz", sources, kind=KIND, progress=record)
    checking, writing = seen.pop("Checking the files"), seen.pop("Writing the archive")
    assert checking == sorted(checking) and writing == sorted(writing)
    assert checking[0] > 0 and checking[-1] == pytest.approx(0.5)
    assert writing[0] > 0.5 and writing[-1] == 1.0
    # The 2.5 MiB model is hashed and copied in 1 MiB reads: several steps in each pass.
    assert len(checking) >= 3 and len(writing) >= 3
    limits = PATHS[how]
    verified = verify_archive(good, kind=KIND, limits=limits, progress=record)
    assert (verified.buffered is None) == (how == "streaming")
    extract_archive(verified, tmp_path / "dest", limits=limits, progress=record)
    for stage in ("Checking the archive", "Extracting the archive"):
        fractions = seen[stage]
        assert fractions == sorted(fractions) and len(fractions) >= 3 and fractions[-1] == 1.0


@pytest.mark.parametrize("how", list(PATHS))
@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_is_refused_naming_why_and_writing_nothing(
    name: str, how: str, good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attack = ATTACKS[name]
    attacked = attack(good, tmp_path / "archives" / f"{name}.tar.gz")
    monkeypatch.chdir(tmp_path)  # a stray relative write would land in the listing
    before = listing(tmp_path)
    with pytest.raises(ArchiveRefused) as refused:
        verify_archive(attacked, kind=KIND, limits=PATHS[how])
    assert listing(tmp_path) == before
    error = refused.value
    assert attack.phrase in error.message
    assert NOTHING_IMPORTED in error.hint
    if attack.names_member:
        assert error.member is not None and quoted(error.member) in error.message
    assert "\n" not in error.message and error.message.endswith(".")


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_archive_attacked_after_verification_is_refused_on_streaming_extraction(
    name: str, good: Path, tmp_path: Path
) -> None:
    verified = verify_archive(good, kind=KIND, limits=STREAMING)
    ATTACKS[name](good, good.with_name("attacked.tar.gz")).replace(good)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    with pytest.raises(ArchiveRefused):
        extract_archive(verified, workspace / "import", limits=STREAMING)
    assert listing(workspace) == {}


@pytest.mark.parametrize("name", [*ATTACKS, "removed"])
def test_a_buffered_extraction_writes_the_verified_bytes_whatever_the_file_became(
    name: str, good: Path, tmp_path: Path
) -> None:
    """By choice: the buffered bytes are the ones verified; the file is not read again."""
    verified = verify_archive(good, kind=KIND)
    assert verified.buffered is not None
    if name == "removed":
        good.unlink()
    else:
        ATTACKS[name](good, good.with_name("attacked.tar.gz")).replace(good)
    dest = tmp_path / "import"
    extract_archive(verified, dest)
    files = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert files == CONTENT


def test_buffered_members_are_held_once(good: Path) -> None:
    verified = verify_archive(good, kind=KIND, keep=KEEP)
    assert verified.buffered is not None and verified.buffered.keys() == CONTENT.keys()
    for name, view in verified.buffered.items():
        assert view.readonly and view.nbytes == len(CONTENT[name])
        if name in KEEP:
            assert view.obj is verified.kept[name]  # a view of the kept bytes, not a copy
        else:
            assert isinstance(view.obj, bytearray) and len(view.obj) == len(CONTENT[name])


def test_members_are_buffered_up_to_the_limit(good: Path) -> None:
    total = sum(map(len, CONTENT.values()))
    at = verify_archive(good, kind=KIND, limits=ArchiveLimits(max_buffered_bytes=total))
    assert at.buffered is not None and len(at.buffered) == len(CONTENT)
    over = verify_archive(good, kind=KIND, limits=ArchiveLimits(max_buffered_bytes=total - 1))
    assert over.buffered is None and over.manifest == at.manifest


def test_gzip_bomb_stops_early(good: Path, tmp_path: Path) -> None:
    bomb = ATTACKS["gzip_bomb"](good, tmp_path / "bomb.tar.gz")
    assert bomb.stat().st_size < BOMB_MIB * 2048  # 8 GiB of zeros in a few MiB
    started = time.perf_counter()
    with pytest.raises(ArchiveRefused, match="decompresses to more than") as refused:
        verify_archive(bomb, kind=KIND)
    # Inflating all 8 GiB takes many seconds; the reader stops a few MiB past the manifest's total.
    assert time.perf_counter() - started < 3
    stopped = re.search(r"reading stopped at ([\d.,]+) MiB", refused.value.message)
    assert stopped is not None and float(stopped.group(1)) < len(MODEL) / 2**20 + 3


@pytest.mark.parametrize(
    ("limits", "phrase"),
    [
        (ArchiveLimits(max_member_bytes=len(MODEL) - 1), '"models/1/model.bin" is 2.5 MiB, over'),
        (ArchiveLimits(max_total_bytes=len(MODEL)), "in all"),
        (ArchiveLimits(max_members=len(CONTENT) - 1), "members, over the limit of 5 members"),
        (ArchiveLimits(max_manifest_bytes=200), "for a manifest"),
        (ArchiveLimits(max_kept_bytes=10), "read before importing"),
    ],
)
def test_limits_are_enforced(good: Path, limits: ArchiveLimits, phrase: str) -> None:
    with pytest.raises(ArchiveRefused, match=re.escape(phrase)):
        verify_archive(good, kind=KIND, limits=limits, keep=KEEP)
    exact = ArchiveLimits(
        max_member_bytes=len(MODEL),
        max_total_bytes=sum(map(len, CONTENT.values())),
        max_members=len(CONTENT),
        max_kept_bytes=sum(len(CONTENT[name]) for name in KEEP),
    )
    assert verify_archive(good, kind=KIND, limits=exact, keep=KEEP).kept.keys() == set(KEEP)


def test_directory_entries_are_tolerated(good: Path, tmp_path: Path) -> None:
    manifest, members = read_archive(good)
    folders = [entry(name, kind=tarfile.DIRTYPE) for name in ("models", "models/1", "spare")]
    repacked = pack(tmp_path / "folders.tar.gz", [manifest_member(manifest), *folders, *members])
    verified = verify_archive(repacked, kind=KIND)
    extract_archive(verified, tmp_path / "dest")
    assert not (tmp_path / "dest" / "spare").exists()  # folders come from members only
    assert (tmp_path / "dest" / "models" / "1" / "model.bin").read_bytes() == MODEL


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_a_cut_archive_is_truncated(good: Path, tmp_path: Path, fraction: float) -> None:
    data = good.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ArchiveRefused, match="is truncated") as refused:
        verify_archive(cut, kind=KIND)
    assert "copy it again" in refused.value.hint


def test_a_missing_gzip_trailer_is_truncated(good: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(ArchiveRefused, match="is truncated: it ends in or after member"):
        verify_archive(cut, kind=KIND)


def test_a_tar_cut_inside_a_member_or_without_its_end_is_truncated(
    good: Path, tmp_path: Path
) -> None:
    manifest, members = read_archive(good)
    whole = tar_bytes([manifest_member(manifest), *members], end=False)
    for tar in (whole, whole[: len(whole) // 2]):  # the tar is cut, the gzip around it whole
        cut = tmp_path / "cut.tar.gz"
        cut.write_bytes(gzip.compress(tar))
        with pytest.raises(ArchiveRefused, match="is truncated"):
            verify_archive(cut, kind=KIND)


def test_a_damaged_header_is_not_taken_for_the_end(good: Path, tmp_path: Path) -> None:
    manifest, members = read_archive(good)
    whole = tar_bytes([manifest_member(manifest), *members])
    header = len(tar_bytes([manifest_member(manifest)], end=False))
    damaged = whole[:header] + b"garbage!" + whole[header + 8 :]
    path = tmp_path / "damaged.tar.gz"
    path.write_bytes(gzip.compress(damaged))
    with pytest.raises(ArchiveRefused, match=r'is damaged after member "manifest.json" \(bad'):
        verify_archive(path, kind=KIND)


def test_a_control_character_never_reaches_the_terminal(good: Path, tmp_path: Path) -> None:
    manifest, members = read_archive(good)
    evil = entry("\x1b[2Jcleared\x07.txt", b"x")
    path = pack(tmp_path / "ansi.tar.gz", [manifest_member(manifest), *members, evil])
    with pytest.raises(ArchiveRefused, match="control character") as refused:
        verify_archive(path, kind=KIND)
    assert '"\\x1b[2Jcleared\\x07.txt"' in refused.value.message
    assert "\x1b" not in str(refused.value)


def test_the_archive_file_itself_must_be_a_readable_file(tmp_path: Path) -> None:
    with pytest.raises(SegtuiError, match="does not exist"):
        verify_archive(tmp_path / "nothing.tar.gz", kind=KIND)
    with pytest.raises(SegtuiError, match="is a folder"):
        verify_archive(tmp_path, kind=KIND)
    fifo = tmp_path / "fifo.tar.gz"
    os.mkfifo(fifo)
    with pytest.raises(ArchiveRefused, match="is not a regular file"):
        verify_archive(fifo, kind=KIND)  # refused, not waited on
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    with pytest.raises(ArchiveRefused, match=r"not a .tar.gz archive \(not gzip data|is empty"):
        verify_archive(empty, kind=KIND)


def test_extraction_refuses_a_member_changed_after_verification(good: Path, tmp_path: Path) -> None:
    verified = verify_archive(good, kind=KIND, limits=STREAMING)
    manifest, members = read_archive(good)
    model = members[2]  # after two members extraction will have written
    members[2] = Member(model.info, model.data[:-1] + bytes([model.data[-1] ^ 1]))
    pack(good, [manifest_member(manifest), *members])
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    with pytest.raises(ArchiveRefused, match=re.escape('"models/1/model.bin" was altered')):
        extract_archive(verified, workspace / "import", limits=STREAMING)
    assert listing(workspace) == {}


def test_extraction_refuses_a_manifest_changed_after_verification(
    good: Path, tmp_path: Path
) -> None:
    verified = verify_archive(good, kind=KIND, limits=STREAMING)
    manifest, members = read_archive(good)
    manifest["created_at"] += 1
    pack(good, [manifest_member(manifest), *members])
    assert verify_archive(good, kind=KIND).manifest != verified.manifest  # valid, but another
    with pytest.raises(ArchiveRefused, match="changed since the archive was checked"):
        extract_archive(verified, tmp_path / "import", limits=STREAMING)
    assert not (tmp_path / "import").exists()


def test_extraction_needs_a_new_folder(good: Path, tmp_path: Path) -> None:
    verified = verify_archive(good, kind=KIND)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(OutputFileError, match="already exists"):
        extract_archive(verified, existing)
    assert listing(existing) == {"keep.txt": listing(existing)["keep.txt"]}
    link = tmp_path / "link"
    link.symlink_to(existing)
    with pytest.raises(OutputFileError, match="already exists"):
        extract_archive(verified, link)
    with pytest.raises(OutputFileError, match="does not exist"):
        extract_archive(verified, tmp_path / "no" / "such" / "folder")
    assert (existing / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("buffered", [None, {}])
def test_extraction_checks_the_free_space_first(
    good: Path, tmp_path: Path, buffered: dict[str, memoryview] | None
) -> None:
    verified = verify_archive(good, kind=KIND)
    member = MemberEntry(path="huge.bin", size=2**60, sha256=EMPTY_SHA256)
    huge: Manifest = {**verified.manifest, "members": [member]}
    needed = re.escape(f"needs 1,024.0 PiB of free space in {tmp_path}, but only")
    with pytest.raises(DiskFullError, match=needed) as full:
        extract_archive(VerifiedArchive(good, huge, {}, buffered), tmp_path / "import")
    assert NOTHING_IMPORTED in full.value.hint
    assert not (tmp_path / "import").exists()


def _cancel_after(token: CancelToken, stage: str, calls: int) -> Callable[[float, str], None]:
    seen = [0]

    def progress(fraction: float, name: str) -> None:
        if name == stage:
            seen[0] += 1
            if seen[0] == calls:
                token.cancel()

    return progress


@pytest.mark.parametrize("stage", ["Checking the files", "Writing the archive"])
def test_cancelled_write_leaves_no_partial_and_the_old_file_intact(
    tmp_path: Path, sources: list[tuple[str, Path]], stage: str
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "project.tar.gz"
    out.write_bytes(b"the previous export")
    before = listing(folder)
    token = CancelToken()
    with pytest.raises(Cancelled):
        write_archive(
            out, sources, kind=KIND, progress=_cancel_after(token, stage, 2), cancel=token
        )
    assert token.cancelled
    assert listing(folder) == before  # no partial file, the old export untouched


@pytest.mark.parametrize("how", list(PATHS))
def test_cancelled_verify_and_extract_leave_nothing(good: Path, tmp_path: Path, how: str) -> None:
    limits = PATHS[how]
    token = CancelToken()
    before = listing(tmp_path)
    with pytest.raises(Cancelled):
        verify_archive(
            good,
            kind=KIND,
            limits=limits,
            progress=_cancel_after(token, "Checking the archive", 1),
            cancel=token,
        )
    assert listing(tmp_path) == before
    verified = verify_archive(good, kind=KIND, limits=limits)
    assert (verified.buffered is None) == (how == "streaming")
    token = CancelToken()
    made: list[str] = []

    def progress(fraction: float, stage: str) -> None:
        made.extend(p.name for p in (tmp_path / "import").rglob("*") if p.is_file())
        cancel_at(fraction, stage)

    # Cancelled after the second step: two members are written by then, the model begun.
    cancel_at = _cancel_after(token, "Extracting the archive", 2)
    with pytest.raises(Cancelled):
        extract_archive(
            verified, tmp_path / "import", limits=limits, progress=progress, cancel=token
        )
    assert "model.xml" in made
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("../x", '".." component'),
        ("models/../../x", '".." component'),
        ("/etc/passwd", "absolute path"),
        ("a\\b", "backslash"),
        ("", "empty name"),
        ("a//b", 'empty or "." component'),
        ("./a", 'empty or "." component'),
        ("a/", 'empty or "." component'),
        ("bad\nname", "control character"),
        ("nul\0name", "NUL character"),
        ("\udcff", "not valid UTF-8"),
        ("x" * 256, "component longer than 255 bytes"),
        ("/".join(["y" * 200] * 21), "longer than 4096 bytes"),
        (MANIFEST_NAME, "reserved name"),
    ],
)
def test_write_refuses_a_bad_member_name(
    tmp_path: Path, sources: list[tuple[str, Path]], name: str, phrase: str
) -> None:
    before = listing(tmp_path)
    with pytest.raises(SegtuiError, match=re.escape(phrase)):
        write_archive(tmp_path / "out.tar.gz", [*sources, (name, sources[0][1])], kind=KIND)
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    ("names", "phrase"),
    [(["a", "a"], "appears more than once"), (["a", "a/b"], "also the folder of other members")],
)
def test_write_refuses_names_that_would_collide(
    tmp_path: Path, sources: list[tuple[str, Path]], names: list[str], phrase: str
) -> None:
    with pytest.raises(SegtuiError, match=phrase):
        write_archive(tmp_path / "out.tar.gz", [(n, sources[0][1]) for n in names], kind=KIND)
    assert not (tmp_path / "out.tar.gz").exists()


def test_write_refuses_sources_that_are_not_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for source, phrase in [
        (tmp_path, "is not a regular file"),
        (fifo, "is not a regular file"),
        (tmp_path / "gone", "does not exist"),
    ]:
        with pytest.raises(
            SegtuiError, match=f"Cannot export {re.escape(str(source))}: it {phrase}"
        ):
            write_archive(tmp_path / "out.tar.gz", [("member", source)], kind=KIND)
    assert not (tmp_path / "out.tar.gz").exists()


@pytest.mark.parametrize("change", [b"LEAF\n", b"le"])
def test_write_refuses_a_source_changed_between_its_two_reads(
    tmp_path: Path, sources: list[tuple[str, Path]], change: bytes
) -> None:
    leaf = dict(sources)["deep/a/b/c/d/leaf.txt"]
    out = tmp_path / "out.tar.gz"

    def meddle(fraction: float, stage: str) -> None:
        if stage == "Writing the archive":
            leaf.write_bytes(change)  # same size, or shorter

    with pytest.raises(SegtuiError, match="changed while it was being exported"):
        write_archive(out, sources, kind=KIND, progress=meddle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources"]


def test_an_empty_archive_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "empty.tar.gz"
    assert write_archive(out, [], kind=KIND)["members"] == []
    verified = verify_archive(out, kind=KIND, keep=KEEP)
    assert verified.kept == {} and verified.buffered == {}
    extract_archive(verified, tmp_path / "dest")
    assert listing(tmp_path / "dest") == {}
