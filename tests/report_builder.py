"""A stored "optimized vs parent" report made without running a model: a parent and child
project on stand-in models, the report's tables and its prediction files. Shared by the report
tests' fixture (tests/stored_report.py) and benchmarks/tui_report_timings.py, so it needs
neither pytest nor textual."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from segtui.core.datasets import import_dataset
from segtui.core.predictions import ImagePrediction
from segtui.core.report import ReportSummary, compare_with_parent
from segtui.core.types import ReportType
from segtui.core.workspace import ProjectRecord, ResultRecord, Workspace

if TYPE_CHECKING:
    from segtui.core.records import ModelAnalysis


@dataclass(frozen=True)
class ReportSetup:
    """What the projects are called and what the stored report says it ran."""

    name: str  # the parent project's; the child's adds " INT8"
    model_name: str  # the parent model's; the child's adds " INT8"
    dataset_name: str
    classes: list[str]
    threshold: float
    iou: float
    precision: str
    inference_seconds: float
    method: str  # the child model's optimization method


def stand_in_model(
    ws: Workspace,
    tmp: Path,
    name: str,
    classes: list[str],
    parent_id: int | None = None,
    method: str = "INT8",
) -> int:
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
        class_names=classes,
        optimized_from=parent_id,
        optimization=None if parent_id is None else {"method": method},
    )
    return record.id


def build_report(
    ws: Workspace,
    images: Path,
    tmp: Path,
    setup: ReportSetup,
    predictions: tuple[list[ImagePrediction], list[ImagePrediction]],
) -> tuple[ProjectRecord, ProjectRecord, ResultRecord]:
    """(parent, child, report): `images` imported, the child's predictions (A) compared with
    the parent's (B) and stored as the child's report, with both prediction files."""
    dataset = import_dataset(ws, images, name=setup.dataset_name)
    parent_model = stand_in_model(ws, tmp, setup.model_name, setup.classes)
    child_model = stand_in_model(
        ws, tmp, f"{setup.model_name} INT8", setup.classes, parent_model, setup.method
    )
    parent = ws.add_project(
        name=setup.name, model_id=parent_model, dataset_id=dataset.id, device="CPU"
    )
    child = ws.add_project(
        name=f"{setup.name} INT8",
        model_id=child_model,
        dataset_id=dataset.id,
        device="CPU",
        parent_id=parent.id,
    )
    a, b = predictions
    ids = {p.image: n for n, p in enumerate(a, start=1)}
    tables, a_vs_b = compare_with_parent(
        a, b, setup.classes, ids, threshold=setup.threshold, iou=setup.iou
    )
    summary: ReportSummary = {
        "type": ReportType.PARENT,
        "threshold": setup.threshold,
        "iou": setup.iou,
        "precision": setup.precision,
        "requested_precision": "f32",
        "device": "CPU",
        "project_id": child.id,
        "parent_project_id": parent.id,
        "inference_seconds": setup.inference_seconds,
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
    return parent, child, result
