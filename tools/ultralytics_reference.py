#!/usr/bin/env python3
"""Store Ultralytics' own predictions of the YOLO sample as a test fixture.

``tests/test_yolo_reference.py`` checks segtui's YOLO-seg decoding against what this
writes: Ultralytics' ``predict`` with ``retina_masks=True`` (masks by
``process_mask_native``, in original-image pixels, as ``val --save_json`` makes them)
on every 10th bundled validation image and a few non-square crops of others, which
exercise the letterbox. Run it in the environment that has Ultralytics (the
``train`` extra) whenever the sample model is retrained::

    YOLO_OFFLINE=1 python tools/ultralytics_reference.py \
        --model sample_projects/shapes-yolo/model --out tests/data/yolo_reference

OpenVINO's CPU plugin runs bf16 by default where the CPU has it, and Ultralytics'
backend compiles without a precision hint; the tool adds
``INFERENCE_PRECISION_HINT=f32`` to every ``Core.compile_model`` call so the
reference is the model's true f32 output, which is what the test runs segtui at.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
VAL_IMAGES = REPO / "sample_projects" / "shapes" / "images"
FIXTURE_NAME = "ultralytics_predictions.json"
JPEG_QUALITY = 92

#: Ultralytics predict settings; iou, max_det and agnostic_nms are its defaults, written
#: out so the fixture says what it was made with.
SETTINGS: dict[str, Any] = {
    "imgsz": 256,
    "conf": 0.25,
    "iou": 0.7,
    "max_det": 300,
    "agnostic_nms": False,
    "retina_masks": True,
    "device": "cpu",
}


@dataclass(frozen=True)
class Crop:
    """A non-square test image: `box` (x, y, w, h) of a validation image resized to `size` (w, h)."""

    name: str
    source: str
    box: tuple[int, int, int, int]
    size: tuple[int, int]


#: Sizes whose letterbox rounds differently per axis, with odd and even padding, wide and tall.
CROPS: tuple[Crop, ...] = (
    Crop("wide_500x333.jpg", "val_0005.jpg", (0, 43, 256, 170), (500, 333)),
    Crop("wide_384x256.jpg", "val_0008.jpg", (0, 43, 256, 171), (384, 256)),
    Crop("strip_200x90.jpg", "val_0014.jpg", (28, 83, 200, 90), (200, 90)),
    Crop("tall_180x320.jpg", "val_0013.jpg", (112, 0, 144, 256), (180, 320)),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_crops(out: Path, replace: bool) -> list[Path]:
    """The non-square JPEGs in `out`; existing ones are kept unless `replace`, so the
    fixture keeps describing the committed files."""
    paths = []
    for crop in CROPS:
        path = out / crop.name
        if replace or not path.exists():
            image = cv2.imread(str(VAL_IMAGES / crop.source), cv2.IMREAD_COLOR)
            if image is None:
                raise OSError(f"cannot read {VAL_IMAGES / crop.source}")
            x, y, w, h = crop.box
            resized = cv2.resize(
                image[y : y + h, x : x + w], crop.size, interpolation=cv2.INTER_AREA
            )
            if not cv2.imwrite(str(path), resized, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def force_f32() -> list[str]:
    """Patch openvino.Core.compile_model to compile at f32; returns the precisions the
    compiled models report, filled in as models are compiled."""
    import openvino as ov

    reported: list[str] = []
    original = ov.Core.compile_model

    @wraps(original)
    def compile_f32(
        self: Any, model: Any, device_name: Any = None, config: Any = None, **kw: Any
    ) -> Any:
        config = {**(config or {}), "INFERENCE_PRECISION_HINT": "f32"}
        compiled = original(self, model, device_name, config, **kw)
        reported.append(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
        return compiled

    ov.Core.compile_model = compile_f32
    return reported


def rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE with str counts, as segtui stores masks."""
    from pycocotools import mask as mask_utils

    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def predict(model: Any, path: Path, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One image's detections as Ultralytics returns them (original-image pixels)."""
    result = model.predict(str(path), verbose=False, **settings)[0]
    h, w = (int(v) for v in result.orig_shape)
    detections = []
    if result.masks is not None:
        masks = result.masks.data.cpu().numpy()
        # Retina masks come at the original size; anything else would be input-space masks.
        if masks.shape[1:] != (h, w):
            raise RuntimeError(f"{path.name}: masks are {masks.shape[1:]}, the image {(h, w)}")
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64)
        scores = result.boxes.conf.cpu().numpy().astype(np.float64)
        classes = result.boxes.cls.cpu().numpy().astype(np.int64)
        for box, score, class_id, mask in zip(boxes, scores, classes, masks, strict=True):
            detections.append(
                {
                    "class_id": int(class_id),
                    "score": float(score),
                    "box": [float(v) for v in box],
                    "rle": rle(mask > 0),
                }
            )
    return {
        "file": path.name,
        "kind": kind,
        "width": w,
        "height": h,
        "sha256": sha256(path),
        "detections": detections,
    }


