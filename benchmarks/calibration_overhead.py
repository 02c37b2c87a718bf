"""Calibration through segtui vs a bare nncf.quantize call, and peak memory against subset size.

1. Time: segtui's optimize_project (ignored-scope search, streamed calibration
   data, progress, saving and registering) against a bare nncf.quantize on the
   same images, preset and ignored scope, run alternately; the ratio should be
   at most 1.10.
2. Memory: peak RSS of a calibration on 300 images vs 30 images, each in a
   fresh process (streaming means the images are never all held at once);
   the ratio should be at most 1.3.

    python benchmarks/calibration_overhead.py [--rounds 2] [--images 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from segtui.core.datasets import load_image
from segtui.core.ignored_scope import propose_ignored_scope
from segtui.core.sample import sample_dir


def bare(images: list[Path]) -> float:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    from segtui.core.ignored_scope import has_dynamic_tensors
    from segtui.core.models import load_model

    loaded = load_model(sample_dir() / "model" / "shapes_maskrcnn.xml")
    scope = propose_ignored_scope(loaded.model)
    dataset = nncf.Dataset(images, lambda p: loaded.adapter.preprocess(load_image(p))[0])
    start = time.perf_counter()
    nncf.quantize(
        loaded.model,
        dataset,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(images),
        ignored_scope=nncf.IgnoredScope(names=scope.names, validate=False),
        advanced_parameters=AdvancedQuantizationParameters(
            inplace_statistics=not has_dynamic_tensors(loaded.model)
        ),
    )
    return time.perf_counter() - start


def through_segtui(folder: Path, count: int) -> float:
    from segtui.core.datasets import import_image_folder
    from segtui.core.models import import_model
    from segtui.core.optimize import OptimizeSettings, optimize_project
    from segtui.core.projects import create_project
    from segtui.core.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="segtui-cal-"))
    ws = Workspace(root)
    model = import_model(ws, sample_dir() / "model" / "shapes_maskrcnn.xml")
    dataset = import_image_folder(ws, folder)
    project = create_project(ws, model_id=model.id, dataset_id=dataset.id)
    start = time.perf_counter()
    optimize_project(ws, project.id, OptimizeSettings(subset_percent=100.0), root / "work")
    seconds = time.perf_counter() - start
    shutil.rmtree(root, ignore_errors=True)
    return seconds


def make_folder(count: int) -> Path:
    """`count` images: the sample's validation images, repeated (with a flip) when more are asked."""
    src = sorted((sample_dir() / "images").glob("*.jpg"))
    folder = Path(tempfile.mkdtemp(prefix=f"segtui-cal{count}-"))
    for i in range(count):
        image = load_image(src[i % len(src)])
        if i >= len(src):
            image = cv2.flip(image, 1)
        cv2.imwrite(str(folder / f"img_{i:04d}.jpg"), image)
    return folder


def child(mode: str, count: int) -> None:
    folder = make_folder(count)
    images = sorted(folder.iterdir())
    seconds = bare(images) if mode == "bare" else through_segtui(folder, count)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "count": count, "seconds": seconds, "peak_mb": peak_mb}))
    shutil.rmtree(folder, ignore_errors=True)


def run_child(mode: str, count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--count", str(count)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.count)
        return
    ratios = []
    for round_ in range(args.rounds):
        ours = run_child("segtui", args.images)
        theirs = run_child("bare", args.images)
        ratios.append(ours["seconds"] / theirs["seconds"])
        print(
            f"round {round_ + 1}: segtui {ours['seconds']:.1f} s, bare nncf.quantize {theirs['seconds']:.1f} s, "
            f"ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print(f"time ratio segtui / bare (median): {sorted(ratios)[len(ratios) // 2]:.3f}")
    small = run_child("segtui", 30)
    large = run_child("segtui", 300)
    print(
        f"peak memory: 30 images {small['peak_mb']:.0f} MB, 300 images {large['peak_mb']:.0f} MB, "
        f"ratio {large['peak_mb'] / small['peak_mb']:.3f}"
    )


if __name__ == "__main__":
    main()
