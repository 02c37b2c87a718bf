"""Accuracy reports: where an optimized model's predictions differ from its parent's (or from annotations).

Two types:
- "parent": B = the parent model's predictions (score >= threshold), A = the
  optimized model's predictions with the same threshold (the Workbench applied
  it to B only; we do not copy that defect). No annotations needed.
- "annotations": B = the dataset's annotations; COCO AP of both models, and the drop.

Basic rows: one per image that has an A or a B instance. Advanced rows: one
per image and class present in A or B (a class the optimized model missed
entirely still gets a row, with precision "n/a"). Images with neither count
in the totals only. The advanced rows' AP is COCOeval's own matching, taken per
image and class from the pass that scores A against B: AP over IoU .50:.95 ("ap"),
and at IoU .50 alone ("ap50", absent from reports stored before it).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from pycocotools import mask as mask_utils

from segtui.core.accuracy import ProjectPredictions, predict_project
from segtui.core.accuracy_values import AccuracySettingsJson
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import (
    CocoMetrics,
    CocoMetricsData,
    ImageCategory,
    evaluate_coco,
    evaluate_coco_by_image,
    load_annotations,
    mask_aps_by_image,
    predictions_as_ground_truth,
)
from segtui.core.job_registry import cancel_deferred, pause_point
from segtui.core.matching import (
    AdvancedRow,
    BasicRow,
    ImageClass,
    ReportTables,
    ReportTotals,
    compare_predictions,
)
from segtui.core.predictions import ImagePrediction, Instance, as_rle
from segtui.core.preflight import check_report
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.safe_files import make_output_folder, write_output_text
from segtui.core.settings import REPORT, checked
from segtui.core.types import Precision, ReportType, ResultKind
from segtui.core.workspace import (
    DatasetRecord,
    ProjectRecord,
    ResultRecord,
    Workspace,
    atomic_write_text,
)

if TYPE_CHECKING:
    from segtui.core.workspace import _Tx

#: Both models predict down to this score (or the report's threshold, if lower).
PREDICTION_FLOOR = 0.05
#: The report's last stage: its rows and predictions stored (with a job's end, in one commit).
STORING_STAGE = "Storing the report"
#: The moment inside that commit, for the SEGTUI_TEST_PAUSE_AT test hook.
BEFORE_COMMIT = "report: before commit"


@dataclass(frozen=True)
class ReportSettings:
    """How a report is made; defaults and ranges are the REPORT schema's, checked on creation."""

    type: ReportType = REPORT.type.default
    threshold: float = REPORT.threshold.default
    iou: float = REPORT.iou.default
    precision: Precision = REPORT.precision.default

    def __post_init__(self) -> None:
        # Raises a SettingError naming every refused value; converts choice strings to enums.
        for name, value in checked(REPORT, asdict(self)).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> ReportSettings:
        """From job params or parsed options: the schema's names, the rest left out."""
        names = {field.name for field in REPORT}
        return cls(**checked(REPORT, {k: v for k, v in values.items() if k in names}))

    def values(self) -> dict[str, object]:
        """The job params (JSON: the enums are their strings)."""
        return asdict(self)

    @property
    def result_kind(self) -> ResultKind:
        return ResultKind(f"report:{self.type}")


class ReportFigures(TypedDict, total=False):
    """The AP part of a report's summary, by its type."""

    #: "parent" reports: COCO AP of A against B.
    a_vs_b: CocoMetricsData
    #: "annotations" reports: COCO AP of each model, and the drops in points.
    optimized: CocoMetricsData
    parent: CocoMetricsData
    mask_ap_drop: float
    box_ap_drop: float


class ReportSummary(ReportFigures):
    """A report's headline: how it was made, its AP figures and totals."""

    type: ReportType
    threshold: float
    iou: float
    precision: str  # what the device ran at
    requested_precision: str
    device: str
    project_id: int
    parent_project_id: int
    inference_seconds: float
    totals: ReportTotals
    #: Each model's accuracy settings it ran with, "optimized" and "parent" (reports stored
    #: before they were recorded lack it: core.settings_versions).
    settings: NotRequired[dict[str, AccuracySettingsJson]]


class ReportData(TypedDict):
    """A stored report: the data of a "report:parent" or "report:annotations" result."""

    summary: ReportSummary
    basic: list[BasicRow]
    advanced: list[AdvancedRow]
    totals: ReportTotals


