"""A stored accuracy report on three tiny images, made without running a model (report and
Visualize tests), and reading the report screen's table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pilot_wait import settle
from textual.pilot import Pilot
from textual.widgets import DataTable

from segtui.core.datasets import import_dataset
from segtui.core.predictions import ImagePrediction, Instance, encode_mask
from segtui.core.report import ReportSummary, compare_with_parent
from segtui.core.types import ReportType
from segtui.core.workspace import ProjectRecord, ResultRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.report import ReportScreen
from segtui.ui.widgets.table import Cell

if TYPE_CHECKING:
    from segtui.core.records import ModelAnalysis

CLASSES = ["person", "car", "dog"]
#: The stored report's score threshold and match IoU.
THRESHOLD = 0.1
IOU = 0.5


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
    staged = tmp / f"staged-{name}"
    staged.mkdir()
    (staged / "model.xml").write_text("<net/>")
    record = ws.add_model(
        name=name,
        format_id="omz_maskrcnn",
        source_path=str(staged / "model.xml"),
        staged_dir=staged,
        xml_name="model.xml",
        checksum=name,
        analysis=cast("ModelAnalysis", {}),
        class_names=CLASSES,
        optimized_from=parent_id,
        optimization=None if parent_id is None else {"method": "INT8"},
    )
    return record.id


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
    dataset = import_dataset(ws, images, name="tiny images")
    parent_model = stand_in_model(ws, tmp, "Tiny Mask R-CNN")
    child_model = stand_in_model(ws, tmp, "Tiny Mask R-CNN INT8", parent_model)
    parent = ws.add_project(name="Tiny", model_id=parent_model, dataset_id=dataset.id, device="CPU")
    child = ws.add_project(
        name="Tiny INT8",
        model_id=child_model,
        dataset_id=dataset.id,
        device="CPU",
        parent_id=parent.id,
    )
    a, b = predictions()
    ids = {p.image: n for n, p in enumerate(a, start=1)}
    tables, a_vs_b = compare_with_parent(a, b, CLASSES, ids, threshold=THRESHOLD, iou=IOU)
    summary: ReportSummary = {
        "type": ReportType.PARENT,
        "threshold": THRESHOLD,
        "iou": IOU,
        "precision": "f32",
        "requested_precision": "f32",
        "device": "CPU",
        "project_id": child.id,
        "parent_project_id": parent.id,
        "inference_seconds": 0.5,
        "a_vs_b": a_vs_b.to_json(),
        "totals": tables["totals"],
    }
    result = ws.add_result(
        project_id=child.id, kind="report:parent", data={"summary": summary, **tables}
    )
    folder = ws.root / "reports" / str(result.id)
    folder.mkdir(parents=True)
    (folder / "optimized.json").write_text(json.dumps([p.to_json() for p in a]))
    (folder / "parent.json").write_text(json.dumps([p.to_json() for p in b]))
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
