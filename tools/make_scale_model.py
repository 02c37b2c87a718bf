"""Build an untrained Mask R-CNN ResNet50-FPN at 768×1024 in the OMZ instance-segmentation format.

It has the compute class of OMZ's instance-segmentation-security-0002 (Mask
R-CNN R50-FPN, 1x3x768x1024, ~423 GFLOPs, 80 classes), so segtui's benchmark,
optimization and compare can be tried at scale without downloading anything.
Two structures: ``--structure omz`` lays the detection tail out as security-0002
does (OpenVINO's ExperimentalDetectron operations: 1000 proposals per level,
1000 ROIs, 100 detections, no resize in the graph; see tools/omz_structure.py),
``--structure torchvision`` keeps torchvision's own tail (its transform's
resize, MultiScaleRoIAlign, batched NMS).
The weights are random: speed figures from it are rough (the number of
detections, and so the heads' and NMS's work, differs from a trained model's),
and its accuracy means nothing. Every image yields 100 detections
(box_score_thresh 0, as a busy scene would), to load the heads as security-0002 does.

    pip install -e '.[train]'
    python tools/make_scale_model.py --out /tmp/scale/maskrcnn_r50_768x1024.xml
    python tools/make_scale_model.py --structure omz --out /tmp/scale/omz_r50_768x1024.xml

Needs the `train` extra (torch, torchvision); reuses the export wrapper of
tools/train_sample_model.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from omz_structure import OMZ_COUNTS, build_omz_model, save_omz_model
from train_sample_model import OmzMaskRCNN

HEIGHT, WIDTH = 768, 1024


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=81,
        min_size=HEIGHT,
        max_size=WIDTH,
        box_score_thresh=0.0,
        box_detections_per_img=100,
    )
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="the .xml to write (+ .bin)")
    parser.add_argument(
        "--structure",
        choices=("torchvision", "omz"),
        default="torchvision",
        help="detection tail: torchvision's ops, or OMZ's ExperimentalDetectron operations",
    )
    args = parser.parse_args()
    import openvino as ov

    torch.set_num_threads(2)
    start = time.perf_counter()
    if args.structure == "omz":
        save_omz_model(build_omz_model(build(), HEIGHT, WIDTH, OMZ_COUNTS), args.out)
        print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
        return 0
    wrapper = OmzMaskRCNN(build()).eval()
    with torch.no_grad():
        ov_model = ov.convert_model(
            wrapper, example_input=torch.zeros(1, 3, HEIGHT, WIDTH), input=[1, 3, HEIGHT, WIDTH]
        )
    ov_model.inputs[0].get_tensor().set_names({"image"})
    for output, name in zip(ov_model.outputs, ("labels", "boxes", "masks"), strict=True):
        output.get_tensor().set_names({name})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(args.out), compress_to_fp16=True)
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
