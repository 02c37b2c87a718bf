"""The accuracy report in core: export, Markdown summary, annotations as B, and a real run on tiny models."""

from __future__ import annotations

import csv
import io
import json
import signal
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from held_jobs import ended_job, held, job_log, kill, release
from pycocotools import mask as mask_utils
from tiny_models import Det, build_omz_maskrcnn

from segtui.core import job_registry, jobs
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import CocoMetrics, CocoMetricsData, evaluate_coco
from segtui.core.models import import_model
from segtui.core.predictions import ImagePrediction, Instance, decode_mask, encode_mask
from segtui.core.projects import create_project_from_paths
from segtui.core.records import JobRecord
from segtui.core.report import (
    BEFORE_COMMIT,
    STORING_STAGE,
    ReportData,
    ReportOutcome,
    ReportSettings,
    ReportSummary,
    annotations_as_predictions,
    compare_with_parent,
    create_report,
    export_paths,
    export_report,
    markdown_summary,
    mask_ap_drop,
    report_data,
    report_predictions,
)
from segtui.core.settings import REPORT, SettingError
from segtui.core.types import JobKind, JobState, Precision, ReportType
from segtui.core.workspace import Workspace

H, W = 40, 60
CLASSES = ["person", "car", "dog"]


def _inst(y0: int, y1: int, x0: int, x1: int, cls: int, score: float) -> Instance:
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return Instance(cls, score, (float(x0), float(y0), float(x1), float(y1)), encode_mask(mask))


def _report_data() -> ReportData:
    """A parent-type report: one image agrees, one differs (a miss and an extra), one is empty."""
    a = [
        ImagePrediction(
            "x.png", W, H, [_inst(0, 20, 0, 20, 0, 0.9), _inst(25, 35, 30, 50, 1, 0.8)]
        ),
        ImagePrediction("y.png", W, H, [_inst(0, 10, 0, 10, 2, 0.7)]),
        ImagePrediction("z.png", W, H, []),
    ]
    b = [
        ImagePrediction(
            "x.png", W, H, [_inst(0, 20, 0, 20, 0, 0.95), _inst(25, 35, 30, 50, 1, 0.9)]
        ),
        ImagePrediction("y.png", W, H, [_inst(10, 30, 20, 50, 0, 0.85)]),
        ImagePrediction("z.png", W, H, []),
    ]
    ids = {"x.png": 1, "y.png": 2, "z.png": 3}
    tables, metrics = compare_with_parent(a, b, CLASSES, ids, threshold=0.1, iou=0.5)
    summary: ReportSummary = {
        "type": ReportType.PARENT,
        "threshold": 0.1,
        "iou": 0.5,
        "precision": "f32",
        "requested_precision": "f32",
        "device": "CPU",
        "project_id": 2,
        "parent_project_id": 1,
        "inference_seconds": 1.0,
        "a_vs_b": metrics.to_json(),
        "totals": tables["totals"],
    }
    return {"summary": summary, **tables}


def test_export_writes_csv_rows_equal_to_the_table_with_na(tmp_path: Path) -> None:
    data = _report_data()
    written = export_report(data, tmp_path / "out" / "report")
    names = [p.name for p in written]
    assert names == ["report_basic.csv", "report_advanced.csv", "report.json", "report.md"]
    basic = list(csv.reader(io.StringIO(written[0].read_text())))
    assert basic == [
        ["image", "a", "b", "matches"],
        ["x.png", "2", "2", "2"],
        ["y.png", "1", "1", "0"],
    ]
    advanced = list(csv.reader(io.StringIO(written[1].read_text())))
    assert advanced[0] == ["image", "class", "a", "b", "matches", "precision", "ap", "ap50"]
    expected = [
        [
            r["image"],
            r["class"],
            str(r["a"]),
            str(r["b"]),
            str(r["matches"]),
            "n/a" if r["precision"] is None else str(r["precision"]),
            "n/a" if r["ap"] is None else str(r["ap"]),
            "n/a" if r.get("ap50") is None else str(r.get("ap50")),
        ]
        for r in data["advanced"]
    ]
    assert advanced[1:] == expected
    # y.png: a person only in B (precision n/a: A has none), a dog only in A (AP n/a: B has none).
    assert ["y.png", "person", "0", "1", "0", "n/a", "0.0", "0.0"] in advanced
    assert ["y.png", "dog", "1", "0", "0", "0.0", "n/a", "n/a"] in advanced
    assert json.loads(written[2].read_text()) == data


