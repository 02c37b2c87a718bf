"""SVG snapshots of the start screen and the project page (deterministic workspace, no timings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pilot_wait import until
from textual.pilot import Pilot
from tiny_models import build_omz_maskrcnn

from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.start import StartScreen

SnapCompare = Callable[..., bool]


@pytest.fixture
def populated(workspace: Workspace, image_folder: Path, tmp_path: Path) -> Workspace:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Tiny Mask R-CNN"
    )
    return workspace


async def _start_loaded(pilot: Pilot[Any]) -> None:
    """The screens read the workspace in workers: wait for the rows before the picture."""
    screen = pilot.app.screen
    assert isinstance(screen, StartScreen)
    await until(pilot, lambda: screen.loaded)


async def _project_page(pilot: Pilot[Any]) -> None:
    await _start_loaded(pilot)
    await pilot.press("enter")
    await until(
        pilot, lambda: isinstance(pilot.app.screen, ProjectScreen) and bool(pilot.app.screen.page)
    )


def test_start_screen(snap_compare: SnapCompare, populated: Workspace) -> None:
    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_start_loaded)


def test_project_page(snap_compare: SnapCompare, populated: Workspace) -> None:
    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_project_page)