class ReportOutcome(TypedDict):
    """A report job's result."""

    result_id: int
    summary: ReportSummary


@dataclass(frozen=True)
class ReportImages:
    """What drawing a stored report's images needs, read once: predictions by image, where
    the images are, and the score threshold and match IoU the report was made with."""

    optimized: Mapping[str, ImagePrediction]
    parent: Mapping[str, ImagePrediction]
    paths: Mapping[str, Path]
    class_names: Sequence[str]
    threshold: float
    iou: float
    #: Annotations reports drawn for the page: the annotations (score 1) by image; else None.
    truth: Mapping[str, ImagePrediction] | None = None


#: `on_stored(tx, outcome)` writes what commits with the stored report (a job's end).
OnStored = Callable[["_Tx", ReportOutcome], None]


def report_data(record: ResultRecord) -> ReportData:
    """A stored report read back typed (its type as a ReportType)."""
    data = record.data
    if not all(key in data for key in ("summary", "basic", "advanced")):
        raise SegtuiError(
            f"Result {record.id} is not a readable report.", "Create the report again."
        )
    summary = dict(data["summary"])
    summary["type"] = ReportType(summary.get("type", record.kind.removeprefix("report:")))
    return cast(ReportData, {**data, "summary": summary})


def _class_of_category(category_ids: Sequence[int] | None, num_classes: int) -> dict[int, int]:
    """COCO category id -> model class id (the annotations' other categories are class -1)."""
    if category_ids:
        return {cid: n for n, cid in enumerate(category_ids)}
    return {n + 1: n for n in range(num_classes)}


def annotations_as_predictions(
    truth: Mapping[str, Any],
    images: Sequence[tuple[str, int]],
    category_ids: Sequence[int] | None,
    num_classes: int,
) -> list[ImagePrediction]:
    """The annotations in prediction form (score 1), so they can stand as B in the tables."""
    to_class = _class_of_category(category_ids, num_classes)
    info = {int(im["id"]): im for im in truth["images"]}
    by_image: dict[int, list[Instance]] = defaultdict(list)
    for ann in truth["annotations"]:
        im = info[int(ann["image_id"])]
        h, w = int(im["height"]), int(im["width"])
        seg = ann["segmentation"]
        if isinstance(seg, list):
            raw = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            raw = mask_utils.frPyObjects(seg, h, w)
        else:
            raw = seg
        rle = as_rle({"size": [h, w], "counts": raw["counts"]})
        x, y, bw, bh = ann.get("bbox", [0, 0, 0, 0])
        cls = to_class.get(int(ann["category_id"]), -1)
        by_image[int(ann["image_id"])].append(Instance(cls, 1.0, (x, y, x + bw, y + bh), rle))
    return [
        ImagePrediction(
            name, int(info[iid]["width"]), int(info[iid]["height"]), by_image.get(iid, [])
        )
        for name, iid in images
    ]


def _by_image_class(
    aps: Mapping[ImageCategory, float],
    image_ids: Mapping[str, int],
    to_class: Mapping[int, int],
) -> dict[ImageClass, float]:
    names = {image_id: name for name, image_id in image_ids.items()}
    return {
        (names[image_id], to_class.get(category, -1)): ap
        for (image_id, category), ap in aps.items()
        if image_id in names
    }


def _with_ap50(tables: ReportTables, ap50s: Mapping[ImageClass, float]) -> ReportTables:
    """The advanced rows' AP at IoU .50 alone, beside their AP over .50:.95 (the same pass)."""
    for row in tables["advanced"]:
        ap50 = ap50s.get((row["image"], row["class_id"]))
        row["ap50"] = None if ap50 is None else round(ap50, 4)
    return tables


def _above(predictions: list[ImagePrediction], threshold: float) -> list[ImagePrediction]:
    return [ImagePrediction(p.image, p.width, p.height, p.above(threshold)) for p in predictions]