def test_export_paths_are_named_after_the_target_or_put_inside_a_folder(tmp_path: Path) -> None:
    paths = export_paths(tmp_path / "out" / "v1.2.csv")
    assert [p.name for p in paths.values()] == [
        "v1.2_basic.csv",
        "v1.2_advanced.csv",
        "v1.2.json",
        "v1.2.md",
    ]
    assert {p.parent for p in paths.values()} == {tmp_path / "out"}
    inside = export_paths(tmp_path)  # an existing folder: the files go in it
    assert inside["json"] == tmp_path / "report.json"
    assert inside["basic"] == tmp_path / "report_basic.csv"


def test_markdown_summary_holds_the_ap_figures_and_totals() -> None:
    data = _report_data()
    metrics = data["summary"]["a_vs_b"]
    text = markdown_summary(data["summary"])
    assert (
        f"mask AP of A against B: {metrics['mask_ap']:.4f}; box AP: {metrics['box_ap']:.4f}" in text
    )
    assert 0.0 < metrics["mask_ap"] < 1.0
    assert "images 3 (1 without instances, 1 where A ≠ B)" in text
    assert "A (optimized) 3, B (parent) 3, matches 2" in text
    assert "inference precision f32" in text


def _metrics(mask_ap: float, mask_ap50: float, box_ap: float, box_ap50: float) -> CocoMetricsData:
    """COCO metrics JSON with these figures (the others -1, as without ground truth)."""
    return CocoMetrics(
        box_ap=box_ap,
        box_ap50=box_ap50,
        box_ap75=-1.0,
        mask_ap=mask_ap,
        mask_ap50=mask_ap50,
        mask_ap75=-1.0,
        mask_ap_small=-1.0,
        mask_ap_medium=-1.0,
        mask_ap_large=-1.0,
        images=2,
        ground_truth=3,
        detections=3,
    ).to_json()


def test_markdown_summary_of_an_annotations_report_shows_both_models_and_the_drop() -> None:
    parent = _metrics(mask_ap=0.7171, mask_ap50=0.95, box_ap=0.75, box_ap50=0.97)
    optimized = _metrics(mask_ap=0.7101, mask_ap50=0.94, box_ap=0.74, box_ap50=0.96)
    summary: ReportSummary = {
        "type": ReportType.ANNOTATIONS,
        "threshold": 0.1,
        "iou": 0.5,
        "precision": "f32",
        "requested_precision": "f32",
        "inference_seconds": 1.0,
        "device": "CPU",
        "project_id": 2,
        "parent_project_id": 1,
        "parent": parent,
        "optimized": optimized,
        "mask_ap_drop": 0.7,
        "box_ap_drop": 1.0,
        "totals": {
            "images": 2,
            "images_without_instances": 0,
            "images_differ": 1,
            "a": 3,
            "b": 3,
            "matches": 2,
        },
    }
    text = markdown_summary(summary)
    assert "| parent | 0.7171 | 0.9500 | 0.7500 | 0.9700 |" in text
    assert "| optimized | 0.7101 | 0.9400 | 0.7400 | 0.9600 |" in text
    assert "Mask AP drop: 0.70 points; box AP drop: 1.00 points." in text
    assert "B (annotations) 3" in text
    assert mask_ap_drop(summary) == 0.7


