#!/usr/bin/env python3
"""Train and export segtui's bundled YOLO sample (``sample_projects/shapes-yolo``).

A yolov8n-seg is trained with Ultralytics from its yaml (no pretrained weights) on
generated "shapes" scenes (``tools/make_shapes_dataset.py``, another seed than the
bundled validation images), validated on the bundled 200 images, and exported to
OpenVINO IR the way Ultralytics exports (FP16 weights, its ``metadata.yaml``).

Sub-commands::

    # 1. the training and validation sets in Ultralytics' layout (polygons)
    python tools/train_yolo_sample.py data --out /tmp/yolo_data --count 2000 --seed 777

    # 2. train (the shipped model: 12 epochs, 2,000 images, 256 px, CPU)
    python tools/train_yolo_sample.py train --data /tmp/yolo_data --epochs 12 \
        --out /tmp/yolo_runs

    # 3. export the best weights into the sample folder
    python tools/train_yolo_sample.py export --weights /tmp/yolo_runs/shapes/weights/best.pt \
        --dest sample_projects/shapes-yolo/model

Needs the ``train`` extra (``pip install -e '.[train]'``: torch, torchvision,
ultralytics). Not part of segtui's runtime package.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_shapes_dataset import (
    CLASS_NAMES,
    JPEG_QUALITY,
    jpeg_roundtrip,
    make_scene,
    scene_rng,
)

REPO = Path(__file__).resolve().parent.parent
VAL_DIR = REPO / "sample_projects" / "shapes"
IMG_SIZE = 256


def _keyhole(outer: np.ndarray, holes: list[np.ndarray]) -> np.ndarray:
    """One polygon for a shape with holes (a ring): each hole joined to the outline by a
    zero-width cut at their closest points, as Ultralytics' COCO converter merges segments."""
    points = outer
    for hole in holes:
        d = ((points[:, None, :] - hole[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(d.argmin()), d.shape)
        loop = np.concatenate([hole[j:], hole[: j + 1]])
        points = np.concatenate([points[: i + 1], loop, points[i:]])
    return points


def polygon_lines(class_index: int, mask: np.ndarray, size: tuple[int, int]) -> list[str]:
    """YOLO segment label lines (class, then x y pairs normalised) for one instance mask.

    An occluded instance can fall apart into pieces; only the largest is kept (one polygon
    per instance), with its holes cut in (see `_keyhole`).
    """
    h, w = size
    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE
    )
    if not contours:
        return []
    outers = [i for i, info in enumerate(hierarchy[0]) if info[3] < 0]
    best = max(outers, key=lambda i: cv2.contourArea(contours[i]))
    simplify = lambda c: cv2.approxPolyDP(c, 0.5, True).reshape(-1, 2).astype(np.float64)  # noqa: E731
    outer = simplify(contours[best])
    holes = [
        simplify(contours[i])
        for i, info in enumerate(hierarchy[0])
        if info[3] == best and cv2.contourArea(contours[i]) > 4
    ]
    if len(outer) < 3:
        return []
    points = _keyhole(outer, [hole for hole in holes if len(hole) >= 3])
    coords = " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in points)
    return [f"{class_index} {coords}"]


def write_train(out: Path, count: int, seed: int) -> None:
    images = out / "images" / "train"
    labels = out / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, instances = make_scene(scene_rng(seed, index), IMG_SIZE)
        image = jpeg_roundtrip(image)
        name = f"train_{index + 1:05d}"
        cv2.imwrite(str(images / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        lines: list[str] = []
        for class_id, mask in instances:
            lines += polygon_lines(class_id - 1, mask, image.shape[:2])
        (labels / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def write_val(out: Path) -> None:
    """The bundled validation images with their COCO masks as YOLO polygons."""
    from pycocotools import mask as mask_utils

    images = out / "images" / "val"
    labels = out / "labels" / "val"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    coco: dict[str, Any] = json.loads(
        (VAL_DIR / "annotations" / "instances_val.json").read_text(encoding="utf-8")
    )
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    for info in coco["images"]:
        shutil.copy2(VAL_DIR / "images" / info["file_name"], images / info["file_name"])
        lines: list[str] = []
        for ann in by_image.get(int(info["id"]), []):
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            lines += polygon_lines(int(ann["category_id"]) - 1, mask, mask.shape)
        stem = Path(info["file_name"]).stem
        (labels / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def cmd_data(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    started = time.perf_counter()
    write_train(out, args.count, args.seed)
    write_val(out)
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES))
    (out / "data.yaml").write_text(
        f"path: {out}\ntrain: images/train\nval: images/val\nnames:\n{names}\n", encoding="utf-8"
    )
    print(
        f"wrote {args.count} training images and the 200 validation images to {out} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ultralytics import YOLO

    started = time.perf_counter()
    model = YOLO("yolov8n-seg.yaml")
    model.train(
        data=str(Path(args.data).resolve() / "data.yaml"),
        epochs=args.epochs,
        imgsz=IMG_SIZE,
        batch=args.batch,
        workers=args.workers,
        device="cpu",
        pretrained=False,
        amp=False,
        plots=False,
        project=str(Path(args.out).resolve()),
        name="shapes",
        exist_ok=True,
        seed=0,
        deterministic=True,
    )
    print(f"trained {args.epochs} epochs in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ultralytics import YOLO

    model = YOLO(args.weights)
    exported = Path(model.export(format="openvino", imgsz=IMG_SIZE, half=True, dynamic=False))
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for path in exported.iterdir():
        if path.suffix in (".xml", ".bin"):
            shutil.copy2(path, dest / f"shapes_yolov8n_seg{path.suffix}")
        elif path.name == "metadata.yaml":
            shutil.copy2(path, dest / "metadata.yaml")
    sizes = {p.name: p.stat().st_size for p in dest.iterdir()}
    print(f"exported to {dest}: {sizes}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the training and validation sets")
    data.add_argument("--out", required=True)
    data.add_argument("--count", type=int, default=2000)
    data.add_argument("--seed", type=int, default=777)
    train = sub.add_parser("train", help="train yolov8n-seg from its yaml")
    train.add_argument("--data", required=True)
    train.add_argument("--out", required=True)
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--batch", type=int, default=16)
    train.add_argument("--workers", type=int, default=2)
    export = sub.add_parser("export", help="export weights to OpenVINO IR (FP16)")
    export.add_argument("--weights", required=True)
    export.add_argument("--dest", default=str(REPO / "sample_projects" / "shapes-yolo" / "model"))
    args = parser.parse_args(argv)
    handlers = {"data": cmd_data, "train": cmd_train, "export": cmd_export}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
