"""Accuracy commands: predict, evaluate (COCO AP), report (optimized vs parent or annotations)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypedDict, cast

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, naming_options, output_file, schema_values
from segtui.cli.output import EXIT_ERROR, EXIT_OK, CliError, Output
from segtui.core.preflight import check_job, check_project
from segtui.core.settings import EVALUATE, PREDICT, REPORT, REPORT_GATE
from segtui.core.types import JobKind


class PredictSummary(TypedDict):
    """What `segtui predict --json` prints."""

    project_id: int
    images: int
    instances: int
    precision: str
    device: str
    seconds: float
    images_per_second: float
    out: str


def cmd_predict(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.accuracy import predict_project
    from segtui.core.predictions import to_coco_results
    from segtui.core.safe_files import write_output_text

    settings = schema_values(args, PREDICT)
    out_path = output_file(args.out, "--out")
    with open_workspace(args) as ws:
        project = check_project(ws, resolve_project(ws, args.project).id)
        run = predict_project(
            ws,
            project.id,
            precision=settings["precision"],
            threshold=settings["threshold"],
            limit=settings["limit"],
            progress=out.progress,
        )
        names = {image_id: name for name, image_id in run.image_ids.items()}
        results = [
            {**entry, "file_name": names[entry["image_id"]]}
            for entry in to_coco_results(run.predictions, run.image_ids, run.category_ids)
        ]
        write_output_text(out_path, json.dumps(results))
        summary: PredictSummary = {
            "project_id": project.id,
            "images": len(run.predictions),
            "instances": len(results),
            "precision": run.precision,
            "device": run.device,
            "seconds": round(run.seconds, 3),
            "images_per_second": round(run.images_per_second, 2),
            "out": str(out_path),
        }
        out.result(
            summary,
            f"{len(results)} instances in {len(run.predictions)} images "
            f"({run.device}, {run.precision}, {summary['images_per_second']} img/s) → {out_path}",
        )
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.accuracy import EvaluationResult
    from segtui.core.settings_versions import data_staleness, stale_suffix, with_staleness
    from segtui.core.types import ResultKind

    settings = schema_values(args, EVALUATE)
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        with naming_options(EVALUATE):
            check_job(ws, JobKind.EVALUATE, project.id, settings)
        final = run_job(ws, JobKind.EVALUATE, project.id, settings, out)
        # The job's result is its EvaluationResult, read back from JSON.
        result = cast(EvaluationResult, final.result)
        m = result["metrics"]
        # Settings changed while it ran make it stale at once.
        state = data_staleness(ws, ResultKind.ACCURACY, project.id, result)
        out.result(
            with_staleness({**result, "job_id": final.id, "project_id": project.id}, state),
            f"Project {project.id} on {result['images']} images ({result['device']}, {result['precision']}):\n"
            f"  mask AP {m['mask_ap']:.4f}  AP50 {m['mask_ap50']:.4f}  AP75 {m['mask_ap75']:.4f}\n"
            f"  box  AP {m['box_ap']:.4f}  AP50 {m['box_ap50']:.4f}  AP75 {m['box_ap75']:.4f}"
            + (f"\n  masks: {result['mask_protocol']}" if "mask_protocol" in result else "")
            + stale_suffix(state),
        )
    return EXIT_OK


def export_target(text: str | None) -> Path | None:
    """The --export path, its files checked before the report job (none is a link, a folder
    or a device; a folder on their way is not a file)."""
    from segtui.core.report import export_paths

    if text is None:
        return None
    if not text.strip():
        raise CliError("--export needs a path.", "Give the base name of the files to write.")
    target = Path(text).expanduser()
    for path in export_paths(target).values():
        folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
        if folder is not None and not folder.is_dir():
            raise CliError(f"--export: {folder} is not a folder.", "Choose another place.")
        if path.parent.is_dir():
            output_file(str(path), "--export")
    return target


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.report import (
        ReportSettings,
        export_report,
        markdown_summary,
        mask_ap_drop,
        report_data,
    )
    from segtui.core.settings_versions import stale_line, staleness, with_staleness

    settings = ReportSettings.from_values(schema_values(args, REPORT))
    max_drop = schema_values(args, REPORT_GATE)["max_drop"]
    export = export_target(args.export)
    html = output_file(args.html, "--html") if args.html is not None else None
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        if args.stored:
            from segtui.core.html_report import latest_report

            record = latest_report(ws, project.id)
        else:
            with naming_options(REPORT):
                check_job(ws, JobKind.REPORT, project.id, settings.values())
            final = run_job(ws, JobKind.REPORT, project.id, settings.values(), out)
            record = ws.result(int((final.result or {})["result_id"]))
        data = report_data(record)
        if export is not None:
            for path in export_report(data, export):
                out.note(f"wrote {path}")
        extra: dict[str, object] = {}
        if html is not None:
            from segtui.core.html_report import write_html_report

            written = write_html_report(ws, record.id, html)
            out.note(f"wrote {written.describe()}")
            extra = {"html": str(written.path), "html_bytes": written.size_bytes}
        drop = mask_ap_drop(data["summary"])
        state = staleness(ws, record)
        document = {"result_id": record.id, "summary": data["summary"], "mask_ap_drop": drop}
        text = markdown_summary(data["summary"]).rstrip()
        out.result(with_staleness(document | extra, state), text + stale_line(state))
        if max_drop is not None and drop > max_drop:
            # A verdict, not an error: the report is printed (as the only JSON document).
            sys.stderr.write(
                f"segtui: mask AP drop {drop:.2f} points exceeds --max-drop {max_drop}\n"
            )
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
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page (opens in any browser)",
    )
    p.add_argument(
        "--stored",
        action="store_true",
        help="use the project's newest stored report instead of running a new one "
        "(the report options are not used)",
    )
    p.set_defaults(func=cmd_report)
