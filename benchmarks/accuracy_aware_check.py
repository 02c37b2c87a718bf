"""AccuracyAware on the annotated sample: the drop NNCF reports vs an independent re-evaluation.

Quantizes the annotated sample project with `--method accuracy-aware`
(max drop in mask AP points, absolute), then re-evaluates the saved INT8
model and its parent with segtui's own COCO evaluation on all 200 images
(f32 inference for the parent; the INT8 model runs in INT8), and prints both
drops. The re-evaluated drop should be within the max drop (up to the
difference between the validation subset and the whole set).

    python benchmarks/accuracy_aware_check.py [--max-drop 0.5] [--validation-images 50] [--no-auto-ignore]
"""

from __future__ import annotations

import argparse
import time

from _common import sample, scratch_workspace

from segtui.core.accuracy import evaluate_project
from segtui.core.optimize import OptimizeSettings, optimize_project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-drop", type=float, default=0.5)
    parser.add_argument("--validation-images", type=int, default=50)
    parser.add_argument("--subset", type=float, default=50.0)
    parser.add_argument("--no-auto-ignore", action="store_true")
    args = parser.parse_args()
    ws = scratch_workspace()
    parent = sample(ws).annotated
    settings = OptimizeSettings(
        method="accuracy-aware",
        max_drop=args.max_drop,
        validation_images=args.validation_images,
        subset_percent=args.subset,
        auto_ignore=not args.no_auto_ignore,
    )
    start = time.perf_counter()
    child = optimize_project(
        ws,
        parent.id,
        settings,
        ws.root / "aa-work",
        progress=lambda f, s: print(f"{f * 100:5.1f}% {s}", flush=True),
    )
    took = time.perf_counter() - start
    opt = ws.model(child.model_id).optimization or {}
    parent_m = evaluate_project(ws, parent.id)["metrics"]
    child_m = evaluate_project(ws, child.id)["metrics"]
    drop = (parent_m["mask_ap"] - child_m["mask_ap"]) * 100
    print(
        f"AccuracyAware took {took:.0f} s, {opt.get('validation_calls')} validation calls, "
        f"{opt.get('ignored_names_count')} layers kept in floating point"
    )
    print(
        f"NNCF on {args.validation_images} validation images: reference mask AP {opt.get('reference_mask_ap')}, "
        f"final {opt.get('final_mask_ap')}, reported drop {opt.get('reported_drop_points')} points"
    )
    print(
        f"re-evaluated on {parent_m['images']} images: parent mask AP {parent_m['mask_ap']:.4f}, "
        f"INT8 mask AP {child_m['mask_ap']:.4f}, drop {drop:.2f} points (max drop {args.max_drop})"
    )


if __name__ == "__main__":
    main()
