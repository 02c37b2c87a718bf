"""Why not 2×: INT8 against the parent on the OMZ-structured sample, with where the time goes.

Runs alternately, several rounds, in one process: the parent at true FP32
(INFERENCE_PRECISION_HINT=f32), the parent at the CPU's default precision (bf16
where the CPU has it), the parent with only the ROI pooling rewrite
(core.roi_rewrite: OMZ's ExperimentalDetectronROIFeatureExtractor pooled by one
ROIAlign over the padded pyramid, nothing quantized) at the default precision,
and the INT8 child segtui's default optimization makes (it carries the same
rewrite). Prints each throughput with its precision, the median pairwise ratios,
then a per-layer profile of each (the last round) split into quantized compute,
float compute, geometry kept in float, standalone quantizers, layout conversions
and the rest, side by side, and the mask AP of parent and child (segtui
evaluate, pycocotools, f32).

    python benchmarks/omz_int8_split.py [--time 8] [--rounds 3] [--no-accuracy]

Uses $SEGTUI_BENCH_WS as the workspace if set (an INT8 child there is reused).
"""

from __future__ import annotations

import argparse
import logging
import statistics
from typing import Any

from _common import default_int8_child, median_ratio, sample, scratch_workspace

from segtui.core.accuracy import evaluate_project
from segtui.core.benchmark import BenchmarkSettings
from segtui.core.machine import machine_info
from segtui.core.models import import_model, load_registered, ov_core
from segtui.core.performance import benchmark_project
from segtui.core.projects import create_project
from segtui.core.roi_rewrite import rewrite_roi_extractors
from segtui.core.runtime_graph import TimeCategory
from segtui.core.types import Precision
from segtui.core.workspace import ProjectRecord, Workspace

REWRITE_NAME = "shapes Mask R-CNN (ROI pooling rewrite only)"


def rewrite_only_project(ws: Workspace, parent: ProjectRecord) -> ProjectRecord:
    """A project on the parent's dataset whose model is the parent with only the rewrite."""
    for project in ws.projects():
        if ws.model(project.model_id).name == REWRITE_NAME:
            return project
    import openvino as ov

    model = load_registered(ws.model(parent.model_id)).model.clone()
    done = rewrite_roi_extractors(model)
    print(f"ROI pooling rewrite: {[(r.name, r.rois, r.skipped) for r in done]}", flush=True)
    folder = ws.root / "rewrite-only"
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, folder / "model.xml", compress_to_fp16=True)
    record = import_model(ws, folder / "model.xml", name=REWRITE_NAME)
    return create_project(ws, model_id=record.id, dataset_id=parent.dataset_id)


def split_table(profiles: dict[str, dict[str, Any]]) -> list[str]:
    """ms and share per time category, one column pair per run."""
    keys = list(profiles)
    lines = ["category".ljust(24) + "".join(f"{k:>22s}" for k in keys)]
    for cat in [*TimeCategory, "total"]:
        cells = []
        for key in keys:
            runtime = profiles[key]
            if cat == "total":
                cells.append(f"{runtime.get('total_ms', 0.0):9.2f} ms        ")
                continue
            ms = runtime.get("time_split_ms", {}).get(str(cat), 0.0)
            share = runtime.get("time_split_share", {}).get(str(cat), 0.0)
            cells.append(f"{ms:9.2f} ms {100 * share:5.1f} %  ")
        lines.append(f"{cat!s:24s}" + "".join(f"{c:>22s}" for c in cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hint", default="THROUGHPUT")
    parser.add_argument("--no-accuracy", action="store_true")
    args = parser.parse_args()
    import nncf

    nncf.set_log_level(logging.WARNING)
    info = machine_info("CPU")
    print(
        f"CPU: {info.name}; {info.features_text}; default precision "
        f"{info.default_precision}; OpenVINO capabilities {', '.join(info.capabilities)}"
    )
    ws = scratch_workspace()
    parent = sample(ws).annotated
    child = default_int8_child(ws, parent.id)
    rewrite = rewrite_only_project(ws, parent)
    record = ws.model(child.model_id).optimization or {}
    print(
        f"INT8 child {child.id}: ROI pooling {record.get('roi_rewrites')}; standalone "
        f"quantizers {(record.get('standalone_quantizers') or {}).get('dropped')}",
        flush=True,
    )
    plan = (
        ("parent f32", parent.id, "f32"),
        ("parent default", parent.id, "default"),
        ("rewrite default", rewrite.id, "default"),
        ("int8 default", child.id, "default"),
    )
    fps: dict[str, list[float]] = {key: [] for key, _, _ in plan}
    precision: dict[str, str] = {}
    profiles: dict[str, dict[str, Any]] = {}
    for round_ in range(args.rounds):
        last = round_ == args.rounds - 1
        for key, project_id, wanted in plan:
            settings = BenchmarkSettings(hint=args.hint, duration_s=args.time, precision=wanted)
            data = benchmark_project(ws, project_id, settings, per_layer=last)
            fps[key].append(float(data["throughput_fps"]))
            precision[key] = str(data["precision"])
            if last:
                profiles[f"{key} ({data['precision']})"] = dict(data.get("runtime", {}))
            print(
                f"round {round_ + 1} {key:16s} {data['throughput_fps']:8.2f} FPS "
                f"({data['precision']}, {data['streams']} streams)",
                flush=True,
            )
    print()
    for key in fps:
        print(f"{key:16s} median {statistics.median(fps[key]):8.2f} FPS at {precision[key]}")
    for a, b in (
        ("int8 default", "parent f32"),
        ("int8 default", "parent default"),
        ("int8 default", "rewrite default"),
        ("rewrite default", "parent default"),
    ):
        med, lo, hi = median_ratio(fps[a], fps[b])
        print(
            f"{a} ({precision[a]}) / {b} ({precision[b]}): ×{med:.2f} "
            f"(min ×{lo:.2f}, max ×{hi:.2f})"
        )
    print("\nwhere the time goes (per-layer profile, LATENCY, one request, ms per image):")
    print("\n".join(split_table(profiles)))
    int8_profile = profiles[next(k for k in profiles if k.startswith("int8"))]
    outside = 1.0 - int8_profile.get("time_split_share", {}).get(
        str(TimeCategory.QUANTIZED_COMPUTE), 0.0
    )
    print(f"INT8 model: {100 * outside:.1f} % of its time outside quantized compute")
    if not args.no_accuracy:
        aps = {}
        for key, project_id in (("parent", parent.id), ("int8", child.id)):
            result = evaluate_project(ws, project_id, precision=Precision.F32)
            aps[key] = float(result["metrics"]["mask_ap"])
            print(
                f"{key}: mask AP {aps[key]:.4f}, box AP "
                f"{float(result['metrics']['box_ap']):.4f} (f32, 200 images)"
            )
        print(f"mask AP drop: {100 * (aps['parent'] - aps['int8']):+.2f} points")
    print(f"\nOpenVINO {ov_core().get_versions('CPU')['CPU'].build_number}")
    ws.close()


if __name__ == "__main__":
    main()
