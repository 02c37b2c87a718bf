"""Benchmark, INT8 optimization and compare on a security-0002-class Mask R-CNN (the "Scale" check).

Takes one or more IRs written by tools/make_scale_model.py (an untrained Mask R-CNN
ResNet50-FPN at 1x3x768x1024 in the OMZ format, ~423 GFLOPs like
instance-segmentation-security-0002; `--structure torchvision` and `--structure omz`,
the latter with security-0002's ExperimentalDetectron tail) and runs segtui's own
path on each in turn, each in its own workspace,
unchanged: import the model and a folder of images, create a project,
optimize it (Default method, Performance preset, a small calibration subset),
benchmark parent and INT8 child, and compare them.

Parent and child are benchmarked alternately, several rounds: the parent at
true FP32 (INFERENCE_PRECISION_HINT=f32), the parent at the CPU's default
precision (bf16 where the CPU has BF16, else f32 again), and the INT8 child.
Prints the model's GFLOPs (segtui's analysis), each throughput and latency,
the median INT8 / parent ratios with their min and max, the share of the INT8
runtime graph's Convolution/MatMul layers that run in I8/U8, and the
calibration time, and the INT8 and parent per-layer profiles split into quantized
compute, float compute, geometry kept in float, standalone quantizers, layout
conversions and the rest. The weights are random, so the ratios are rough: the
number of detections, and so the heads' and NMS's work, differs from a
trained model's.

    python tools/make_scale_model.py --out /tmp/scale/maskrcnn_r50_768x1024.xml
    python tools/make_scale_model.py --structure omz --out /tmp/scale/omz_r50_768x1024.xml
    python benchmarks/scale_model.py /tmp/scale/maskrcnn_r50_768x1024.xml \
        /tmp/scale/omz_r50_768x1024.xml \
        [--images sample_projects/shapes/images] [--calibration 25] [--time 15] [--rounds 3]

Uses $SEGTUI_BENCH_WS/<model file stem> as each model's workspace if set (an INT8
child already there is reused), else a temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _common import median_ratio, scratch_workspace
from omz_int8_split import split_table

from segtui.core.benchmark import BenchmarkSettings
from segtui.core.datasets import import_image_folder
from segtui.core.models import import_model, ov_core
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.performance import benchmark_project, compare_projects
from segtui.core.projects import create_project
from segtui.core.sample import sample_dir
from segtui.core.workspace import Workspace

ROUGH = "rough (untrained weights)"


def cpu_has_bf16() -> bool:
    capabilities = ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in [str(c).upper() for c in capabilities]


def subset_percent(wanted: int, image_count: int) -> float:
    """The subset percentage that OptimizeSettings turns into exactly `wanted` images."""
    return 100.0 * max(1, min(wanted, image_count)) / image_count


def line(key: str, data: dict[str, Any]) -> str:
    runtime = data.get("runtime", {})
    return (
        f"{key:8s} {data['throughput_fps']:7.3f} FPS  latency median {data['latency_median_ms']:8.0f} ms "
        f"(avg {data['latency_avg_ms']:.0f}, min {data['latency_min_ms']:.0f}, max {data['latency_max_ms']:.0f})  "
        f"{data['iterations']} inferences in {data['wall_s']:.1f} s  ({data['precision']}, "
        f"{data['streams']} streams, {data['requests']} requests; compute layers in I8/U8: "
        f"{runtime.get('compute_int8', 0)}/{runtime.get('compute_layers', 0)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "models", type=Path, nargs="+", help="the .xml files from tools/make_scale_model.py"
    )
    parser.add_argument("--images", type=Path, default=sample_dir() / "images")
    parser.add_argument("--calibration", type=int, default=25, help="calibration images")
    parser.add_argument("--time", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hint", default="THROUGHPUT")
    parser.add_argument(
        "--no-per-layer",
        action="store_true",
        help="skip the per-layer profile after the last round (it gives compare its layer deltas)",
    )
    args = parser.parse_args()
    import nncf

    nncf.set_log_level(logging.WARNING)  # its per-node INFO lines would bury the figures
    for path in args.models:
        print(f"\n===== {path.name} =====", flush=True)
        keep = os.environ.get("SEGTUI_BENCH_WS")
        run_one(path, args, scratch_workspace(f"{keep}/{path.stem}" if keep else None))


def run_one(model_path: Path, args: argparse.Namespace, ws: Workspace) -> None:
    t_total = time.perf_counter()
    print(
        f"workspace {ws.root}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )

    start = time.perf_counter()
    model = import_model(ws, model_path)
    # A reused workspace ($SEGTUI_BENCH_WS) keeps its dataset, project and INT8 child.
    images_root = args.images.resolve()
    dataset = next(
        (d for d in ws.datasets() if d.kind == "images" and d.root == images_root), None
    ) or import_image_folder(ws, images_root)
    parent = create_project(ws, model_id=model.id, dataset_id=dataset.id)
    analysis = model.analysis
    image_count = int(dataset.analysis["image_count"])
    print(
        f"imported in {time.perf_counter() - start:.1f} s: {model.name} ({analysis['format']}), "
        f"input {analysis['input_size'][0]}x{analysis['input_size'][1]}, "
        f"{analysis['gflops']:.1f} GFLOPs{' (flagged partial: the heads have dynamic shapes)' if analysis['gflops_partial'] else ''}, "
        f"{analysis['params_m']:.1f} M parameters, {analysis['op_count']} ops; "
        f"dataset {dataset.name}: {image_count} images",
        flush=True,
    )

    bf16 = cpu_has_bf16()
    capabilities = ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    print(f"CPU optimization capabilities: {', '.join(map(str, capabilities))}", flush=True)

    children = ws.children(parent.id)
    if children:
        child = children[0]
        optimize_wall = None
        print(f"reusing INT8 child project {child.id}", flush=True)
    else:
        settings = OptimizeSettings(
            method="default",
            preset="performance",
            subset_percent=subset_percent(args.calibration, image_count),
        )
        print(
            f"optimizing: Default method, Performance preset, "
            f"{settings.subset_count(image_count)} of {image_count} calibration images ...",
            flush=True,
        )
        start = time.perf_counter()
        child = optimize_project(ws, parent.id, settings, ws.root / "bench-work")
        optimize_wall = time.perf_counter() - start
    child_model = ws.model(child.model_id)
    optimization = child_model.optimization or {}
    ignored = optimization.get("ignored_scope") or {}
    print(
        f"INT8 child project {child.id}: {optimization.get('subset_size')} calibration images, "
        f"calibration (nncf.quantize) {optimization.get('calibration_seconds')} s"
        + (f", optimize_project wall {optimize_wall:.1f} s" if optimize_wall is not None else "")
        + f"; {child_model.analysis.get('fake_quantize_count')} FakeQuantize, "
        f"{ignored.get('count', 0)} nodes kept in floating point (automatic ignored scope)",
        flush=True,
    )

    runs: dict[str, list[dict[str, Any]]] = {"f32": [], "default": [], "int8": []}
    start = time.perf_counter()
    for round_ in range(args.rounds):
        last = round_ == args.rounds - 1
        for key, project_id, precision in (
            ("f32", parent.id, "f32"),
            ("default", parent.id, "default"),
            ("int8", child.id, "default"),
        ):
            bench = BenchmarkSettings(hint=args.hint, duration_s=args.time, precision=precision)
            per_layer = last and not args.no_per_layer
            data = benchmark_project(ws, project_id, bench, per_layer=per_layer)
            # Stored like a benchmark job's result, so compare sees it.
            ws.add_result(project_id=project_id, kind="benchmark", data=data)
            runs[key].append(data)
            print(f"round {round_ + 1} {line(key, data)}", flush=True)
    bench_wall = time.perf_counter() - start

    print()
    fps = {key: [float(d["throughput_fps"]) for d in runs[key]] for key in runs}
    lat = {key: [float(d["latency_median_ms"]) for d in runs[key]] for key in runs}
    precisions = {key: str(runs[key][-1]["precision"]) for key in runs}
    print(f"GFLOPs (segtui analysis): {analysis['gflops']:.1f}")
    for key in runs:
        print(
            f"{key:8s} median {statistics.median(fps[key]):7.3f} FPS, "
            f"median latency {statistics.median(lat[key]):8.0f} ms at {precisions[key]} "
            f"(FPS per round: {', '.join(f'{v:.3f}' for v in fps[key])})"
        )
    for base in ("f32", "default"):
        med, lo, hi = median_ratio(fps["int8"], fps[base])
        lmed, llo, lhi = median_ratio(lat[base], lat["int8"])
        print(
            f"INT8 / parent@{precisions[base]} ({base}), {ROUGH}: throughput ×{med:.2f} "
            f"(min ×{lo:.2f}, max ×{hi:.2f}); latency ×{lmed:.2f} faster (min ×{llo:.2f}, max ×{lhi:.2f})"
        )
    if not bf16:
        print(
            "INT8 / parent@bf16: cannot be measured here (the CPU has no BF16 in "
            "OPTIMIZATION_CAPABILITIES; the default precision ran at f32)"
        )
    elif precisions["default"] != "bf16":
        print(
            f"INT8 / parent@bf16: the CPU has BF16 but the default run was {precisions['default']}"
        )
    int8_runtime = runs["int8"][-1].get("runtime", {})
    print(
        f"INT8 runtime graph: {int8_runtime.get('compute_int8')}/{int8_runtime.get('compute_layers')} "
        f"Convolution/MatMul layers in I8/U8 ({100 * float(int8_runtime.get('compute_int8_share', 0)):.1f} %)"
    )
    floats = int8_runtime.get("compute_float", [])
    if floats:
        print(
            f"  compute layers left in floating point ({len(floats)}): {', '.join(floats[:8])}"
            + (" ..." if len(floats) > 8 else "")
        )
    print(
        f"calibration: {optimization.get('subset_size')} images, "
        f"{optimization.get('calibration_seconds')} s in nncf.quantize"
        + (f", {optimize_wall:.1f} s optimize_project wall" if optimize_wall is not None else "")
    )

    print()
    compared = compare_projects(ws, child.id, parent.id)
    print(f"compare (A = INT8 child {child.id}, B = parent {parent.id}; latest run per precision):")
    for precision, ratio in compared["ratios_vs_b"].items():
        print(
            f"  A vs B@{precision}, {ROUGH}: throughput ×{ratio['throughput_ratio']:.2f}, "
            f"latency ×{ratio['latency_ratio']:.2f} faster"
        )
    deltas = compared["layer_deltas"]
    if deltas:
        print("  per layer type, A - B (ms per inference, profile of the last round):")
        for row in deltas[:6] + [r for r in deltas[-3:] if r not in deltas[:6]]:
            print(
                f"    {row['layer_type']:18s} B {row['b_ms']:9.1f}  A {row['a_ms']:9.1f}  Δ {row['delta_ms']:+9.1f}"
            )
    profiles = {
        f"{key} ({runs[key][-1]['precision']})": dict(runs[key][-1].get("runtime", {}))
        for key in runs
    }
    if any("time_split_ms" in p for p in profiles.values()):
        print("\nwhere the time goes (per-layer profile of the last round, ms per image):")
        print("\n".join(split_table(profiles)))
    print()
    print(
        f"wall: benchmarks {bench_wall:.0f} s ({args.rounds} rounds × 3, {args.time:.0f} s each), "
        f"total {time.perf_counter() - t_total:.0f} s; load average over the last 5 min "
        f"{os.getloadavg()[1]:.2f} on {os.cpu_count()} CPUs"
    )
    ws.close()


if __name__ == "__main__":
    main()