def compare_with_parent(
    optimized: list[ImagePrediction],
    parent: list[ImagePrediction],
    class_names: Sequence[str],
    image_ids: Mapping[str, int],
    *,
    threshold: float,
    iou: float,
) -> tuple[ReportTables, CocoMetrics]:
    """The tables and the COCO AP of A against B = the parent's predictions above `threshold`.

    One COCOeval pass gives both the summary AP and each row's per-image, per-class AP.
    """
    truth = predictions_as_ground_truth(parent, image_ids, len(class_names), threshold)
    scored = evaluate_coco_by_image(truth, _above(optimized, threshold), image_ids, by_size=False)
    to_class = _class_of_category(None, len(class_names))
    class_aps = _by_image_class(scored.mask_ap_by_image, image_ids, to_class)
    tables = compare_predictions(
        optimized, parent, class_names, threshold=threshold, iou=iou, class_aps=class_aps
    )
    ap50s = _by_image_class(scored.mask_ap50_by_image, image_ids, to_class)
    return _with_ap50(tables, ap50s), scored.metrics


def compare_with_annotations(
    optimized: ProjectPredictions,
    parent: ProjectPredictions,
    truth: Mapping[str, Any],
    *,
    threshold: float,
    iou: float,
) -> tuple[ReportTables, CocoMetrics, CocoMetrics]:
    """The tables (B = the annotations) and the COCO AP of each model on the annotations."""
    ids, categories = optimized.image_ids, optimized.category_ids
    classes = optimized.model.class_names
    truth_predictions = annotations_as_predictions(
        truth, [(im.path, ids[im.path]) for im in optimized.images], categories, len(classes)
    )
    # The rows count A above the threshold, so their AP scores A above it too; the
    # summary's AP is COCO's usual, over all of each model's predictions.
    aps, ap50s = mask_aps_by_image(truth, _above(optimized.predictions, threshold), ids, categories)
    to_class = _class_of_category(categories, len(classes))
    class_aps = _by_image_class(aps, ids, to_class)
    tables = compare_predictions(
        optimized.predictions,
        truth_predictions,
        classes,
        threshold=threshold,
        iou=iou,
        class_aps=class_aps,
    )
    _with_ap50(tables, _by_image_class(ap50s, ids, to_class))
    optimized_m = evaluate_coco(truth, optimized.predictions, ids, categories, by_size=False)
    parent_m = evaluate_coco(truth, parent.predictions, ids, categories, by_size=False)
    return tables, optimized_m, parent_m


def _report_projects(
    ws: Workspace, project_id: int, settings: ReportSettings
) -> tuple[ProjectRecord, ProjectRecord, DatasetRecord]:
    """The optimized project, its parent and its dataset, or why no report can be made."""
    project = ws.project(project_id)
    parent = check_report(ws, project, settings.type)
    return project, parent, ws.dataset(project.dataset_id)


