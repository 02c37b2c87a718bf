"""Calibration with and without NNCF's passes for If bodies that hold nothing to quantize.

NNCF quantizes the bodies of each If as graphs of their own: before that it runs
the whole model over the calibration set once per If to collect the bodies'
inputs. In a Mask R-CNN the Ifs hold the batched NMS, which segtui's automatic
ignored scope keeps in floating point in full, so those passes produce nothing.
segtui then quantizes the main graph alone. This script runs both ways
alternately on the same images and settings and prints the calibration times,
their ratio, the FakeQuantize counts and the mask AP of both INT8 models on
the sample's 200 annotated images (f32 inference). It runs on the Mask R-CNN with
torchvision's tail (sample_projects/shapes-torchvision): the OMZ-structured sample has
no If.

    python benchmarks/if_bodies_skip.py [--images 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
from pathlib import Path

import numpy as np
import openvino as ov
from _common import median_ratio

from segtui.core.evaluation import evaluate_coco
from segtui.core.ignored_scope import if_ops
from segtui.core.inference import run_inference
from segtui.core.models import load_model
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.quantize import quantize
from segtui.core.sample import sample_dir


def mask_ap(xml: Path) -> float:
    root = sample_dir()
    truth = json.loads((root / "annotations" / "instances_val.json").read_text())
    ids = {im["file_name"]: int(im["id"]) for im in truth["images"]}
    loaded = load_model(xml)
    images = [(name, root / "images" / name) for name in sorted(ids)]
    run = run_inference(loaded.model, loaded.adapter, images, precision="f32")
    return evaluate_coco(truth, run.predictions, ids).mask_ap


def fake_quantize_ranges(xml: Path) -> dict[str, list[np.ndarray]]:
    """Each FakeQuantize's four range inputs (constants after saving), by name."""
    model = ov.Core().read_model(xml)
    out: dict[str, list[np.ndarray]] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize":
            values = []
            for i in range(1, 5):
                source = op.input_value(i).get_node()
                while source.get_type_name() == "Convert":  # FP16-compressed constants
                    source = source.input_value(0).get_node()
                values.append(source.get_data().astype(np.float32))
            out[op.get_friendly_name()] = values
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import nncf

    nncf.set_log_level(logging.WARNING)  # its per-node INFO lines would bury the figures
    root = sample_dir()
    loaded = load_model(
        sample_dir("shapes-torchvision") / "model" / "shapes_maskrcnn_torchvision.xml"
    )
    paths = sorted((root / "images").glob("*.jpg"))[: args.images]
    print(
        f"sample model: {len(if_ops(loaded.model))} If operations; {len(paths)} calibration images"
    )
    times: dict[bool, list[float]] = {True: [], False: []}
    xmls: dict[bool, Path] = {}
    work = Path(tempfile.mkdtemp(prefix="segtui-ifskip-"))
    for round_ in range(args.rounds):
        for skip in (True, False):
            xml = work / f"{'skip' if skip else 'nncf'}_{round_}" / "model.xml"
            outcome = quantize(
                loaded.model,
                loaded.adapter,
                paths,
                OptimizeSettings(),
                xml,
                skip_ignored_bodies=skip,
            )
            times[skip].append(outcome.calibration_seconds)
            xmls[skip] = xml
            label = "skip If passes" if skip else "NNCF's If passes"
            print(
                f"round {round_ + 1} {label:16s} {outcome.calibration_seconds:6.1f} s "
                f"(If bodies skipped: {outcome.if_bodies_skipped})",
                flush=True,
            )
    med, lo, hi = median_ratio(times[False], times[True])
    print(
        f"calibration time, NNCF's If passes / skipped: ×{med:.2f} (min ×{lo:.2f}, max ×{hi:.2f}); "
        f"medians {statistics.median(times[False]):.1f} s vs {statistics.median(times[True]):.1f} s"
    )
    ranges: dict[bool, dict[str, list[np.ndarray]]] = {}
    for skip, xml in xmls.items():
        ranges[skip] = fake_quantize_ranges(xml)
        label = "skip If passes" if skip else "NNCF's If passes"
        print(
            f"{label:16s} FakeQuantize {len(ranges[skip])}, "
            f"mask AP (200 images, f32) {mask_ap(xml):.4f}"
        )
    same_names = ranges[True].keys() == ranges[False].keys()
    worst = max(
        (
            float(np.max(np.abs(a - b)))
            for name in ranges[True].keys() & ranges[False].keys()
            for a, b in zip(ranges[True][name], ranges[False][name], strict=True)
        ),
        default=float("nan"),
    )
    print(f"same FakeQuantize names: {same_names}; largest range difference: {worst:.3g}")


if __name__ == "__main__":
    main()
