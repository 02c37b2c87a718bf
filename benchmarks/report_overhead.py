"""Wall time of an accuracy report against running both models on the same images directly.

The report runs the optimized and the parent model on every image (f32),
then matches predictions and computes the per-image/class AP; this script
times `create_report` and, alternately, a bare loop that only runs the two
models (same inference code, same precision), and prints the ratio, which
should be at most 1.15.

    python benchmarks/report_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

from _common import default_int8_child, median_ratio, sample, scratch_workspace

from segtui.core.datasets import image_path
from segtui.core.inference import run_inference
from segtui.core.models import load_registered
from segtui.core.report import ReportSettings, create_report
from segtui.core.types import ReportType


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ws = scratch_workspace()
    parent = sample(ws).images
    child = default_int8_child(ws, parent.id)
    dataset = ws.dataset(child.dataset_id)
    pairs = [(im.path, image_path(dataset, im)) for im in ws.dataset_images(dataset.id)]
    reports, direct = [], []
    for round_ in range(args.rounds):
        start = time.perf_counter()
        create_report(ws, child.id, ReportSettings(type=ReportType.PARENT))
        reports.append(time.perf_counter() - start)
        start = time.perf_counter()
        for project in (child, parent):
            loaded = load_registered(ws.model(project.model_id))
            run_inference(
                loaded.model, loaded.adapter, pairs, precision="f32", score_threshold=0.05
            )
        direct.append(time.perf_counter() - start)
        print(
            f"round {round_ + 1}: report {reports[-1]:.2f} s, both models directly {direct[-1]:.2f} s "
            f"({len(pairs)} images, f32)",
            flush=True,
        )
    med, lo, hi = median_ratio(reports, direct)
    print(f"report / direct: median ×{med:.3f} (min ×{lo:.3f}, max ×{hi:.3f})")


if __name__ == "__main__":
    main()
