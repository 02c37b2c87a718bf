"""SVG snapshots of the start screen and the project page (deterministic workspace, no timings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tiny_models import build_omz_maskrcnn

from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp

SnapCompare = Callable[..., bool]


@pytest.fixture
def populated(workspace: Workspace, image_folder: Path, tmp_path: Path) -> Workspace:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Tiny Mask R-CNN"
    )
    return workspace


def test_start_screen(snap_compare: SnapCompare, populated: Workspace) -> None:
    assert snap_compare(SegtuiApp(populated, register_sample=False), terminal_size=(120, 36))


def test_project_page(snap_compare: SnapCompare, populated: Workspace) -> None:
    app: Any = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, press=["enter"], terminal_size=(120, 36))