def versions() -> dict[str, str]:
    import openvino
    import torch  # type: ignore[import-not-found, unused-ignore]
    import ultralytics  # type: ignore[import-not-found, unused-ignore]

    return {
        "ultralytics": str(ultralytics.__version__),
        "openvino": str(openvino.__version__),
        "torch": str(torch.__version__),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(REPO / "sample_projects" / "shapes-yolo" / "model"))
    parser.add_argument("--out", default=str(REPO / "tests" / "data" / "yolo_reference"))
    parser.add_argument("--every", type=int, default=10, help="every Nth validation image")
    parser.add_argument("--conf", type=float, default=SETTINGS["conf"], help="score threshold")
    parser.add_argument("--replace-crops", action="store_true", help="rewrite the non-square JPEGs")
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    model_dir, out = Path(args.model), Path(args.out)
    xml = next(model_dir.glob("*.xml"))
    out.mkdir(parents=True, exist_ok=True)
    square = sorted(VAL_IMAGES.glob("val_*.jpg"))[:: args.every]
    letterboxed = write_crops(out, args.replace_crops)

    precisions = force_f32()
    from ultralytics import YOLO  # type: ignore[import-not-found, unused-ignore]

    settings = {**SETTINGS, "conf": args.conf}
    with tempfile.TemporaryDirectory() as tmp:
        # Ultralytics tells formats by name: an OpenVINO export is a *_openvino_model folder.
        link = Path(tmp) / f"{xml.stem}_openvino_model"
        link.symlink_to(model_dir.resolve(), target_is_directory=True)
        model = YOLO(str(link), task="segment")
        images = [predict(model, path, "square", settings) for path in square] + [
            predict(model, path, "letterboxed", settings) for path in letterboxed
        ]
    if not precisions or any(p != "f32" for p in precisions):
        raise RuntimeError(f"OpenVINO compiled at {precisions}, not f32")
    fixture = {
        **versions(),
        "model": {
            "xml": xml.name,
            "xml_sha256": sha256(xml),
            "bin_sha256": sha256(xml.with_suffix(".bin")),
        },
        "settings": settings,
        "precision": "f32 (openvino Core.compile_model patched: INFERENCE_PRECISION_HINT=f32; "
        f"compiled models report {', '.join(sorted(set(precisions)))})",
        "mask_source": "Results.masks.data (process_mask_native, original pixels), boxes.xyxy",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(
            ["YOLO_OFFLINE=1 python tools/ultralytics_reference.py", *(argv or sys.argv[1:])]
        ),
        "images": images,
    }
    target = out / FIXTURE_NAME
    target.write_text(json.dumps(fixture, indent=1) + "\n", encoding="utf-8")
    count = sum(len(image["detections"]) for image in images)
    print(f"{len(images)} images, {count} detections -> {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
