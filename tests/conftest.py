"""Shared fixtures: an isolated workspace, tiny real models and small real images, projects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_models import build_omz_maskrcnn

from segtui.core.models import import_model
from segtui.core.performance import SweepCell
from segtui.core.predictions import encode_mask
from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import ProjectRecord, Workspace


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's real workspace (nor their log folder) from a test."""
    monkeypatch.setenv("SEGTUI_HOME", str(tmp_path_factory.mktemp("segtui_home")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state_home")))


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path / "ws")
    yield ws
    ws.close()


def workspace_files(ws: Workspace) -> list[str]:
    """Every file the workspace owns besides its database (to prove a failed import left nothing)."""
    return sorted(
        p.relative_to(ws.root).as_posix()
        for p in ws.root.rglob("*")
        if p.is_file() and not p.name.startswith("segtui.db")
    )


def write_scene(path: Path, size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """A small real image: a coloured rectangle and a disc on a gradient; returns the BGR pixels."""
    h, w = size
    rng = np.random.default_rng(seed)
    image = np.zeros((h, w, 3), np.uint8)
    image[:] = np.linspace(30, 120, w, dtype=np.uint8)[None, :, None]
    cv2.rectangle(
        image,
        (w // 8, h // 8),
        (w // 2, h // 2),
        tuple(int(v) for v in rng.integers(0, 255, 3)),
        -1,
    )
    cv2.circle(image, (3 * w // 4, 3 * h // 4), min(h, w) // 6, (200, 220, 40), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return image


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three readable images (one in a subfolder) and nothing else."""
    root = tmp_path / "images"
    write_scene(root / "a.png", (48, 64), 1)
    write_scene(root / "b.jpg", (60, 40), 2)
    write_scene(root / "sub" / "c.bmp", (32, 32), 3)
    return root


@pytest.fixture
def coco_dataset(tmp_path: Path) -> Path:
    """A COCO instances file for two images with one rectangle each (ids from 1)."""
    root = tmp_path / "coco"
    images, annotations = [], []
    for n, (name, size) in enumerate([("x.png", (48, 64)), ("y.png", (40, 40))], start=1):
        write_scene(root / "images" / name, size, n)
        mask = np.zeros(size, np.uint8)
        mask[size[0] // 8 : size[0] // 2 + 1, size[1] // 8 : size[1] // 2 + 1] = 1
        rle = encode_mask(mask)
        ys, xs = np.nonzero(mask)
        images.append({"id": n, "file_name": name, "width": size[1], "height": size[0]})
        annotations.append(
            {
                "id": n,
                "image_id": n,
                "category_id": 1,
                "segmentation": rle,
                "area": int(mask.sum()),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                "iscrowd": 0,
            }
        )
    ann = root / "annotations" / "instances.json"
    ann.parent.mkdir(parents=True)
    ann.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "disc"}],
            }
        )
    )
    return ann


@pytest.fixture
def pair(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> tuple[ProjectRecord, ProjectRecord]:
    """A parent and its 'INT8' child (a linked copy of the model), no results yet."""
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    parent = create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Mask R-CNN"
    )
    child_model = import_model(
        workspace, model_path, name="model INT8", optimized_from=parent.model_id
    )
    child = workspace.add_project(
        name="Mask R-CNN INT8",
        model_id=child_model.id,
        dataset_id=parent.dataset_id,
        device="CPU",
        parent_id=parent.id,
    )
    return parent, child


def sweep_cell(batch: int, streams: int, fps: float, latency: float) -> SweepCell:
    """A measured sweep cell (hand-made numbers) whose `streams` is what the device ran."""
    return {
        "batch": batch,
        "streams": streams,
        "ok": True,
        "throughput_fps": fps,
        "latency_median_ms": latency,
        "precision": "bf16",
    }
