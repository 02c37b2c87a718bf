"""User-chosen output files: never written through a link, never half-written, clear refusals."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_report import _report_data
from tiny_models import build_omz_maskrcnn

from segtui.cli import main
from segtui.core import safe_files
from segtui.core.errors import Cancelled
from segtui.core.report import export_report
from segtui.core.safe_files import (
    OutputFileError,
    check_output_path,
    make_output_folder,
    safe_output,
    write_error,
    write_output_bytes,
)

VICTIM = b"precious: must never change\n"
PAYLOAD = b"new content \x00\x01" * 1000
IS_ROOT = os.geteuid() == 0


def _umask() -> int:
    # Read from /proc: setting and restoring the umask would race other threads.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line in /proc/self/status")


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.partial"))


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the output folder that an attacker would like overwritten."""
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    return path


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "out"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)  # a read-only case must not stop pytest cleaning up


def _link_to_victim(out: Path, victim: Path) -> Path:
    target = out / "new.bin"
    target.symlink_to(victim)
    return target


def _dangling_link(out: Path, victim: Path) -> Path:
    target = out / "new.bin"
    target.symlink_to(out / "created-through-the-link")
    return target


def _folder(out: Path, victim: Path) -> Path:
    (out / "new.bin").mkdir()
    return out / "new.bin"


def _missing_parent(out: Path, victim: Path) -> Path:
    return out / "no" / "such" / "new.bin"


def _parent_is_file(out: Path, victim: Path) -> Path:
    (out / "plain").write_bytes(b"x")
    return out / "plain" / "new.bin"


def _fifo(out: Path, victim: Path) -> Path:
    os.mkfifo(out / "new.bin")
    return out / "new.bin"


def _read_only(out: Path, victim: Path) -> Path:
    if IS_ROOT:
        pytest.skip("root writes into read-only folders")
    out.chmod(0o555)
    return out / "new.bin"


def _name_too_long(out: Path, victim: Path) -> Path:
    return out / ("n" * 300)


