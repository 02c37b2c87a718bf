"""NNCF's accuracy control vs segtui's sensitivity analysis + re-optimization (issue #13).

Same setup for both, on the annotated sample without the automatic scope (its INT8 masks
collapse): calibration on --subset % of the images, the metric (mask AP against the
annotations) on --images images.

- NNCF: `quantize_with_accuracy_control`, max drop --max-drop points (absolute).
- segtui: the Default INT8 child, `analyze_project` on it, then the re-optimization with
  the recommended groups kept in float (`keep_float_plan`).

Printed for each: metric evaluations (calls of the metric, and the images they predicted),
wall time, final mask AP on all 200 images, INT8 share of the Convolution/MatMul layers and
throughput (a short benchmark). Run it alone: it takes the machine for 15-30 minutes.

    python benchmarks/sensitivity_vs_accuracy_control.py [--images 24] [--subset 25] [--max-drop 1.0]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from typing import Any

from _common import sample, scratch_workspace

from segtui.core import quantize
from segtui.core.accuracy import evaluate_project
from segtui.core.benchmark import BenchmarkSettings
from segtui.core.inference import compile_model
from segtui.core.keep_float import keep_float_plan
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.performance import benchmark_project
from segtui.core.runtime_graph import summarize_runtime
from segtui.core.sensitivity import SensitivitySettings, analyze_project
from segtui.core.types import Method, ResultKind
from segtui.core.workspace import ProjectRecord, Workspace

#: Images every metric call predicted, counted by wrapping ReferenceMetric.predict.
PREDICTED = [0]


def _count_predictions() -> None:
    original = quantize.ReferenceMetric.predict

    def counting(self: quantize.ReferenceMetric, compiled: Any, items: Iterable[Any]) -> Any:
        items = list(items)
        PREDICTED[0] += len(items)
        return original(self, compiled, items)

    quantize.ReferenceMetric.predict = counting  # type: ignore[method-assign]


def _figures(ws: Workspace, project: ProjectRecord, seconds: float) -> dict[str, Any]:
    model = ws.model(project.model_id)
    runtime = summarize_runtime(compile_model(load_registered(model).model, "CPU", "default"))
    run = benchmark_project(ws, project.id, BenchmarkSettings(duration_s=15.0), per_layer=False)
    return {
        "wall_s": round(seconds, 1),
        "mask_ap": evaluate_project(ws, project.id)["metrics"]["mask_ap"],
        "int8_share": runtime.compute_int8_share,
        "throughput_fps": run["throughput_fps"],
        "ignored_layers": model.optimization["ignored_names_count"] if model.optimization else None,
    }


def _nncf(ws: Workspace, parent: ProjectRecord, args: argparse.Namespace) -> dict[str, Any]:
    PREDICTED[0] = 0
    settings = OptimizeSettings(
        method=Method.ACCURACY_AWARE,
        auto_ignore=False,
        subset_percent=args.subset,
        max_drop=args.max_drop,
        validation_images=args.images,
    )
    start = time.perf_counter()
    child = optimize_project(ws, parent.id, settings, ws.root / "aa-work")
    seconds = time.perf_counter() - start
    opt = ws.model(child.model_id).optimization
    return {
        "metric_calls": opt.get("validation_calls") if opt else None,
        "images_predicted": PREDICTED[0],
        **_figures(ws, child, seconds),
    }


def _segtui(ws: Workspace, parent: ProjectRecord, args: argparse.Namespace) -> dict[str, Any]:
    PREDICTED[0] = 0
    start = time.perf_counter()
    settings = OptimizeSettings(auto_ignore=False, subset_percent=args.subset)
    broken = optimize_project(ws, parent.id, settings, ws.root / "seg-work-a")
    calibrated = time.perf_counter()
    analysis = analyze_project(ws, broken.id, SensitivitySettings(images=args.images))
    analysed = time.perf_counter()
    result_id = ws.add_result(project_id=broken.id, kind=ResultKind.SENSITIVITY, data=analysis).id
    plan = keep_float_plan(ws, result_id)
    fixed = optimize_project(
        ws, parent.id, plan.settings, ws.root / "seg-work-b", keep_float_from=plan.link
    )
    seconds = time.perf_counter() - start
    return {
        "metric_calls": analysis["evaluations"],
        "images_predicted": PREDICTED[0],
        "groups_kept": analysis["chosen"],
        "stages_s": {
            "first_calibration": round(calibrated - start, 1),
            "analysis": round(analysed - calibrated, 1),
            "re_optimization": round(seconds - (analysed - start), 1),
        },
        **_figures(ws, fixed, seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24, help="metric images (both sides)")
    parser.add_argument("--subset", type=float, default=25.0, help="calibration subset, %%")
    parser.add_argument("--max-drop", type=float, default=1.0, help="NNCF's max drop, points")
    args = parser.parse_args()
    _count_predictions()
    ws = scratch_workspace()
    parent = sample(ws).annotated
    parent_ap = evaluate_project(ws, parent.id)["metrics"]["mask_ap"]
    ours = _segtui(ws, parent, args)
    print("segtui:", json.dumps(ours), flush=True)
    theirs = _nncf(ws, parent, args)
    print("NNCF accuracy control:", json.dumps(theirs), flush=True)
    print(f"parent mask AP {parent_ap:.4f}")
    for key in ("metric_calls", "images_predicted", "wall_s"):
        mine, nncf = ours[key], theirs[key]
        if mine and nncf:
            print(f"{key}: segtui {mine} vs NNCF {nncf} ({mine / nncf:.2f}x)")
    for key in ("mask_ap", "int8_share", "throughput_fps"):
        print(f"{key}: segtui {ours[key]:.4f} vs NNCF {theirs[key]:.4f}")


if __name__ == "__main__":
    main()
