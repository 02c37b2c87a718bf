"""NNCF's accuracy control vs segtui's sensitivity analysis + re-optimization (issue #13).

Same setup for both, on the annotated shapes-torchvision sample (the Mask R-CNN with
torchvision's tail) without the automatic scope (its INT8 masks collapse): calibration on --subset % of the images, the metric (mask AP against the
annotations) on --images images.

- NNCF: `quantize_with_accuracy_control`, max drop --max-drop points (absolute), with
  in-graph statistics (see _accuracy_control), on the same calibration and metric images.
- segtui: the Default INT8 child, `analyze_project` on it, then the re-optimization with
  the recommended groups kept in float (`keep_float_plan`).

Printed for each: metric evaluations (calls of the metric, and the images they predicted),
wall time, final mask AP on all 200 images, INT8 share of the Convolution/MatMul layers and
throughput (short benchmarks of both taken in turn, median of 3). Run it alone: it takes the
machine for about 30 minutes.

Measured 2026-12-01 on the project's machine (2 cores, AVX2), defaults (24 images, 25 %,
1.0 point); parent mask AP 0.7893:

| | metric calls | images predicted | wall time | mask AP (200) | INT8 share | throughput |
|---|---|---|---|---|---|---|
| segtui: calibration + analysis + re-optimization | 29 | 696 | 204 s (55 + 113 + 36) | 0.7824 | 96.2 % | 49.6 fps |
| NNCF quantize_with_accuracy_control | 454 | 9769 | 1321 s | 0.7705 | 77.4 % | 36.4 fps |

segtui kept 4 groups in float (16 layers); NNCF reverted 34 times and stopped 1.27 points
below its reference on its 24 images (1.88 on all 200). The segtui side ran beside another
session's test suite (load ~1.5), NNCF's mostly on a quiet machine; the throughputs were
measured afterwards, in turn, on a quiet machine.

    python benchmarks/sensitivity_vs_accuracy_control.py [--images 24] [--subset 25] [--max-drop 1.0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from _common import sample, scratch_workspace

from segtui.core import quantize
from segtui.core.accuracy import evaluate_project
from segtui.core.benchmark import BenchmarkSettings
from segtui.core.datasets import image_path, load_image
from segtui.core.evaluation import category_mapping, load_annotations
from segtui.core.inference import compile_model
from segtui.core.keep_float import keep_float_plan
from segtui.core.models import import_model, load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project, validation_items
from segtui.core.performance import benchmark_project
from segtui.core.runtime_graph import summarize_runtime
from segtui.core.sensitivity import SensitivitySettings, analyze_project
from segtui.core.types import ResultKind
from segtui.core.workspace import ProjectRecord, Workspace

#: Images every metric call predicted, counted by wrapping ReferenceMetric.predict.
PREDICTED = [0]
#: NNCF's calls of the metric.
CALLS = [0]


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
    return {
        "project_id": project.id,
        "wall_s": round(seconds, 1),
        "mask_ap": evaluate_project(ws, project.id)["metrics"]["mask_ap"],
        "int8_share": runtime.compute_int8_share,
        "ignored_layers": model.optimization["ignored_names_count"] if model.optimization else None,
    }


def _accuracy_control(ws: Workspace, parent: ProjectRecord, args: argparse.Namespace) -> Path:
    """NNCF's quantize_with_accuracy_control on the same data as segtui's side; the IR path.

    Called directly (not through segtui's AccuracyAware method): without the automatic scope,
    quantizers land on tensors that are empty on every calibration image, and Python-side
    statistics then stop NNCF ("Statistics were not collected"); in-graph statistics, the
    fallback segtui's Default method takes, let it run.
    """
    import nncf
    import openvino as ov

    record = ws.model(parent.model_id)
    loaded = load_registered(record)
    dataset = ws.dataset(parent.dataset_id)
    images = ws.dataset_images(dataset.id)
    subset = OptimizeSettings(subset_percent=args.subset).subset_count(len(images))
    step = len(images) / subset
    paths = [image_path(dataset, images[int(i * step)]) for i in range(subset)]
    assert dataset.annotations is not None
    metric = quantize.ReferenceMetric(
        loaded.adapter,
        validation_items(ws, parent.id, args.images),
        load_annotations(dataset.annotations),
        category_mapping(record.class_names, dataset.analysis),
    )
    quantized = nncf.quantize_with_accuracy_control(
        loaded.model,
        nncf.Dataset(paths, lambda path: loaded.adapter.preprocess(load_image(path))[0]),
        nncf.Dataset(metric.items),
        validation_fn=metric,
        max_drop=args.max_drop / 100,
        drop_type=nncf.DropType.ABSOLUTE,
        preset=nncf.QuantizationPreset.PERFORMANCE,  # the Mask R-CNN formats' preset
        subset_size=subset,
        advanced_quantization_parameters=nncf.AdvancedQuantizationParameters(
            inplace_statistics=True
        ),
    )
    CALLS[0] = metric.calls
    out = ws.root / "aa-work" / "model.xml"
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, out, compress_to_fp16=True)
    return out


def _nncf(ws: Workspace, parent: ProjectRecord, args: argparse.Namespace) -> dict[str, Any]:
    PREDICTED[0] = 0
    start = time.perf_counter()
    xml = _accuracy_control(ws, parent, args)
    seconds = time.perf_counter() - start
    parent_model = ws.model(parent.model_id)
    model = import_model(
        ws,
        xml,
        name="NNCF accuracy control",
        class_names=parent_model.class_names,
        optimized_from=parent_model.id,
    )
    child = ws.add_project(
        name="NNCF accuracy control",
        model_id=model.id,
        dataset_id=parent.dataset_id,
        device=parent.device,
        parent_id=parent.id,
    )
    return {
        "metric_calls": CALLS[0],
        "images_predicted": PREDICTED[0],
        **_figures(ws, child, seconds),
    }


def _segtui(ws: Workspace, parent: ProjectRecord, args: argparse.Namespace) -> dict[str, Any]:
    PREDICTED[0] = 0
    start = time.perf_counter()
    # As measured for #13: nothing dropped after calibration either (see test_sensitivity_sample).
    settings = OptimizeSettings(
        auto_ignore=False, subset_percent=args.subset, drop_standalone_quantizers=False
    )
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


def _throughputs(ws: Workspace, project_ids: list[int], rounds: int = 3) -> dict[int, float]:
    """Median throughput of each project, their short benchmarks taken in turn (same load)."""
    runs: dict[int, list[float]] = {pid: [] for pid in project_ids}
    for _ in range(rounds):
        for pid in project_ids:
            run = benchmark_project(ws, pid, BenchmarkSettings(duration_s=10.0), per_layer=False)
            runs[pid].append(run["throughput_fps"])
    return {pid: statistics.median(values) for pid, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24, help="metric images (both sides)")
    parser.add_argument("--subset", type=float, default=25.0, help="calibration subset, %%")
    parser.add_argument("--max-drop", type=float, default=1.0, help="NNCF's max drop, points")
    parser.add_argument("--nncf-only", action="store_true", help="skip segtui's side")
    args = parser.parse_args()
    _count_predictions()
    ws = scratch_workspace()
    # torchvision's tail: the OMZ-structured sample keeps its masks without any scope.
    parent = sample(ws, "shapes-torchvision").annotated
    parent_ap = evaluate_project(ws, parent.id)["metrics"]["mask_ap"]
    ours = _segtui(ws, parent, args) if not args.nncf_only else {}
    print("segtui:", json.dumps(ours), flush=True)
    theirs = _nncf(ws, parent, args)
    print("NNCF accuracy control:", json.dumps(theirs), flush=True)
    print(f"parent mask AP {parent_ap:.4f}")
    if not ours:
        return
    fps = _throughputs(ws, [ours["project_id"], theirs["project_id"]])
    ours["throughput_fps"], theirs["throughput_fps"] = (
        fps[ours["project_id"]],
        fps[theirs["project_id"]],
    )
    for key in ("metric_calls", "images_predicted", "wall_s"):
        mine, nncf = ours[key], theirs[key]
        if mine and nncf:
            print(f"{key}: segtui {mine} vs NNCF {nncf} ({mine / nncf:.2f}x)")
    for key in ("mask_ap", "int8_share", "throughput_fps"):
        print(f"{key}: segtui {ours[key]:.4f} vs NNCF {theirs[key]:.4f}")


if __name__ == "__main__":
    main()
