"""The TUI's start path and the CLI's parser load no engine (OpenVINO, OpenCV, pycocotools, NNCF).

Each check runs in a fresh interpreter: what the test process imported says nothing.
The engine loads later, in job processes or in the app's `load_engine` worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import build_omz_maskrcnn

from segtui.cli import tui_only
from segtui.core.projects import create_project_from_paths
from segtui.core.sample import BUNDLED_SAMPLES, SAMPLE_SETTING, registered_setting
from segtui.core.workspace import Workspace

#: Top-level packages that must not be imported before the first frame (seconds of CPU).
ENGINE = ("openvino", "cv2", "pycocotools", "nncf")

#: Prints the sorted top-level packages of sys.modules as JSON (the end of each child script).
REPORT_MODULES = (
    "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
)


def loaded_packages(script: str, *args: str) -> tuple[list[str], str]:
    """Run `script` in a fresh interpreter; the packages it loaded, and what it printed before."""
    out = subprocess.run(
        [sys.executable, "-c", script + REPORT_MODULES, *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    *printed, last = out.stdout.strip().splitlines()
    return json.loads(last), "\n".join(printed)


def test_importing_the_app_loads_no_engine() -> None:
    packages, _ = loaded_packages("import segtui.ui.app\n")
    assert "textual" in packages and "segtui" in packages
    assert [name for name in ENGINE if name in packages] == []


def test_cli_help_builds_every_command_without_the_engine() -> None:
    script = (
        "from segtui.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as end:\n"
        "    assert end.code == 0, end.code\n"
    )
    packages, printed = loaded_packages(script)
    for command in ("optimize", "benchmark", "report", "deploy", "list", "tui"):
        assert command in printed, command
    assert "textual" not in packages
    assert [name for name in ENGINE if name in packages] == []


#: Opens the TUI through the CLI on argv[1] (headless), waits for the project list, prints it.
START_SCRIPT = """
import asyncio, sys
from segtui.cli import main
from segtui.ui import app as app_module
from segtui.ui.screens.start import StartScreen

# The engine's deliberate load after the start is not part of the start path.
app_module.ENGINE_DELAY_S = 3600.0

def run_headless(app):
    async def drive():
        async with app.run_test(size=(120, 36)) as pilot:
            while not (isinstance(app.screen, StartScreen) and app.screen.loaded):
                await pilot.pause(0.02)
            await app.workers.wait_for_complete()
            print("listed:", ", ".join(row.name for row in app.screen.rows.values()))
    asyncio.run(drive())

app_module.SegtuiApp.run = run_headless
assert main(["--workspace", sys.argv[1]]) == 0
"""


@pytest.fixture
def listed_workspace(workspace: Workspace, image_folder: Path, tmp_path: Path) -> Path:
    """A workspace with one project, started before (the sample's registration behind it)."""
    model = build_omz_maskrcnn(tmp_path / "model" / "model.xml")
    create_project_from_paths(
        workspace, model_path=model, dataset_path=image_folder, name="Listed project"
    )
    for name in BUNDLED_SAMPLES:
        workspace.set_setting(registered_setting(name), "1")
    assert registered_setting("shapes") == SAMPLE_SETTING  # the key older workspaces hold
    return workspace.root


def test_the_tui_lists_the_projects_without_the_engine(listed_workspace: Path) -> None:
    packages, printed = loaded_packages(START_SCRIPT, str(listed_workspace))
    assert printed.splitlines()[-1] == "listed: Listed project"
    assert "textual" in packages
    assert [name for name in ENGINE if name in packages] == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], (True, None)),
        (["--workspace", "ws"], (True, "ws")),
        (["--workspace=ws"], (True, "ws")),
        (["--workspace="], (True, "")),
        (["--workspace", "--help"], (False, None)),
        (["--help"], (False, None)),
        (["tui"], (False, None)),
        (["list", "projects"], (False, None)),
        (["--workspace", "ws", "list"], (False, None)),
        (["--work", "ws"], (False, None)),
    ],
)
def test_only_a_bare_start_skips_the_parser(
    argv: list[str], expected: tuple[bool, str | None]
) -> None:
    assert tui_only(argv) == expected
