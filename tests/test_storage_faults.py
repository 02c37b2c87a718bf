"""Storage faults in the CLI and the TUI: each broken workspace ends in its own message,
a non-zero exit and no traceback, and leaves the workspace as it was."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from conftest import write_scene

from segtui.cli import main
from segtui.cli.common import run_command
from segtui.cli.output import Output
from segtui.core import storage
from segtui.core.db_schema import SCHEMA_VERSION
from segtui.core.records import DatasetAnalysis, ModelAnalysis
from segtui.core.sample import sample_available
from segtui.core.types import DatasetKind
from segtui.core.workspace import DatasetImage, Workspace

PAGE = 4096


def healthy(root: Path) -> Path:
    """A workspace with a model (and its folder), a dataset of many rows and a project."""
    with Workspace(root) as ws:
        staged = ws.staging_dir()
        (staged / "model.xml").write_text("<net/>")
        model = ws.add_model(
            name="m",
            format_id="omz-maskrcnn",
            source_path="/x",
            staged_dir=staged,
            xml_name="model.xml",
            checksum="abc",
            analysis=cast(ModelAnalysis, {}),
            class_names=["a"],
        )
        rows = [DatasetImage(i, f"img_{i:05d}.png", 64, 48, None) for i in range(3000)]
        dataset = ws.add_dataset(
            name="d",
            kind=DatasetKind.IMAGES,
            root=root.parent / "images",
            analysis=cast(DatasetAnalysis, {"image_count": len(rows)}),
            images=rows,
        )
        ws.add_project(name="p", model_id=model.id, dataset_id=dataset.id, device="CPU")
    assert not (root / "segtui.db-wal").exists()  # all of it is in segtui.db now
    return root


def _corrupt_pages(db: Path) -> None:
    data = bytearray(db.read_bytes())
    middle = len(data) // PAGE // 2
    assert middle > 8
    data[(middle - 3) * PAGE : (middle + 3) * PAGE] = random.Random(11).randbytes(6 * PAGE)
    db.write_bytes(bytes(data))


def _sql(statement: str) -> Callable[[Path], None]:
    def apply(db: Path) -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute(statement)
        conn.close()

    return apply


def _emptied(db: Path) -> None:
    db.write_bytes(b"")


def _not_a_database(db: Path) -> None:
    db.write_bytes(b"this is not sqlite" * 300)


# What breaks the database, and the words its message must have.
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt-pages": (_corrupt_pages, "is damaged (quick_check"),
    "not-a-database": (_not_a_database, "is not a segtui workspace database"),
    "newer-schema": (_sql(f"PRAGMA user_version = {SCHEMA_VERSION + 3}"), "newer segtui"),
    "dropped-table": (_sql("DROP TABLE results"), "table(s) results missing"),
    "zero-bytes": (_emptied, "is empty (0 bytes), but the workspace holds files"),
    "deleted": (Path.unlink, "is missing, but the workspace holds files it listed"),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file outside logs/ with a hash of its contents (the invariant: all unchanged)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "logs"
    }


def _tui(root: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real entry point, as a user starts it (a broken workspace stops it before Textual)."""
    return subprocess.run(
        [sys.executable, "-m", "segtui", "--workspace", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def images(tmp_path: Path) -> Path:
    write_scene(tmp_path / "images" / "a.png")
    return tmp_path / "images"


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_a_broken_workspace_is_refused_by_cli_and_tui_with_its_own_message(
    fault: str, tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = healthy(tmp_path / "ws")
    breaker, words = BROKEN[fault]
    breaker(root / "segtui.db")
    before = _snapshot(root)
    for argv in (["list"], ["list", "models"], ["import-dataset", str(images)], ["compare", "1"]):
        code = main(["--workspace", str(root), *argv])
        out, err = capsys.readouterr()
        assert code == 1, (argv, out, err)
        assert words in err and err.startswith("segtui: error: "), (argv, err)
        assert "Traceback" not in out + err
        # A healthy-looking file is never called "not a database" to be moved away.
        assert ("Move it away" in err) == (fault == "not-a-database")
    done = _tui(root)
    assert done.returncode == 1, done.stderr
    assert words in done.stderr and "Traceback" not in done.stdout + done.stderr
    log = Path(done.stderr.strip().splitlines()[-1].removeprefix("Details: "))
    assert log.is_file() and "Traceback" in log.read_text()  # the details, for a report
    assert _snapshot(root) == before  # nothing written, nothing removed
    if fault in ("newer-schema", "dropped-table"):
        conn = sqlite3.connect(root / "segtui.db")
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()


def test_an_intact_workspace_is_unchanged_by_being_opened(tmp_path: Path) -> None:
    root = healthy(tmp_path / "ws")
    before = _snapshot(root)
    assert main(["--workspace", str(root), "list", "datasets"]) == 0
    assert _snapshot(root) == before


def _run_limited(
    limit: int, root: Path, argv: list[str], *, hold: bool
) -> subprocess.CompletedProcess[str]:
    """`segtui ARGV` in a child whose files cannot grow past `limit` bytes (RLIMIT_FSIZE).

    `hold` keeps a connection open from before the limit, so that SQLite's -shm and -wal
    exist and the limit is met by the write itself.
    """
    code = (
        "import resource, signal, sys\n"
        "from segtui.cli import main\n"
        "from segtui.core.workspace import Workspace\n"
        "held = Workspace(sys.argv[3]) if sys.argv[2] == 'hold' else None\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "limit = int(sys.argv[1])\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
        "sys.exit(main(['--workspace', *sys.argv[3:]]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(limit), "hold" if hold else "-", str(root), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _check_intact(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "segtui.db")
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert list((root / "tmp").iterdir()) == []  # no staged or partial files left
    return conn


def test_disk_full_in_the_database_is_named_and_the_import_leaves_nothing(
    tmp_path: Path, images: Path
) -> None:
    root = tmp_path / "ws"
    Workspace(root).close()
    for n in range(300):
        write_scene(images / f"more_{n:03d}.png", (8, 8), n)
    done = _run_limited(8192, root, ["import-dataset", str(images)], hold=True)
    assert done.returncode == 1, done.stderr
    assert "The disk holding the workspace" in done.stderr and "is full" in done.stderr
    assert "ulimit -f" in done.stderr and "Traceback" not in done.stderr
    conn = _check_intact(root)
    assert conn.execute("SELECT COUNT(*) FROM dataset_images").fetchone() == (0,)
    assert list((root / "datasets").iterdir()) == []


@pytest.mark.skipif(not sample_available(), reason="sample project files are missing")
def test_disk_full_while_copying_a_model_is_named_and_leaves_no_partial_files(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    Workspace(root).close()
    done = _run_limited(100_000, root, ["sample"], hold=False)
    assert done.returncode == 1, done.stderr
    assert "is full, or a file reached the file-size limit" in done.stderr
    assert "Traceback" not in done.stderr and "Check the path" not in done.stderr
    conn = _check_intact(root)
    assert conn.execute("SELECT COUNT(*) FROM models").fetchone() == (0,)
    assert list((root / "models").iterdir()) == []


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces")

# Run in a private mount namespace: a tmpfs with a copy of the workspace, made read-only
# or filled up, then the commands; prints [returncode, stdout, stderr] per command as JSON.
_IN_MOUNT = """
import json, shutil, subprocess, sys
mnt, source, mode, commands = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], check=True)
shutil.copytree(source, mnt + "/ws")
if mode == "read-only":
    subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
else:
    subprocess.run(["dd", "if=/dev/zero", "of=" + mnt + "/filler", "bs=64k"], capture_output=True)
results = []
for argv in commands:
    done = subprocess.run([sys.executable, "-m", "segtui", "--workspace", mnt + "/ws", *argv],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    results.append([done.returncode, done.stdout, done.stderr])
check = subprocess.run([sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect("
                        "'file:' + sys.argv[1] + '?immutable=1', uri=True).execute("
                        "'PRAGMA integrity_check').fetchone()[0])", mnt + "/ws/segtui.db"],
                       capture_output=True, text=True)
results.append([check.returncode, check.stdout.strip(), check.stderr])
print(json.dumps(results))
"""


def _in_mount(tmp_path: Path, mode: str, commands: list[list[str]]) -> list[list[object]]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    source = healthy(tmp_path / "ws")
    done = subprocess.run(
        [
            "unshare",
            "-m",
            sys.executable,
            "-c",
            _IN_MOUNT,
            str(mnt),
            str(source),
            mode,
            json.dumps(commands),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return cast(list[list[object]], json.loads(done.stdout))


@needs_mount
@pytest.mark.parametrize(
    ("mode", "words"),
    [("read-only", "cannot be written (read-only file system)"), ("full", "is full")],
)
def test_a_read_only_or_full_disk_still_lists_and_refuses_writes_clearly(
    tmp_path: Path, images: Path, mode: str, words: str
) -> None:
    listed, imported, tui, check = _in_mount(
        tmp_path, mode, [["list"], ["import-dataset", str(images)], []]
    )
    code, out, err = listed
    assert code == 0 and "p " in str(out) and words in str(err), err  # read as it is
    assert "Showing the workspace as it is" in str(err)
    for code, out, err in (imported, tui):
        assert code == 1 and words in str(err), err
        assert "Traceback" not in str(out) + str(err) and "Move it away" not in str(err)
    assert check[1] == "ok"


def _permissions_bind_us() -> bool:
    """False for root with CAP_DAC_OVERRIDE, who writes through any file mode."""
    probe = Path(tempfile.mkdtemp()) / "probe"
    probe.write_text("")
    probe.chmod(0o444)
    try:
        with probe.open("a"):
            return False
    except PermissionError:
        return True
    finally:
        shutil.rmtree(probe.parent)


@pytest.mark.skipif(not _permissions_bind_us(), reason="this user writes through file modes")
def test_a_workspace_without_write_permission_still_lists_and_refuses_writes(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = healthy(tmp_path / "ws")
    before = _snapshot(root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert main(["--workspace", str(root), "list"]) == 0
        out, err = capsys.readouterr()
        assert "p " in out and "no write permission" in err
        assert main(["--workspace", str(root), "import-dataset", str(images)]) == 1
        err = capsys.readouterr().err
        assert "cannot be written (no write permission" in err and "Traceback" not in err
        done = _tui(root)
        assert done.returncode == 1 and "cannot be written" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
    assert _snapshot(root) == before


# -- the TUI's error boundary: an unexpected error ends the app with a message and status 1 ----


def _boom() -> None:
    raise RuntimeError("boom while running")


async def test_an_unhandled_exception_in_the_tui_goes_to_a_log_not_the_screen(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    from segtui.ui.app import SegtuiApp

    app = SegtuiApp(workspace, register_sample=False)
    with pytest.raises(RuntimeError, match="boom while running"):
        async with app.run_test(size=(100, 30)) as pilot:
            app.call_later(_boom)
            await pilot.pause(0.2)
    assert app.return_code == 1 and isinstance(app.crash, RuntimeError)
    assert app._exit_renderables == []  # Textual's traceback with locals is not printed
    assert app.crash_log is not None and app.crash_log.parent == workspace.root / "logs"
    text = app.crash_log.read_text()
    assert "Traceback" in text and "RuntimeError: boom while running" in text
    assert app.crash_log.stat().st_mode & 0o777 == 0o600
    assert app.exit_status() == 1
    err = capsys.readouterr().err
    assert "segtui stopped on an unexpected error: RuntimeError: boom while running" in err
    assert f"Details: {app.crash_log}" in err and "Traceback" not in err


async def test_a_worker_that_may_not_fail_ends_the_app_with_its_own_error(
    workspace: Workspace,
) -> None:
    from segtui.ui.app import SegtuiApp

    app = SegtuiApp(workspace, register_sample=False)
    with pytest.raises(Exception, match="boom while running"):
        async with app.run_test(size=(100, 30)) as pilot:
            app.run_worker(_boom, thread=True, exit_on_error=True)
            await pilot.pause(0.5)
    assert isinstance(app.crash, RuntimeError) and app.return_code == 1  # unwrapped
    assert app.crash_log is not None and "boom while running" in app.crash_log.read_text()


async def test_a_worker_failing_on_a_damaged_database_is_named_in_a_notification(
    workspace: Workspace,
) -> None:
    from pilot_wait import until

    from segtui.ui.app import SegtuiApp

    def damaged() -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.run_worker(damaged, thread=True, exit_on_error=False, description="Load")
        await until(pilot, lambda: bool(list(app._notifications)))
        notes = [str(n.message) for n in app._notifications]
    assert app.crash is None and app.return_code in (0, None)
    assert len(notes) == 1 and "segtui.db is damaged" in notes[0], notes
    assert "restore segtui.db from a backup" in notes[0]


def test_run_app_reports_a_crash_after_textual_started(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from textual.app import App

    from segtui.ui.app import SegtuiApp, run_app

    def crash_on_mount(self: SegtuiApp) -> None:
        raise ValueError("bad state on mount")

    def headless(self: SegtuiApp) -> None:
        App.run(self, headless=True)

    monkeypatch.setattr(SegtuiApp, "on_mount", crash_on_mount)
    monkeypatch.setattr(SegtuiApp, "run", headless)
    assert run_app(workspace.root) == 1
    out, err = capfd.readouterr()
    assert "segtui stopped on an unexpected error: ValueError: bad state on mount" in err
    assert "Traceback" not in out + err
    logs = list((workspace.root / "logs").iterdir())
    assert len(logs) == 1 and "ValueError: bad state on mount" in logs[0].read_text()


# -- the CLI's error boundary --------------------------------------------------------------


def _args(root: Path) -> argparse.Namespace:
    return argparse.Namespace(workspace=str(root), command="test", json=False)


def test_a_database_locked_past_the_timeout_is_named_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(storage, "BUSY_TIMEOUT_S", 0)
    root = healthy(tmp_path / "ws")
    holder = sqlite3.connect(root / "segtui.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    def write(args: argparse.Namespace, out: Output) -> int:
        with Workspace.open(args.workspace) as ws:
            ws.set_setting("k", "v")
        return 0

    try:
        assert run_command(write, _args(root), Output(False)) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert "stayed locked by another process" in err and "Traceback" not in err


def test_an_unexpected_error_in_a_command_ends_in_a_message_and_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = healthy(tmp_path / "ws")

    def broken(args: argparse.Namespace, out: Output) -> int:
        raise KeyError("missing key")

    assert run_command(broken, _args(root), Output(False)) == 1
    err = capsys.readouterr().err
    assert err.startswith("segtui: error: Unexpected error: KeyError: 'missing key'")
    assert "Traceback" not in err
    logs = list((root / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in err
    assert "KeyError: 'missing key'" in logs[0].read_text()


def test_a_full_disk_met_while_waiting_on_a_job_is_named_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = healthy(tmp_path / "ws")

    def waiting(args: argparse.Namespace, out: Output) -> int:
        # What the poll of a waiting `segtui benchmark` met on a disk that filled up.
        raise sqlite3.OperationalError("database or disk is full")

    assert run_command(waiting, _args(root), Output(True)) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["error"].startswith(f"The disk holding the workspace {root} is full")
    assert "Traceback" not in out + err and "not a segtui workspace" not in err


async def test_the_job_watchers_storage_fault_is_named_in_its_notification(
    workspace: Workspace,
) -> None:
    from pilot_wait import until

    from segtui.ui import messages
    from segtui.ui.app import SegtuiApp

    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.post_message(messages.JobWatchFailed("database or disk is full"))
        await until(pilot, lambda: bool(list(app._notifications)))
        notes = [str(n.message) for n in app._notifications]
    assert notes == [
        f"Cannot read the jobs: The disk holding the workspace {workspace.root} is full: "
        "segtui cannot write there.\nFree some space there (or use another workspace with "
        "--workspace), then try again. What was saved before is intact; the change being "
        "made was not saved."
    ]
