"""`segtui optimize`: INT8 quantization with NNCF, as a background job."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, cast

from segtui.cli.common import open_workspace, resolve_project, run_job
from segtui.cli.options import add_schema_options, naming_options, schema_values
from segtui.cli.output import EXIT_OK, Output
from segtui.core.preflight import check_job
from segtui.core.settings import OPTIMIZE
from segtui.core.types import JobKind

if TYPE_CHECKING:
    from segtui.core.optimize import OptimizationRecord, OptimizeJobResult


def cmd_optimize(args: argparse.Namespace, out: Output) -> int:
    from segtui.core.optimize_settings import OptimizeSettings

    settings = OptimizeSettings.from_values(schema_values(args, OPTIMIZE))
    with open_workspace(args) as ws:
        project = resolve_project(ws, args.project)
        dataset = ws.dataset(project.dataset_id)
        with naming_options(OPTIMIZE):
            check_job(ws, JobKind.OPTIMIZE, project.id, settings.to_json())
        out.note(
            f"Optimizing project {project.id} ({settings.method}, {settings.preset}, "
            f"{settings.subset_count(dataset.image_count)} calibration images)"
        )
        final = run_job(ws, JobKind.OPTIMIZE, project.id, settings.to_json(), out)
        result = cast("OptimizeJobResult", final.result)
        child = result["child_project_id"]
        opt: OptimizationRecord | dict[str, object] = result["optimization"] or {}
        if opt.get("max_drop_met") is False:
            out.warn(
                f"AccuracyAware could not keep the drop within {settings.max_drop} "
                f"({opt.get('reported_drop_points')} points on the validation images); "
                "the best model was kept."
            )
        out.result(
            {**result, "job_id": final.id},
            f"Child project {child}: INT8 model {result['model_id']} "
            f"(calibration {opt.get('calibration_seconds')} s, "
            f"{opt.get('ignored_names_count')} layers kept in floating point)",
        )
    return EXIT_OK


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("optimize", parents=[common], help="INT8 quantization with NNCF (a job)")
    p.add_argument("project", help="project id or name")
    add_schema_options(p, OPTIMIZE)
    p.set_defaults(func=cmd_optimize)
