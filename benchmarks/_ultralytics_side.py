"""The Ultralytics half of benchmarks/yolo_vs_ultralytics.py; runs in a venv with the
`train` extra (torch, ultralytics), not segtui's.

    python benchmarks/_ultralytics_side.py predict MODEL_DIR IMAGES OUT.json [--conf 0.05]
    python benchmarks/_ultralytics_side.py int8 MODEL.pt DATA.yaml OUT_DIR

`predict` writes Ultralytics' own predictions (retina masks: process_mask_native, the
path its COCO-JSON validation takes) as segtui's ImagePrediction JSON. OpenVINO runs bf16
by default on CPUs that have it and Ultralytics sets no precision, so the compile is
patched to INFERENCE_PRECISION_HINT f32: segtui's evaluation runs at f32 too.
`int8` is Ultralytics' own `export(format="openvino", int8=True)` (its NNCF path).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _force_f32() -> None:
    import openvino as ov

    original = ov.Core.compile_model

    def compile_f32(self: Any, model: Any, device_name: str = "CPU", config: Any = None) -> Any:
        merged = {**(config or {}), "INFERENCE_PRECISION_HINT": "f32"}
        return original(self, model, device_name, merged)

    ov.Core.compile_model = compile_f32  # type: ignore[method-assign]


def cmd_predict(args: argparse.Namespace) -> int:
    from pycocotools import mask as mask_utils
    from ultralytics import YOLO

    _force_f32()
    # Ultralytics recognises an OpenVINO model by its folder's name: give it one.
    link = Path(tempfile.mkdtemp()) / "model_openvino_model"
    link.symlink_to(Path(args.model_dir).resolve(), target_is_directory=True)
    model = YOLO(str(link), task="segment")
    images = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() == ".jpg")
    out: list[dict[str, Any]] = []
    started = time.perf_counter()
    for path in images:
        result = model.predict(
            str(path), imgsz=args.imgsz, conf=args.conf, retina_masks=True, verbose=False
        )[0]
        height, width = result.orig_shape
        instances = []
        if result.masks is not None:
            masks = result.masks.data.cpu().numpy().astype(np.uint8)
            for box, score, cls, mask in zip(
                result.boxes.xyxy.cpu().numpy(),
                result.boxes.conf.cpu().numpy(),
                result.boxes.cls.cpu().numpy(),
                masks,
                strict=True,
            ):
                rle = mask_utils.encode(np.asfortranarray(mask))
                instances.append(
                    {
                        "class_id": int(cls),
                        "score": float(score),
                        "box": [float(v) for v in box],
                        "rle": {
                            "size": [int(height), int(width)],
                            "counts": rle["counts"].decode(),
                        },
                    }
                )
        out.append({"image": path.name, "width": width, "height": height, "instances": instances})
    Path(args.out).write_text(json.dumps(out), encoding="utf-8")
    print(f"ultralytics predicted {len(images)} images in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_int8(args: argparse.Namespace) -> int:
    from ultralytics import YOLO

    # The exporter writes beside its weights: give it a copy in a scratch folder.
    scratch = Path(tempfile.mkdtemp()) / Path(args.weights).name
    shutil.copy2(args.weights, scratch)
    started = time.perf_counter()
    exported = YOLO(str(scratch)).export(
        format="openvino", int8=True, data=args.data, imgsz=args.imgsz
    )
    seconds = time.perf_counter() - started
    dest = Path(args.out_dir)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(exported, dest)
    print(json.dumps({"export_seconds": round(seconds, 1), "dir": str(dest)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict")
    p.add_argument("model_dir")
    p.add_argument("images")
    p.add_argument("out")
    p.add_argument("--conf", type=float, default=0.05)
    p.add_argument("--imgsz", type=int, default=256)
    p = sub.add_parser("int8")
    p.add_argument("weights")
    p.add_argument("data")
    p.add_argument("out_dir")
    p.add_argument("--imgsz", type=int, default=256)
    args = parser.parse_args()
    return {"predict": cmd_predict, "int8": cmd_int8}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
