"""Accuracy commands: predict, evaluate (COCO AP), report (optimized vs parent or annotations)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, schema_values
from segtui.cli.output import EXIT_ERROR, EXIT_OK, Output
from segtui.core.settings import EVALUATE, PREDICT, REPORT, REPORT_GATE
from segtui.core.types import JobKind, ReportType


def cmd_predict(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.datasets import image_path
    from segtui.core.inference import run_inference
    from segtui.core.models import load_registered
    from segtui.core.predictions import to_coco_results
    from segtui.core.workspace import atomic_write_text

    settings = schema_values(args, PREDICT)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        model = ws.model(project.model_id)
        dataset = ws.dataset(project.dataset_id)
        images = ws.dataset_images(dataset.id)
        if settings["limit"]:
            images = images[: settings["limit"]]
        loaded = load_registered(model)
        run = run_inference(
            loaded.model,
            loaded.adapter,
            [(im.path, image_path(dataset, im)) for im in images],
            device=project.device,
            precision=settings["precision"],
            score_threshold=settings["threshold"],
            progress=out.progress,
        )
        ids = {im.path: (im.coco_id if im.coco_id is not None else im.idx + 1) for im in images}
        category_ids = dataset.analysis.get("category_ids") if dataset.annotated else None
        if category_ids and len(category_ids) != len(model.class_names):
            category_ids = None
        results = to_coco_results(run.predictions, ids, category_ids)
        names = {v: k for k, v in ids.items()}
        for entry in results:
            entry["file_name"] = names[entry["image_id"]]
        out_path = Path(args.out)
        atomic_write_text(out_path, json.dumps(results))
        summary = {
            "project_id": project.id,
            "images": len(run.predictions),
            "instances": len(results),
            "precision": run.precision,
            "device": run.device,
            "seconds": round(run.seconds, 3),
            "images_per_second": round(len(run.predictions) / max(run.seconds, 1e-9), 2),
            "out": str(out_path),
        }
        out.result(
            summary,
            f"{len(results)} instances in {len(run.predictions)} images "
            f"({run.device}, {run.precision}, {summary['images_per_second']} img/s) → {out_path}",
        )
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace, out: Output) -> int:
    settings = schema_values(args, EVALUATE)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        final = run_job(ws, JobKind.EVALUATE, project.id, settings, out)
        result: dict[str, Any] = dict(final.result or {})
        m = result.get("metrics", {})
        out.result(
            result | {"job_id": final.id, "project_id": project.id},
            f"Project {project.id} on {result.get('images')} images ({result.get('device')}, {result.get('precision')}):\n"
            f"  mask AP {m.get('mask_ap', 0):.4f}  AP50 {m.get('mask_ap50', 0):.4f}  AP75 {m.get('mask_ap75', 0):.4f}\n"
            f"  box  AP {m.get('box_ap', 0):.4f}  AP50 {m.get('box_ap50', 0):.4f}  AP75 {m.get('box_ap75', 0):.4f}",
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.report import export_report, markdown_summary

    settings = schema_values(args, REPORT)
    max_drop = schema_values(args, REPORT_GATE)["max_drop"]
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        final = run_job(ws, JobKind.REPORT, project.id, settings, out)
        record = ws.result(int((final.result or {})["result_id"]))
        summary = record.data["summary"]
        if args.export:
            for path in export_report(record.data, Path(args.export)):
                out.note(f"wrote {path}")
        drop = (
            summary["mask_ap_drop"]
            if settings["type"] == ReportType.ANNOTATIONS
            else round((1 - summary["a_vs_b"]["mask_ap"]) * 100, 4)
        )
        data = {"result_id": record.id, "summary": summary, "mask_ap_drop": drop}
        out.result(data, markdown_summary(summary).rstrip())
        if max_drop is not None and drop > max_drop:
            out.fail(f"mask AP drop {drop:.2f} points exceeds --max-drop {max_drop:g}", "")
            return EXIT_ERROR
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("predict", parents=[common], help="run a project's model over its dataset")
    p.add_argument("project", help="project id or name")
    p.add_argument("--out", required=True, help="COCO-style results JSON to write")
    add_schema_options(p, PREDICT)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "evaluate", parents=[common], help="COCO box/mask AP on an annotated dataset (a job)"
    )
    p.add_argument("project", help="project id or name")
    add_schema_options(p, EVALUATE)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "report", parents=[common], help="accuracy report of an optimized project (a job)"
    )
    p.add_argument("project")
    add_schema_options(p, REPORT)
    add_schema_options(p, REPORT_GATE)
    p.add_argument("--export", help="also write CSV, JSON and Markdown next to this path")
    p.set_defaults(func=cmd_report)
