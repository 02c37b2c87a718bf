"""INT8 vs parent throughput on the sample project, measured side by side in one run.

Runs, alternately and several times: the parent at true FP32
(INFERENCE_PRECISION_HINT=f32), the parent at the CPU's default precision
(bf16 where the CPU has it, else f32 again), and the INT8 child. Prints each
figure with the precision it ran at, and the median of the pairwise ratios.

    python benchmarks/int8_speedup.py [--time 10] [--rounds 3]

Optimizes the annotated sample project first if it has no INT8 child yet.
"""

from __future__ import annotations

import argparse
import statistics

from _common import default_int8_child, median_ratio, sample, scratch_workspace

from segtui.core.benchmark import BenchmarkSettings
from segtui.core.performance import benchmark_project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hint", default="THROUGHPUT")
    args = parser.parse_args()
    ws = scratch_workspace()
    projects = sample(ws)
    parent = projects.annotated
    child = default_int8_child(ws, parent.id)
    runs: dict[str, list[float]] = {"f32": [], "default": [], "int8": []}
    precisions: dict[str, str] = {}
    for round_ in range(args.rounds):
        for key, project_id, precision in (
            ("f32", parent.id, "f32"),
            ("default", parent.id, "default"),
            ("int8", child.id, "default"),
        ):
            settings = BenchmarkSettings(hint=args.hint, duration_s=args.time, precision=precision)
            data = benchmark_project(ws, project_id, settings, per_layer=False)
            runs[key].append(float(data["throughput_fps"]))
            precisions[key] = str(data["precision"])
            print(
                f"round {round_ + 1} {key:8s} {data['throughput_fps']:8.2f} FPS  ({data['precision']}, "
                f"{data['streams']} streams, {data['requests']} requests)",
                flush=True,
            )
    print()
    for key in runs:
        print(f"{key:8s} median {statistics.median(runs[key]):8.2f} FPS at {precisions[key]}")
    for base in ("f32", "default"):
        med, lo, hi = median_ratio(runs["int8"], runs[base])
        print(
            f"INT8 / parent@{precisions[base]} ({base}): ×{med:.2f} (min ×{lo:.2f}, max ×{hi:.2f})"
        )


if __name__ == "__main__":
    main()
