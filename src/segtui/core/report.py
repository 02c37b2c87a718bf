"""Accuracy reports: where an optimized model's predictions differ from its parent's (or from annotations).

Two types:
- "parent": B = the parent model's predictions (score >= threshold), A = the
  optimized model's predictions with the same threshold (the Workbench applied
  it to B only; we do not copy that defect). No annotations needed.
- "annotations": B = the dataset's annotations; COCO AP of both models, and the drop.

Basic rows: one per image that has an A or a B instance. Advanced rows: one
per image and class present in A or B (a class the optimized model missed
entirely still gets a row, with precision "n/a"). Images with neither count
in the totals only.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import (
    category_mapping,
    evaluate_coco,
    load_annotations,
    predictions_as_ground_truth,
)
from segtui.core.inference import run_inference
from segtui.core.matching import compare_predictions
from segtui.core.models import load_registered
from segtui.core.predictions import ImagePrediction, Instance
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.workspace import Workspace, atomic_write_text

REPORT_TYPES = ("parent", "annotations")


@dataclass
class ReportSettings:
    type: str = "parent"
    threshold: float = 0.1
    iou: float = 0.5
    precision: str = "f32"


def annotations_as_predictions(
    truth: dict[str, Any],
    images: list[tuple[str, int]],
    category_ids: list[int] | None,
    num_classes: int,
) -> list[ImagePrediction]:
    """The annotations in prediction form (score 1), so they can stand as B in the tables."""
    from pycocotools import mask as mask_utils

    to_class = (
        {cid: i for i, cid in enumerate(category_ids)}
        if category_ids
        else {i + 1: i for i in range(num_classes)}
    )
    info = {int(im["id"]): im for im in truth["images"]}
    by_image: dict[int, list[Instance]] = defaultdict(list)
    for ann in truth["annotations"]:
        im = info[int(ann["image_id"])]
        h, w = int(im["height"]), int(im["width"])
        seg = ann["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = dict(seg)
        counts = rle["counts"]
        rle = {
            "size": [h, w],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
        }
        x, y, bw, bh = ann.get("bbox", [0, 0, 0, 0])
        cls = to_class.get(int(ann["category_id"]), -1)
        by_image[int(ann["image_id"])].append(Instance(cls, 1.0, (x, y, x + bw, y + bh), rle))
    return [
        ImagePrediction(
            name, int(info[iid]["width"]), int(info[iid]["height"]), by_image.get(iid, [])
        )
        for name, iid in images
    ]


def create_report(
    ws: Workspace,
    project_id: int,
    settings: ReportSettings,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Run both models on every image and build the report; stored, replacing an older one of the type."""
    if settings.type not in REPORT_TYPES:
        raise SegtuiError(f"Unknown report type {settings.type!r}.", "Use parent or annotations.")
    project = ws.project(project_id)
    if project.parent_id is None:
        raise SegtuiError(
            f"Project {project.name!r} is not an optimized project: it has no parent to compare with.",
            "Open the optimized (child) project, or optimize this one first.",
        )
    parent = ws.project(project.parent_id)
    dataset = ws.dataset(project.dataset_id)
    if settings.type == "annotations" and not dataset.annotated:
        raise SegtuiError(
            f"Dataset {dataset.name!r} has no annotations.", "Use --type parent, which needs none."
        )
    model, parent_model = ws.model(project.model_id), ws.model(parent.model_id)
    images = ws.dataset_images(dataset.id)
    pairs = [(im.path, image_path(dataset, im)) for im in images]
    started = time.perf_counter()
    runs = {}
    for n, (key, model_record) in enumerate((("optimized", model), ("parent", parent_model))):
        loaded = load_registered(model_record)

        def stage(fraction: float, text: str, n: int = n, key: str = key) -> None:
            progress(0.47 * (n + fraction), f"{key} model: {text}")

        runs[key] = run_inference(
            loaded.model,
            loaded.adapter,
            pairs,
            device=project.device,
            precision=settings.precision,
            score_threshold=min(settings.threshold, 0.05),
            progress=stage,
            cancel=cancel,
        )
    inference_s = time.perf_counter() - started
    progress(0.95, "Matching predictions")
    a_preds, parent_preds = runs["optimized"].predictions, runs["parent"].predictions
    ids = {im.path: int(im.coco_id or im.idx + 1) for im in images}
    classes = model.class_names
    summary: dict[str, Any] = {
        "type": settings.type,
        "threshold": settings.threshold,
        "iou": settings.iou,
        "precision": runs["optimized"].precision,
        "requested_precision": settings.precision,
        "device": project.device,
        "project_id": project.id,
        "parent_project_id": parent.id,
        "inference_seconds": round(inference_s, 3),
    }
    if settings.type == "parent":
        tables = compare_predictions(
            a_preds, parent_preds, classes, threshold=settings.threshold, iou=settings.iou
        )
        truth = predictions_as_ground_truth(parent_preds, ids, len(classes), settings.threshold)
        a_above = [
            ImagePrediction(p.image, p.width, p.height, p.above(settings.threshold))
            for p in a_preds
        ]
        metrics = evaluate_coco(truth, a_above, ids, by_size=False)
        summary["a_vs_b"] = metrics.to_json()
    else:
        assert dataset.annotations is not None
        truth = load_annotations(dataset.annotations)
        categories = category_mapping(classes, dataset.analysis)
        gt_preds = annotations_as_predictions(
            truth, [(im.path, ids[im.path]) for im in images], categories, len(classes)
        )
        tables = compare_predictions(
            a_preds, gt_preds, classes, threshold=settings.threshold, iou=settings.iou
        )
        optimized_m = evaluate_coco(truth, a_preds, ids, categories, by_size=False)
        parent_m = evaluate_coco(truth, parent_preds, ids, categories, by_size=False)
        summary["optimized"] = optimized_m.to_json()
        summary["parent"] = parent_m.to_json()
        summary["mask_ap_drop"] = round((parent_m.mask_ap - optimized_m.mask_ap) * 100, 4)
        summary["box_ap_drop"] = round((parent_m.box_ap - optimized_m.box_ap) * 100, 4)
    summary["totals"] = tables["totals"]
    kind = f"report:{settings.type}"
    previous = ws.results(project.id, kind)
    record = ws.add_result(project_id=project.id, kind=kind, data={"summary": summary, **tables})
    folder = ws.root / "reports" / str(record.id)
    try:
        atomic_write_text(folder / "optimized.json", json.dumps([p.to_json() for p in a_preds]))
        atomic_write_text(folder / "parent.json", json.dumps([p.to_json() for p in parent_preds]))
    except BaseException:
        ws.delete_result(record.id)
        raise
    # Replace the older report of this type only once the new one is complete.
    for old in previous:
        ws.delete_result(old.id)
    progress(1.0, "Done")
    return {"result_id": record.id, "summary": summary}


