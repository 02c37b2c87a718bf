"""A stored accuracy report on three tiny images, made without running a model (report and
Visualize tests), and reading the report screen's table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import report_builder as build
from pilot_wait import settle
from textual.pilot import Pilot
from textual.widgets import DataTable

from segtui.core.predictions import ImagePrediction, Instance, encode_mask
from segtui.core.workspace import ProjectRecord, ResultRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.report import ReportScreen
from segtui.ui.widgets.table import Cell

CLASSES = ["person", "car", "dog"]
#: The stored report's score threshold and match IoU.
THRESHOLD = 0.1
IOU = 0.5
SETUP = build.ReportSetup(
    name="Tiny",
    model_name="Tiny Mask R-CNN",
    dataset_name="tiny images",
    classes=CLASSES,
    threshold=THRESHOLD,
    iou=IOU,
    precision="f32",
    inference_seconds=0.5,
    method="INT8",
)


@dataclass
class StoredReport:
    parent: ProjectRecord
    child: ProjectRecord
    result: ResultRecord


def instance(
    h: int, w: int, y0: int, y1: int, x0: int, x1: int, cls: int, score: float
) -> Instance:
    """A rectangular mask of class `cls` in an h×w image."""
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return Instance(cls, score, (float(x0), float(y0), float(x1), float(y1)), encode_mask(mask))


def stand_in_model(ws: Workspace, tmp: Path, name: str, parent_id: int | None = None) -> int:
    """A registered model without a graph (nothing here runs it)."""
    return build.stand_in_model(ws, tmp, name, CLASSES, parent_id)


def predictions() -> tuple[list[ImagePrediction], list[ImagePrediction]]:
    """(A, B) on the image_folder fixture's images.

    a.png: both models agree (person, car). b.jpg: A's person is shifted (no match) and B
    has a dog that A misses. sub/c.bmp: one car each, agreeing, and a faint dog each
    (score 0.3: counted by the report at 0.1, not drawn at 0.5).
    """
    a = [
        ImagePrediction(
            "a.png",
            64,
            48,
            [instance(48, 64, 4, 24, 6, 30, 0, 0.91), instance(48, 64, 28, 44, 36, 60, 1, 0.82)],
        ),
        ImagePrediction("b.jpg", 40, 60, [instance(60, 40, 20, 50, 14, 38, 0, 0.66)]),
        ImagePrediction(
            "sub/c.bmp",
            32,
            32,
            [instance(32, 32, 2, 20, 2, 20, 1, 0.55), instance(32, 32, 22, 30, 20, 30, 2, 0.3)],
        ),
    ]
    b = [
        ImagePrediction(
            "a.png",
            64,
            48,
            [instance(48, 64, 4, 24, 6, 30, 0, 0.95), instance(48, 64, 28, 44, 36, 60, 1, 0.88)],
        ),
        ImagePrediction(
            "b.jpg",
            40,
            60,
            [instance(60, 40, 10, 40, 2, 26, 0, 0.93), instance(60, 40, 44, 58, 4, 20, 2, 0.71)],
        ),
        ImagePrediction(
            "sub/c.bmp",
            32,
            32,
            [instance(32, 32, 2, 20, 2, 20, 1, 0.6), instance(32, 32, 22, 30, 20, 30, 2, 0.35)],
        ),
    ]
    return a, b


def store_report(ws: Workspace, images: Path, tmp: Path) -> StoredReport:
    """A parent and an optimized project on `images` (the image_folder fixture) with a stored
    "optimized vs parent" report (score ≥ 0.1, IoU 0.5) and its prediction files."""
    parent, child, result = build.build_report(ws, images, tmp, SETUP, predictions())
    return StoredReport(parent, child, result)


def column_labels(table: DataTable[Any]) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


def table_rows(table: DataTable[Any]) -> list[list[str]]:
    """The table's text, row by row, as shown."""
    return [
        [v.text if isinstance(v, Cell) else str(v) for v in table.get_row_at(i)]
        for i in range(table.row_count)
    ]


async def open_report(app: SegtuiApp, project_id: int, pilot: Pilot[Any]) -> ReportScreen:
    """The report screen of `project_id`, its report read (and Visualize's predictions read ahead)."""
    screen = ReportScreen(project_id)
    await app.push_screen(screen)
    await settle(pilot)  # the report is read in a thread
    return screen