def test_annotations_as_predictions_reads_polygons_and_both_rle_forms() -> None:
    square = np.zeros((H, W), np.uint8)
    square[5:15, 10:30] = 1
    compressed = encode_mask(square)
    uncompressed = {"size": [H, W], "counts": _uncompressed_counts(square)}
    polygon = [[10.0, 5.0, 30.0, 5.0, 30.0, 15.0, 10.0, 15.0]]
    truth = {
        "images": [
            {"id": 7, "file_name": "x.png", "width": W, "height": H},
            {"id": 8, "file_name": "e.png", "width": W, "height": H},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "segmentation": compressed,
                "bbox": [10, 5, 20, 10],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 9,
                "segmentation": uncompressed,
                "bbox": [10, 5, 20, 10],
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 3,
                "segmentation": polygon,
                "bbox": [10, 5, 20, 10],
            },
            {
                "id": 4,
                "image_id": 7,
                "category_id": 4,
                "segmentation": compressed,
                "bbox": [10, 5, 20, 10],
            },
        ],
        "categories": [{"id": 3, "name": "a"}, {"id": 9, "name": "b"}],
    }
    preds = annotations_as_predictions(truth, [("x.png", 7), ("e.png", 8)], [3, 9], 2)
    x, e = preds
    assert (x.image, x.width, x.height) == ("x.png", W, H) and e.instances == []
    assert [i.class_id for i in x.instances] == [0, 1, 0, -1]  # category 4 is no model class
    assert all(i.score == 1.0 for i in x.instances)
    assert x.instances[0].box == (10, 5, 30, 15)
    for inst in x.instances[:2]:
        assert (decode_mask(inst.rle) == square).all()
        assert isinstance(inst.rle["counts"], str)
    # The polygon covers the same square give or take its border row/column.
    polygon_mask = decode_mask(x.instances[2].rle)
    assert abs(int(polygon_mask.sum()) - int(square.sum())) <= 40
    assert (polygon_mask[6:14, 11:29] == 1).all()


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts (column-major runs, starting with zeros)."""
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return counts


def test_fortran_and_c_ordered_masks_encode_identically_and_score_alike() -> None:
    mask = np.zeros((H, W), np.uint8)
    mask[3:20, 7:33] = 1
    fortran = np.asfortranarray(mask)
    transposed_view = np.ascontiguousarray(mask.T).T  # F-contiguous, a view
    assert fortran.flags.f_contiguous and transposed_view.flags.f_contiguous
    rles = [encode_mask(m) for m in (mask, fortran, transposed_view, mask.astype(bool))]
    assert all(r == rles[0] for r in rles)
    # Raw pycocotools refuses C-ordered input: encode_mask is what makes it safe.
    with pytest.raises((ValueError, TypeError)):
        mask_utils.encode(np.ascontiguousarray(mask))


def test_evaluate_coco_against_annotations_with_ids_from_zero_and_an_image_without_truth() -> None:
    square = np.zeros((H, W), np.uint8)
    square[5:25, 10:40] = 1
    truth = {
        "images": [
            {"id": 1, "file_name": "x.png", "width": W, "height": H},
            {"id": 2, "file_name": "empty.png", "width": W, "height": H},
        ],
        "annotations": [
            # id 0 and a category id that is not 1: pycocotools alone scores this 0.
            {
                "id": 0,
                "image_id": 1,
                "category_id": 5,
                "segmentation": encode_mask(square),
                "bbox": [10, 5, 30, 20],
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 5, "name": "thing"}],
    }
    pred = ImagePrediction("x.png", W, H, [Instance(0, 0.9, (10, 5, 40, 25), encode_mask(square))])
    empty = ImagePrediction("empty.png", W, H, [])
    metrics = evaluate_coco(truth, [pred, empty], {"x.png": 1, "empty.png": 2}, [5])
    assert metrics.mask_ap == pytest.approx(1.0) and metrics.box_ap == pytest.approx(1.0)
    assert (metrics.images, metrics.ground_truth, metrics.detections) == (2, 1, 1)
    # Nothing detected and nothing to detect: -1 ("no ground truth"), never an exception.
    none = evaluate_coco(truth, [empty], {"empty.png": 2}, [5])
    assert none.mask_ap == -1.0 and none.detections == 0


# -- a real report on tiny models --------------------------------------------------


def _projects(
    ws: Workspace,
    images: Path,
    tmp: Path,
    child_dets: tuple[Det, ...],
    labels: Sequence[str] = tuple(CLASSES),
) -> int:
    parent_xml = build_omz_maskrcnn(tmp / "parent" / "model.xml", labels=labels)
    child_xml = build_omz_maskrcnn(
        tmp / "child" / "model.xml", detections=child_dets, labels=labels
    )
    parent = create_project_from_paths(ws, model_path=parent_xml, dataset_path=images, name="Tiny")
    child_model = import_model(
        ws,
        child_xml,
        name="Tiny INT8",
        optimized_from=parent.model_id,
        optimization={"method": "INT8"},
    )
    child = ws.add_project(
        name="Tiny INT8",
        model_id=child_model.id,
        dataset_id=parent.dataset_id,
        device="CPU",
        parent_id=parent.id,
    )
    return child.id


def test_create_report_on_tiny_models_stores_rows_predictions_and_replaces_the_old_one(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    # The child finds the person like its parent but misses the car (class 1).
    child_id = _projects(
        workspace, image_folder, tmp_path, (Det(0, 0.9, (8.0, 8.0, 40.0, 40.0), "full"),)
    )
    stages: list[str] = []
    out = create_report(
        workspace,
        child_id,
        ReportSettings(type=ReportType.PARENT),
        progress=lambda f, s: stages.append(s),
    )
    data = report_data(workspace.result(out["result_id"]))
    totals = data["totals"]
    assert totals["images"] == 3 and totals["images_differ"] == 3
    assert totals["a"] == 3 and totals["b"] == 6 and totals["matches"] == 3
    assert all(r["a"] == 1 and r["b"] == 2 and r["matches"] == 1 for r in data["basic"])
    car_rows = [r for r in data["advanced"] if r["class"] == "car"]
    assert len(car_rows) == 3 and all(r["precision"] is None and r["ap"] == 0.0 for r in car_rows)
    person_rows = [r for r in data["advanced"] if r["class"] == "person"]
    assert all(r["precision"] == 1.0 and r["ap"] == pytest.approx(1.0) for r in person_rows)
    # AP50 beside AP@[.50:.95], from the same COCOeval pass.
    assert [r.get("ap50") for r in car_rows] == [0.0] * 3
    assert all(r.get("ap50") == pytest.approx(1.0) for r in person_rows)
    summary = data["summary"]
    # The parent project is the child's parent, not the project the parent model ran on.
    assert summary["project_id"] == child_id
    assert summary["parent_project_id"] == workspace.project(child_id).parent_id != child_id
    assert summary["precision"] in ("f32", "FP32", "f32 (forced)") or "32" in str(
        summary["precision"]
    )
    assert 0.0 < summary["a_vs_b"]["mask_ap"] < 1.0
    assert stages[-1] == "Done"
    optimized, parent = report_predictions(workspace, out["result_id"])
    assert (
        [p.image for p in optimized]
        == [p.image for p in parent]
        == [r["image"] for r in data["basic"]]
    )
    assert all(len(p.above(0.1)) == 2 for p in parent)
    # Running it again replaces the stored report and its prediction files.
    again = create_report(workspace, child_id, ReportSettings())
    assert [r.id for r in workspace.results(child_id, "report:parent")] == [again["result_id"]]
    assert not (workspace.root / "reports" / str(out["result_id"])).exists()
    md = markdown_summary(report_data(workspace.result(again["result_id"]))["summary"])
    assert f"{summary['a_vs_b']['mask_ap']:.4f}" in md
    assert mask_ap_drop(summary) == round((1 - summary["a_vs_b"]["mask_ap"]) * 100, 4)


@pytest.fixture
def reported(workspace: Workspace, image_folder: Path, tmp_path: Path) -> tuple[int, ReportOutcome]:
    """A child project that misses the car its parent finds, with a parent report stored."""
    child_id = _projects(
        workspace, image_folder, tmp_path, (Det(0, 0.9, (8.0, 8.0, 40.0, 40.0), "full"),)
    )
    return child_id, create_report(workspace, child_id, ReportSettings())


def test_a_report_that_cannot_be_made_keeps_the_stored_one(
    workspace: Workspace, reported: tuple[int, ReportOutcome]
) -> None:
    child_id, kept = reported
    stored = workspace.result(kept["result_id"]).data
    # The parent's best score is 0.9: at 0.95 there is nothing to compare with (COCO's AP
    # would be -1), so the report is refused after the inference, and nothing is replaced.
    with pytest.raises(SegtuiError, match=r"no detection with a score of at least 0\.95") as info:
        create_report(workspace, child_id, ReportSettings(threshold=0.95))
    assert "previous report is kept" in info.value.hint
    assert [r.id for r in workspace.results(child_id, "report:parent")] == [kept["result_id"]]
    assert workspace.result(kept["result_id"]).data == stored
    assert (workspace.root / "reports" / str(kept["result_id"]) / "parent.json").is_file()
    parent_id = workspace.project(child_id).parent_id
    assert parent_id is not None
    with pytest.raises(SegtuiError, match="has no parent to compare with"):
        create_report(workspace, parent_id, ReportSettings())
    with pytest.raises(SegtuiError, match="has no annotations") as info:
        create_report(workspace, child_id, ReportSettings(type=ReportType.ANNOTATIONS))
    assert "type parent" in info.value.hint
    assert len(workspace.results(child_id)) == 1


def test_create_report_on_annotations_scores_both_models_and_rows_against_the_annotations(
    workspace: Workspace, coco_dataset: Path, tmp_path: Path
) -> None:
    # The annotations hold one "box" per image; the child only ever finds a "disc".
    child_id = _projects(
        workspace,
        coco_dataset,
        tmp_path,
        (Det(1, 0.8, (48.0, 16.0, 80.0, 48.0), "full"),),
        labels=("box", "disc"),
    )
    settings = ReportSettings(type=ReportType.ANNOTATIONS, threshold=0.2, iou=0.6)
    out = create_report(workspace, child_id, settings)
    record = workspace.result(out["result_id"])
    assert record.kind == "report:annotations"
    data = report_data(record)
    summary = data["summary"]
    assert summary["type"] is ReportType.ANNOTATIONS
    assert (summary["threshold"], summary["iou"], summary["requested_precision"]) == (
        0.2,
        0.6,
        "f32",
    )
    assert summary["optimized"]["mask_ap"] == 0.0 and summary["optimized"]["ground_truth"] == 2
    assert summary["mask_ap_drop"] == round(summary["parent"]["mask_ap"] * 100, 4)
    assert mask_ap_drop(summary) == summary["mask_ap_drop"]
    assert data["totals"] == summary["totals"]
    assert summary["totals"]["a"] == 2 and summary["totals"]["b"] == 2
    assert summary["totals"]["matches"] == 0 and summary["totals"]["images_differ"] == 2
    rows = {(r["image"], r["class"]): r for r in data["advanced"]}
    assert set(rows) == {(im, c) for im in ("x.png", "y.png") for c in ("box", "disc")}
    for image in ("x.png", "y.png"):
        missed, extra = rows[(image, "box")], rows[(image, "disc")]
        assert (missed["a"], missed["b"], missed["precision"], missed["ap"]) == (0, 1, None, 0.0)
        assert (extra["a"], extra["b"], extra["precision"], extra["ap"]) == (1, 0, 0.0, None)
        assert (missed.get("ap50"), extra.get("ap50")) == (0.0, None)


def test_report_settings_take_defaults_and_ranges_from_the_schema() -> None:
    settings = ReportSettings()
    assert settings.type is REPORT.type.default is ReportType.PARENT
    assert (settings.threshold, settings.iou) == (REPORT.threshold.default, REPORT.iou.default)
    assert settings.precision is REPORT.precision.default
    converted = ReportSettings.from_values(
        {"type": "annotations", "threshold": 0.3, "precision": "default", "max_drop": 1.0}
    )
    assert converted.type is ReportType.ANNOTATIONS and converted.precision is Precision.DEFAULT
    assert converted.values() == {
        "type": "annotations",
        "threshold": 0.3,
        "iou": 0.5,
        "precision": "default",
    }
    assert converted.result_kind == "report:annotations"
    with pytest.raises(SettingError) as refused:
        ReportSettings(threshold=1.5)
    assert refused.value.field == "threshold" and "0–1" in refused.value.message
    with pytest.raises(SettingError) as refused:
        ReportSettings.from_values({"iou": 0.01, "type": "nonsense"})
    assert "IoU" in refused.value.message and "nonsense" in refused.value.message


def test_report_data_reads_a_stored_report_typed_and_refuses_other_results(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    child_id = _projects(workspace, image_folder, tmp_path, ())
    stored = json.loads(json.dumps(_report_data()))  # as the database hands it back
    assert stored["summary"]["type"] == "parent" and type(stored["summary"]["type"]) is str
    record = workspace.add_result(project_id=child_id, kind="report:parent", data=stored)
    data = report_data(record)
    assert data["summary"]["type"] is ReportType.PARENT
    assert data["basic"] == stored["basic"] and data["advanced"] == stored["advanced"]
    other = workspace.add_result(project_id=child_id, kind="benchmark", data={"fps": 1.0})
    with pytest.raises(SegtuiError, match="not a readable report"):
        report_data(other)


# -- a report job: stored with its end, or not at all -------------------------------


StoredReports = tuple[dict[int, tuple[str, object]], dict[str, bytes]]


def _stored_reports(ws: Workspace, project_id: int) -> StoredReports:
    """The project's results (kind and data, by id) and every file under reports/ (contents)."""
    files = {
        p.relative_to(ws.root).as_posix(): p.read_bytes()
        for p in sorted((ws.root / "reports").rglob("*"))
        if p.is_file()
    }
    rows: dict[int, tuple[str, object]] = {r.id: (r.kind, r.data) for r in ws.results(project_id)}
    return rows, files


