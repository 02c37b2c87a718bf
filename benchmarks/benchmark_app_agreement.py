"""segtui's benchmark against OpenVINO's benchmark_app on the same IR, device, hint, precision and duration.

Runs the two alternately (A B A B ...) and prints each throughput and the
pairwise ratio segtui / benchmark_app; they should agree within ±7 %.

    python benchmarks/benchmark_app_agreement.py [--model MODEL.xml] [--time 10] [--rounds 3] [--hint throughput]

Defaults to the sample model; inputs for both are the same sample images, as many as
there are infer requests (benchmark_app keeps one image per request).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import median_ratio

from segtui.core.benchmark import BenchmarkSettings, run_benchmark
from segtui.core.datasets import load_image
from segtui.core.models import load_model
from segtui.core.sample import sample_dir


def benchmark_app(model: Path, images: Path, hint: str, seconds: float, precision: str) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cmd = [
        exe,
        "-m",
        str(model),
        "-d",
        "CPU",
        "-hint",
        hint,
        "-t",
        str(int(seconds)),
        "-i",
        str(images),
    ]
    if precision == "f32":
        cmd += ["-infer_precision", "f32"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Throughput:\s+([\d.]+)\s+FPS", out)
    if not match:
        raise RuntimeError(out[-2000:])
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--model", type=Path, default=sample_dir() / "model" / "shapes_maskrcnn.xml"
    )
    parser.add_argument("--images", type=Path, default=sample_dir() / "images")
    parser.add_argument("--time", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hint", default="throughput", choices=["throughput", "latency"])
    parser.add_argument("--precision", default="f32", choices=["f32", "default"])
    args = parser.parse_args()
    loaded = load_model(args.model)
    # benchmark_app fills each infer request with one image and keeps it; segtui cycles
    # through up to 32 images. A Mask R-CNN's time depends on what is in the image, so for
    # a like-for-like figure both get exactly as many images as there are requests.
    from segtui.core.inference import compile_model

    hint = args.hint.upper()
    nireq = int(
        compile_model(loaded.model, "CPU", args.precision, hint).get_property(
            "OPTIMAL_NUMBER_OF_INFER_REQUESTS"
        )
    )
    paths = (sorted(args.images.glob("*.jpg")) or sorted(args.images.iterdir()))[:nireq]
    # benchmark_app reads images itself and resizes them to the input; give it the same files
    # already at the input size, so both feed identical pixels.
    h, w = loaded.adapter.input_size
    folder = Path(tempfile.mkdtemp(prefix="segtui-bapp-"))
    import cv2

    for p in paths:
        cv2.imwrite(str(folder / (p.stem + ".png")), cv2.resize(load_image(p), (w, h)))
    ours, theirs = [], []
    for round_ in range(args.rounds):
        settings = BenchmarkSettings(
            hint=args.hint.upper(), duration_s=args.time, precision=args.precision
        )
        result = run_benchmark(
            load_model(args.model).model, loaded.adapter, sorted(folder.iterdir()), settings
        )
        ours.append(result.throughput_fps)
        theirs.append(benchmark_app(args.model, folder, args.hint, args.time, args.precision))
        print(
            f"round {round_ + 1}: segtui {ours[-1]:.2f} FPS ({result.precision}, {result.streams} streams, "
            f"{result.requests} requests)   benchmark_app {theirs[-1]:.2f} FPS",
            flush=True,
        )
    med, lo, hi = median_ratio(ours, theirs)
    print(
        f"segtui / benchmark_app: median ×{med:.3f} (min ×{lo:.3f}, max ×{hi:.3f}); "
        f"{'within' if abs(med - 1) <= 0.07 else 'OUTSIDE'} ±7 %"
    )


if __name__ == "__main__":
    main()