REFUSALS: dict[str, tuple[Callable[[Path, Path], Path], str, str]] = {
    "link at the target": (
        _link_to_victim,
        r"new\.bin is a symbolic link; segtui never writes through a link\.",
        "Remove the link, or choose another file name.",
    ),
    "dangling link at the target": (
        _dangling_link,
        r"new\.bin is a symbolic link",
        "Remove the link, or choose another file name.",
    ),
    "target is a folder": (_folder, r"new\.bin is a folder\.", "Give the name of a file"),
    "missing folder": (_missing_parent, r"Folder .*/out/no/such does not exist\.", "Create it"),
    "parent is a file": (_parent_is_file, r"/out/plain is not a folder\.", "another place"),
    "fifo at the target": (_fifo, r"new\.bin exists and is not a regular file\.", "another"),
    "read-only folder": (
        _read_only,
        r"Could not write .*/out/new\.bin: permission denied in .*/out\.",
        "Choose a folder you can write to",
    ),
    "name too long": (_name_too_long, r"the file name is too long\.", "a shorter name"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("how", ["bytes", "context"])
def test_refused_targets_leave_everything_as_it_was(
    case: str, how: str, out_dir: Path, victim: Path
) -> None:
    setup, message, hint = REFUSALS[case]
    target = setup(out_dir, victim)
    before = sorted(p.name for p in out_dir.iterdir())
    with pytest.raises(OutputFileError, match=message) as raised:
        if how == "bytes":
            write_output_bytes(target, PAYLOAD)
        else:
            with safe_output(target) as handle:
                handle.write(PAYLOAD)
    assert hint in raised.value.hint
    assert victim.read_bytes() == VICTIM
    assert sorted(p.name for p in out_dir.iterdir()) == before
    assert not (out_dir / "created-through-the-link").exists()
    if os.path.islink(target):  # False, not an error, for a name too long
        assert os.readlink(target) in (str(victim), str(out_dir / "created-through-the-link"))


def _plant(kind: str, partial: Path, victim: Path) -> None:
    if kind == "link to a file":
        partial.symlink_to(victim)
    elif kind == "dangling link":
        partial.symlink_to(partial.parent / "created-through-the-link")
    elif kind == "link to a folder":
        partial.symlink_to(victim.parent)
    else:
        partial.write_bytes(VICTIM)


@pytest.mark.parametrize("kind", ["link to a file", "dangling link", "link to a folder", "file"])
def test_anything_at_the_partial_name_is_never_written_through(
    kind: str, out_dir: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = out_dir / "new.tar.gz"
    planted = out_dir / ".new.tar.gz.guessed.partial"
    _plant(kind, planted, victim)
    names = iter([planted.name, ".new.tar.gz.fresh.partial"])
    monkeypatch.setattr(safe_files, "partial_name", lambda _target: next(names))
    with safe_output(target) as handle:
        handle.write(PAYLOAD)
    assert victim.read_bytes() == VICTIM
    assert not (out_dir / "created-through-the-link").exists()
    assert stat.S_ISREG(target.lstat().st_mode) and target.read_bytes() == PAYLOAD
    # The planted entry is someone else's: left alone; ours is gone.
    assert planted.is_symlink() == (kind != "file")
    assert sorted(p.name for p in out_dir.iterdir()) == [planted.name, "new.tar.gz"]


def test_partial_names_are_random_hidden_and_beside_the_target(tmp_path: Path) -> None:
    names = {safe_files.partial_name(tmp_path / "pkg.tar.gz") for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(".pkg.tar.gz.") and n.endswith(".partial") for n in names)
    assert len(safe_files.partial_name(tmp_path / ("x" * 255))) < 200


@pytest.mark.parametrize(
    ("mode", "existing"), [(None, False), (None, True), (0o600, False), (0o640, True)]
)
def test_success_leaves_one_regular_file_with_the_content_and_mode(
    mode: int | None, existing: bool, out_dir: Path
) -> None:
    target = out_dir / "results.json"
    if existing:
        target.write_bytes(b"old")
    if mode is None:
        write_output_bytes(target, PAYLOAD)
        expected = 0o666 & ~_umask()
    else:
        write_output_bytes(target, PAYLOAD, mode=mode)
        expected = mode & ~_umask()
    info = target.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == expected
    assert target.read_bytes() == PAYLOAD
    assert [p.name for p in out_dir.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    "error", [Cancelled(), KeyboardInterrupt(), RuntimeError("a bug mid-write")]
)
@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_write_leaves_no_partial_and_the_old_file(
    error: BaseException, existing: bool, out_dir: Path
) -> None:
    target = out_dir / "pkg.tar.gz"
    if existing:
        target.write_bytes(VICTIM)
    with pytest.raises(type(error)), safe_output(target) as handle:
        handle.write(PAYLOAD)
        handle.flush()
        assert len(_partials(out_dir)) == 1  # the bytes really were on their way
        raise error
    assert _partials(out_dir) == []
    assert target.read_bytes() == VICTIM if existing else not target.exists()


@pytest.mark.parametrize(
    ("code", "message", "hint"),
    [
        (errno.ENOSPC, "the disk is full or the file is too large for it", "Free some space"),
        (errno.EFBIG, "the disk is full or the file is too large for it", "another disk"),
        (errno.EDQUOT, "the disk is full or the file is too large for it", "Free some space"),
        (errno.EROFS, "is on a read-only file system", "a folder you can write to"),
        (errno.EACCES, "permission denied in", "change its permissions"),
        (errno.EIO, "Input/output error", "Check the free space and permissions"),
    ],
)
def test_a_failing_sync_is_named_and_removes_the_partial(
    code: int, message: str, hint: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    target = out_dir / "report.csv"
    target.write_bytes(VICTIM)
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OutputFileError) as raised:
        write_output_bytes(target, PAYLOAD)
    assert raised.value.message.startswith(f"Could not write {target}: ")
    assert message in raised.value.message and hint in raised.value.hint
    assert target.read_bytes() == VICTIM and _partials(out_dir) == []


def test_an_error_reading_a_source_passes_unchanged(out_dir: Path) -> None:
    target = out_dir / "pkg.tar.gz"
    with pytest.raises(FileNotFoundError) as raised, safe_output(target) as handle:
        handle.write(PAYLOAD)
        (out_dir / "missing-source").read_bytes()
    assert raised.value.filename == str(out_dir / "missing-source")
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_link_planted_at_the_target_during_the_write_is_refused(
    overwrite: bool, out_dir: Path, victim: Path
) -> None:
    target = out_dir / "pkg.tar.gz"
    with (
        pytest.raises(OutputFileError, match="is a symbolic link"),
        safe_output(target, overwrite=overwrite) as handle,
    ):
        handle.write(PAYLOAD)
        target.symlink_to(victim)
    assert victim.read_bytes() == VICTIM and target.is_symlink() and _partials(out_dir) == []


def test_without_overwrite_a_file_appearing_meanwhile_is_kept(out_dir: Path) -> None:
    target = out_dir / "pkg.tar.gz"
    with (
        pytest.raises(OutputFileError, match="already exists") as raised,
        safe_output(target, overwrite=False) as handle,
    ):
        handle.write(PAYLOAD)
        target.write_bytes(VICTIM)
    assert raised.value.hint == "Choose another file name."
    assert target.read_bytes() == VICTIM and _partials(out_dir) == []


@pytest.mark.parametrize(
    ("under", "message"),
    [("", r"/out/f is not a folder\."), ("sub", r"Cannot create folder .*/out/f/sub: part of")],
)
def test_an_output_folder_that_cannot_be_made_is_named(
    under: str, message: str, out_dir: Path
) -> None:
    (out_dir / "f").write_bytes(VICTIM)
    with pytest.raises(OutputFileError, match=message):
        make_output_folder(out_dir / "f" / under if under else out_dir / "f")
    assert (out_dir / "f").read_bytes() == VICTIM
    make_output_folder(out_dir / "a" / "b")
    assert (out_dir / "a" / "b").is_dir()


def test_check_output_path_accepts_a_new_file_and_refuses_an_existing_one(out_dir: Path) -> None:
    check_output_path(out_dir / "new.json", overwrite=False)
    (out_dir / "new.json").write_bytes(VICTIM)
    check_output_path(out_dir / "new.json")
    with pytest.raises(OutputFileError, match=r"new\.json already exists\."):
        check_output_path(out_dir / "new.json", overwrite=False)


def test_write_error_names_the_path_and_the_folder(tmp_path: Path) -> None:
    error = write_error(tmp_path / "x.json", OSError(errno.ENOSPC, "No space left on device"))
    assert error.message == (
        f"Could not write {tmp_path / 'x.json'}: the disk is full or the file is too large for it."
    )
    assert error.hint == (
        f"Free some space in {tmp_path}, or choose a folder on another disk, and try again."
    )


# The child ignores SIGXFSZ (as the file-size limit would otherwise kill it), so the
# write past RLIMIT_FSIZE fails with EFBIG, as a full disk fails with ENOSPC.
FULL_DISK_CHILD = """
import json, resource, signal, sys
from pathlib import Path
from segtui.core.safe_files import OutputFileError, safe_output
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
try:
    with safe_output(Path(sys.argv[1])) as handle:
        for _ in range(64):
            handle.write(b"x" * 16384)
except OutputFileError as exc:
    print(json.dumps([exc.message, exc.hint]))
"""


@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_mid_write_is_named_and_leaves_nothing(
    existing: bool, out_dir: Path, victim: Path
) -> None:
    target = out_dir / "pkg.tar.gz"
    if existing:
        target.write_bytes(VICTIM)
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    message, hint = json.loads(done.stdout)
    assert message == (
        f"Could not write {target}: the disk is full or the file is too large for it."
    )
    assert hint.startswith(f"Free some space in {out_dir}")
    assert _partials(out_dir) == [] and victim.read_bytes() == VICTIM
    assert target.read_bytes() == VICTIM if existing else not target.exists()


@pytest.mark.parametrize("linked", ["report_basic.csv", "report.json", "report.md"])
def test_report_export_refuses_a_link_among_its_files(
    linked: str, out_dir: Path, victim: Path
) -> None:
    (out_dir / linked).symlink_to(victim)
    with pytest.raises(OutputFileError, match=f"{linked} is a symbolic link"):
        export_report(_report_data(), out_dir / "report")
    assert victim.read_bytes() == VICTIM and os.readlink(out_dir / linked) == str(victim)
    assert _partials(out_dir) == []


def test_predict_out_refuses_a_link_and_writes_a_regular_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image_folder: Path, victim: Path
) -> None:
    model = build_omz_maskrcnn(tmp_path / "m" / "model.xml", input_hw=(48, 64), labels=["a", "b"])
    ws = str(tmp_path / "ws")
    assert main(["create-project", str(model), str(image_folder), "--workspace", ws]) == 0
    results = tmp_path / "results.json"
    results.symlink_to(victim)
    capsys.readouterr()
    assert main(["predict", "1", "--out", str(results), "--workspace", ws]) == 1
    err = capsys.readouterr().err
    assert err.startswith("segtui: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert err.strip().endswith(
        f"{results} is a symbolic link; segtui never writes through a link. "
        "Remove the link, or choose another file name."
    )
    assert victim.read_bytes() == VICTIM
    results.unlink()
    assert main(["predict", "1", "--out", str(results), "--workspace", ws]) == 0
    assert stat.S_ISREG(results.lstat().st_mode) and isinstance(
        json.loads(results.read_text()), list
    )
    assert _partials(tmp_path) == []