def _report_job(ws: Workspace, child_id: int) -> JobRecord:
    return jobs.submit(ws, JobKind.REPORT, child_id, ReportSettings(iou=0.6).values())


@pytest.mark.parametrize(
    ("point", "sig", "state"),
    [
        (STORING_STAGE, signal.SIGKILL, JobState.INTERRUPTED),
        (BEFORE_COMMIT, signal.SIGKILL, JobState.INTERRUPTED),
        (BEFORE_COMMIT, signal.SIGTERM, JobState.CANCELLED),
    ],
)
def test_a_report_job_killed_or_cancelled_while_storing_keeps_the_stored_report(
    workspace: Workspace,
    reported: tuple[int, ReportOutcome],
    monkeypatch: pytest.MonkeyPatch,
    point: str,
    sig: signal.Signals,
    state: JobState,
) -> None:
    child_id, kept = reported
    before = _stored_reports(workspace, child_id)
    assert len(before[0]) == 1 and len(before[1]) == 2  # a report and its predictions
    monkeypatch.setenv(job_registry.PAUSE_ENV, point)
    job = held(workspace, _report_job(workspace, child_id).id)
    assert job.state == JobState.RUNNING and job.stage == STORING_STAGE
    kill(workspace, job, sig)
    if sig == signal.SIGTERM:  # a cancel: acted on just before the commit, rolled back
        release(workspace, job.id)
        after = ended_job(workspace, job.id)
    else:  # recovery removes the new report's folder a kill inside the transaction left
        assert jobs.recover_jobs(workspace) == [job.id]
        after = workspace.job(job.id)
    assert (after.state, after.result) == (state, None), job_log(workspace, job.id)
    assert _stored_reports(workspace, child_id) == before
    assert [r.id for r in workspace.results(child_id)] == [kept["result_id"]]
    assert list((workspace.root / "jobs").glob("*/work")) == []


def test_a_report_job_stores_its_report_and_its_end_in_one_commit(
    workspace: Workspace, reported: tuple[int, ReportOutcome]
) -> None:
    child_id, old = reported
    job = jobs.wait(workspace, _report_job(workspace, child_id).id)
    assert job.state == JobState.DONE, job_log(workspace, job.id)
    assert (job.progress, job.stage) == (1.0, "Done")
    assert job.result is not None
    (record,) = workspace.results(child_id)
    assert job.result["result_id"] == record.id != old["result_id"]
    assert report_data(record)["summary"]["iou"] == 0.6
    assert sorted(p.name for p in (workspace.root / "reports").iterdir()) == [str(record.id)]
    assert "ended already" not in job_log(workspace, job.id)