def report_predictions(
    ws: Workspace, result_id: int
) -> tuple[list[ImagePrediction], list[ImagePrediction]]:
    """The stored (optimized, parent) predictions of a report, for Visualize."""
    folder = ws.root / "reports" / str(result_id)

    def load(name: str) -> list[ImagePrediction]:
        return [ImagePrediction.from_json(d) for d in json.loads((folder / name).read_text())]

    return load("optimized.json"), load("parent.json")


def export_report(data: dict[str, Any], out: Path) -> list[Path]:
    """Write a report as CSV (basic and advanced), JSON and a Markdown summary next to `out`."""
    import csv
    import io

    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.with_suffix("")
    written = []
    for mode, columns in (
        ("basic", ["image", "a", "b", "matches"]),
        ("advanced", ["image", "class", "a", "b", "matches", "precision", "ap"]),
    ):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in data[mode]:
            writer.writerow(["n/a" if row[c] is None else row[c] for c in columns])
        path = base.with_name(f"{base.name}_{mode}.csv")
        atomic_write_text(path, buffer.getvalue())
        written.append(path)
    json_path = base.with_suffix(".json")
    atomic_write_text(json_path, json.dumps(data, indent=1))
    md_path = base.with_suffix(".md")
    atomic_write_text(md_path, markdown_summary(data["summary"]))
    return [*written, json_path, md_path]


def markdown_summary(summary: dict[str, Any]) -> str:
    t = summary["totals"]
    lines = [
        f"# Accuracy report ({'optimized vs parent predictions' if summary['type'] == 'parent' else 'on annotations'})",
        "",
        f"- project {summary['project_id']} (parent {summary['parent_project_id']}), {summary['device']}, "
        f"inference precision {summary['precision']}",
        f"- score threshold {summary['threshold']}, match IoU {summary['iou']}",
        f"- images {t['images']} ({t['images_without_instances']} without instances, {t['images_differ']} where A ≠ B)",
        f"- A (optimized) {t['a']}, B ({'parent' if summary['type'] == 'parent' else 'annotations'}) {t['b']}, matches {t['matches']}",
    ]
    if summary["type"] == "parent":
        m = summary["a_vs_b"]
        lines.append(f"- mask AP of A against B: {m['mask_ap']:.4f}; box AP: {m['box_ap']:.4f}")
    else:
        lines += [
            "",
            "| model | mask AP | mask AP50 | box AP | box AP50 |",
            "|---|---|---|---|---|",
        ]
        for key in ("parent", "optimized"):
            m = summary[key]
            lines.append(
                f"| {key} | {m['mask_ap']:.4f} | {m['mask_ap50']:.4f} | {m['box_ap']:.4f} | {m['box_ap50']:.4f} |"
            )
        lines.append(
            f"\nMask AP drop: {summary['mask_ap_drop']:.2f} points; box AP drop: {summary['box_ap_drop']:.2f} points."
        )
    return "\n".join(lines) + "\n"