def _predict_both(
    ws: Workspace,
    project: ProjectRecord,
    parent: ProjectRecord,
    settings: ReportSettings,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> tuple[ProjectPredictions, ProjectPredictions]:
    """Both models over the optimized project's dataset, on its device."""
    runs = []
    for n, (key, model_id) in enumerate(
        (("optimized", project.model_id), ("parent", parent.model_id))
    ):

        def stage(fraction: float, text: str, n: int = n, key: str = key) -> None:
            progress(0.47 * (n + fraction), f"{key} model: {text}")

        runs.append(
            predict_project(
                ws,
                project.id,
                model_id=model_id,
                precision=settings.precision,
                threshold=min(settings.threshold, PREDICTION_FLOOR),
                progress=stage,
                cancel=cancel,
            )
        )
    return runs[0], runs[1]


def _summary(
    settings: ReportSettings,
    optimized: ProjectPredictions,
    parent: ProjectPredictions,
    inference_s: float,
    figures: ReportFigures,
    totals: ReportTotals,
) -> ReportSummary:
    return {
        "type": settings.type,
        "threshold": settings.threshold,
        "iou": settings.iou,
        "precision": optimized.precision,
        "requested_precision": settings.precision,
        "device": optimized.project.device,
        "project_id": optimized.project.id,
        # The parent model ran on the optimized project (its dataset, its device): the
        # parent project is the optimized one's parent, not the project it ran on.
        "parent_project_id": optimized.project.parent_id or parent.project.id,
        "inference_seconds": round(inference_s, 3),
        **figures,
        "totals": totals,
        "settings": {
            "optimized": optimized.settings,
            "parent": parent.settings,
        },
    }


def _store(
    ws: Workspace,
    data: ReportData,
    predictions: Mapping[str, ProjectPredictions],
    cancel: CancelToken | None,
    on_stored: OnStored | None,
) -> int:
    """Store the report, its predictions and `on_stored`'s rows as one unit; the result's id.

    One transaction adds the row, writes the predictions into reports/<id>, removes the
    older report of the type and commits `on_stored`'s rows: a failure, a cancel or a kill
    before the commit leaves the stored report as it was (recovery removes a folder a kill
    left). A cancel is acted on just before the commit, never in its middle.
    """
    summary = data["summary"]
    project_id = summary["project_id"]
    kind = ResultKind(f"report:{summary['type']}")
    files = {
        name: json.dumps([p.to_json() for p in run.predictions])
        for name, run in predictions.items()
    }
    folder: Path | None = None
    with cancel_deferred():
        try:
            with ws.transaction() as tx:
                previous = [old.id for old in ws.results(project_id, kind)]
                result_id = ws.insert_result(
                    tx, project_id=project_id, kind=kind, data=dict(data), job_id=None
                )
                folder = ws.root / "reports" / str(result_id)
                shutil.rmtree(folder, ignore_errors=True)  # left by a kill before a commit
                for name, text in files.items():
                    atomic_write_text(folder / name, text)
                ws.delete_results(tx, previous)
                if on_stored is not None:
                    on_stored(tx, {"result_id": result_id, "summary": summary})
                pause_point(BEFORE_COMMIT)
                if cancel is not None:
                    cancel.raise_if_cancelled()  # the last moment a cancel undoes the store
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        for old_id in previous:
            shutil.rmtree(ws.root / "reports" / str(old_id), ignore_errors=True)
    return result_id


def _check_reference(parent: ProjectPredictions, threshold: float) -> None:
    """Refuse a parent report whose reference B is empty: its AP would be COCO's -1."""
    if any(p.above(threshold) for p in parent.predictions):
        return
    raise SegtuiError(
        f"The parent model has no detection with a score of at least {threshold:g} on any of "
        f"the {len(parent.predictions)} images, so there is nothing to compare the optimized "
        "model with.",
        "Lower the score threshold. Nothing was stored; the previous report is kept.",
    )


def create_report(
    ws: Workspace,
    project_id: int,
    settings: ReportSettings,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    on_stored: OnStored | None = None,
) -> ReportOutcome:
    """Run both models on every image and build the report; stored, replacing an older one of the type.

    `on_stored` commits with the report (a job records its end there: see `_store`).
    """
    project, parent_project, dataset = _report_projects(ws, project_id, settings)
    started = time.perf_counter()
    optimized, parent = _predict_both(ws, project, parent_project, settings, progress, cancel)
    inference_s = time.perf_counter() - started
    progress(0.95, "Matching predictions")
    figures: ReportFigures
    if settings.type == ReportType.PARENT:
        _check_reference(parent, settings.threshold)
        tables, a_vs_b = compare_with_parent(
            optimized.predictions,
            parent.predictions,
            optimized.model.class_names,
            optimized.image_ids,
            threshold=settings.threshold,
            iou=settings.iou,
        )
        figures = {"a_vs_b": a_vs_b.to_json()}
    else:
        assert dataset.annotations is not None  # an annotated dataset has its file
        tables, optimized_m, parent_m = compare_with_annotations(
            optimized,
            parent,
            load_annotations(dataset.annotations),
            threshold=settings.threshold,
            iou=settings.iou,
        )
        figures = {
            "optimized": optimized_m.to_json(),
            "parent": parent_m.to_json(),
            "mask_ap_drop": round((parent_m.mask_ap - optimized_m.mask_ap) * 100, 4),
            "box_ap_drop": round((parent_m.box_ap - optimized_m.box_ap) * 100, 4),
        }
    summary = _summary(settings, optimized, parent, inference_s, figures, tables["totals"])
    data: ReportData = {"summary": summary, **tables}
    progress(0.98, STORING_STAGE)
    result_id = _store(
        ws, data, {"optimized.json": optimized, "parent.json": parent}, cancel, on_stored
    )
    if on_stored is None:  # else the end was recorded with the report (progress 1, "Done")
        progress(1.0, "Done")
    return {"result_id": result_id, "summary": summary}


def report_predictions(
    ws: Workspace, result_id: int
) -> tuple[list[ImagePrediction], list[ImagePrediction]]:
    """The stored (optimized, parent) predictions of a report, for Visualize."""
    folder = ws.root / "reports" / str(result_id)

    def load(name: str) -> list[ImagePrediction]:
        return [ImagePrediction.from_json(d) for d in json.loads((folder / name).read_text())]

    return load("optimized.json"), load("parent.json")


def _na(value: float | None) -> float | str:
    return "n/a" if value is None else value


def export_paths(out: Path) -> dict[str, Path]:
    """The files `export_report` writes, named after `out` (inside it when it is a folder)."""
    base = out / "report" if out.is_dir() else out.with_suffix("")
    return {
        "basic": base.with_name(f"{base.name}_basic.csv"),
        "advanced": base.with_name(f"{base.name}_advanced.csv"),
        "json": base.with_name(f"{base.name}.json"),
        "md": base.with_name(f"{base.name}.md"),
    }


def export_report(data: ReportData, out: Path) -> list[Path]:
    """Write a report as CSV (basic and advanced), JSON and a Markdown summary next to `out`."""
    paths = export_paths(out)
    make_output_folder(paths["json"].parent)
    basic: list[Sequence[object]] = [("image", "a", "b", "matches")]
    basic += [(r["image"], r["a"], r["b"], r["matches"]) for r in data["basic"]]
    advanced: list[Sequence[object]] = [
        ("image", "class", "a", "b", "matches", "precision", "ap", "ap50")
    ]
    advanced += [
        (
            *(r["image"], r["class"], r["a"], r["b"], r["matches"]),
            *(_na(r["precision"]), _na(r["ap"]), _na(r.get("ap50"))),
        )
        for r in data["advanced"]
    ]
    for mode, rows in {"basic": basic, "advanced": advanced}.items():
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        write_output_text(paths[mode], buffer.getvalue())
    write_output_text(paths["json"], json.dumps(data, indent=1))
    write_output_text(paths["md"], markdown_summary(data["summary"]))
    return [paths["basic"], paths["advanced"], paths["json"], paths["md"]]


def markdown_summary(summary: ReportSummary) -> str:
    """The report's summary as Markdown (the CLI prints it; exports write it)."""
    t = summary["totals"]
    on_parent = summary["type"] == ReportType.PARENT
    lines = [
        f"# Accuracy report ({'optimized vs parent predictions' if on_parent else 'on annotations'})",
        "",
        f"- project {summary['project_id']} (parent {summary['parent_project_id']}), {summary['device']}, "
        f"inference precision {summary['precision']}",
        f"- score threshold {summary['threshold']}, match IoU {summary['iou']}",
        f"- images {t['images']} ({t['images_without_instances']} without instances, {t['images_differ']} where A ≠ B)",
        f"- A (optimized) {t['a']}, B ({'parent' if on_parent else 'annotations'}) {t['b']}, matches {t['matches']}",
    ]
    if on_parent:
        m = summary["a_vs_b"]
        lines.append(f"- mask AP of A against B: {m['mask_ap']:.4f}; box AP: {m['box_ap']:.4f}")
        return "\n".join(lines) + "\n"
    lines += ["", "| model | mask AP | mask AP50 | box AP | box AP50 |", "|---|---|---|---|---|"]
    for key, m in (("parent", summary["parent"]), ("optimized", summary["optimized"])):
        lines.append(
            f"| {key} | {m['mask_ap']:.4f} | {m['mask_ap50']:.4f} | {m['box_ap']:.4f} | {m['box_ap50']:.4f} |"
        )
    lines.append(
        f"\nMask AP drop: {summary.get('mask_ap_drop', 0.0):.2f} points; "
        f"box AP drop: {summary.get('box_ap_drop', 0.0):.2f} points."
    )
    return "\n".join(lines) + "\n"


def mask_ap_drop(summary: ReportSummary) -> float:
    """The mask AP drop a report shows, in points: parent − optimized on annotations; against
    the parent's predictions, how far the AP of A against B is from a perfect 1."""
    if summary["type"] == ReportType.ANNOTATIONS:
        return summary["mask_ap_drop"]
    return round((1 - summary["a_vs_b"]["mask_ap"]) * 100, 4)
