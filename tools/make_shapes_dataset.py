#!/usr/bin/env python3
"""Deterministic generator of synthetic instance-segmentation scenes ("shapes").

The scenes are used to build segtui's bundled sample project: a small Mask R-CNN
is trained on freshly generated scenes (``tools/train_sample_model.py`` imports
:func:`make_scene` from this module) and a fixed validation split is written to
disk with the CLI::

    python tools/make_shapes_dataset.py --out sample_projects/shapes \
        --count 200 --seed 12345 --size 256

Each scene contains 0-8 filled shapes of six classes (circle, square, triangle,
star, hexagon, ring) with random colours, sizes and rotations on a textured,
noisy, unevenly lit background. Later shapes occlude earlier ones; every
instance mask is the *visible* part of the shape, and instances that end up
mostly hidden are dropped so that no annotation describes an unrecognisable
sliver.

Only numpy, OpenCV and pycocotools are needed; the output is fully determined
by ``--seed`` (each image ``i`` uses ``numpy.random.default_rng([seed, i])``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

#: Class names in COCO category-id order (category_id = index + 1).
CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "ring")

#: Object size range (diameter of the circumscribed circle), in pixels.
#: Uniform (not log-uniform) sampling gives roughly 30% COCO-"small" objects.
MIN_OBJECT_SIZE = 16.0
MAX_OBJECT_SIZE = 120.0

#: Instances whose visible area is below this fraction of the full shape, or
#: below MIN_VISIBLE_PIXELS, are dropped from the annotations.
MIN_VISIBLE_FRACTION = 0.3
MIN_VISIBLE_PIXELS = 40

MAX_INSTANCES = 8
JPEG_QUALITY = 92

Image = NDArray[np.uint8]
Mask = NDArray[np.bool_]
Instance = tuple[int, Mask]


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """Return the generator for scene ``index`` of the stream ``seed``.

    Keying on both numbers (rather than seeding once and drawing sequentially)
    makes every image reproducible on its own, independent of how many scenes
    were generated before it.
    """
    return np.random.default_rng([seed, index])


# --------------------------------------------------------------------------- #
# Background
# --------------------------------------------------------------------------- #


def _low_frequency_field(rng: np.random.Generator, size: int, channels: int) -> NDArray[np.float32]:
    """Smooth random field in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = int(rng.integers(2, 7))
    coarse = rng.random((grid, grid, channels)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(field.reshape(size, size, channels), 0.0, 1.0)


def _texture(rng: np.random.Generator, size: int) -> NDArray[np.float32]:
    """Greyscale texture in [-1, 1]: rotated stripes or a rotated checkerboard."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0.0, math.pi)
    period = rng.uniform(6.0, 40.0)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    if rng.random() < 0.5:
        return np.sin(2.0 * math.pi * u / period).astype(np.float32)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    checker = (np.floor(u / period) + np.floor(v / period)) % 2.0
    return (checker * 2.0 - 1.0).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> NDArray[np.float32]:
    """Textured background, float32 BGR in [0, 255]."""
    base_colour = rng.uniform(20.0, 235.0, size=3).astype(np.float32)
    variation = rng.uniform(20.0, 90.0)
    field = _low_frequency_field(rng, size, 3)
    img = base_colour + (field - 0.5) * 2.0 * variation
    if rng.random() < 0.8:
        # Texture amplitude stays well below typical shape contrast so the
        # stripes/checks read as background rather than as objects.
        amplitude = rng.uniform(5.0, 35.0)
        tint = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
        img = img + _texture(rng, size)[..., None] * amplitude * tint
    return np.clip(img, 0.0, 255.0)


def _apply_lighting_and_noise(rng: np.random.Generator, img: NDArray[np.float32]) -> Image:
    """Multiply by a linear lighting gradient, add gaussian noise, quantise to uint8."""
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / float(size)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ramp = (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle)
    strength = rng.uniform(0.0, 0.6)
    gain = rng.uniform(0.85, 1.15) * (1.0 + strength * ramp)
    img = img * gain[..., None]
    sigma = rng.uniform(2.0, 8.0)
    img = img + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- #
# Shapes
# --------------------------------------------------------------------------- #


def _regular_polygon(
    cx: float, cy: float, radius: float, sides: int, rotation: float
) -> NDArray[np.float64]:
    """Vertices of a regular polygon inscribed in a circle of ``radius``."""
    angles = rotation + np.arange(sides) * (2.0 * math.pi / sides)
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)


def _star(
    cx: float, cy: float, radius: float, rotation: float, inner_ratio: float
) -> NDArray[np.float64]:
    """Vertices of a five-pointed star (alternating outer and inner radius)."""
    angles = rotation + np.arange(10) * (math.pi / 5.0)
    radii = np.where(np.arange(10) % 2 == 0, radius, radius * inner_ratio)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _fill_polygon(size: int, points: NDArray[np.float64]) -> Mask:
    """Rasterise a polygon with sub-pixel precision into a boolean mask."""
    canvas = np.zeros((size, size), np.uint8)
    shift = 4  # 1/16 px vertex precision, so small shapes keep their form
    pts = np.rint(points * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=shift)
    return canvas.astype(bool)


def _disc(size: int, cx: float, cy: float, radius: float) -> Mask:
    """Boolean mask of pixels whose centre lies within ``radius`` of (cx, cy)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def _shape_mask(rng: np.random.Generator, class_id: int, size: int) -> Mask:
    """Full (unoccluded) mask of one random shape of ``class_id`` (1-based)."""
    diameter = rng.uniform(MIN_OBJECT_SIZE, MAX_OBJECT_SIZE)
    radius = diameter / 2.0
    # Centres may sit slightly outside the image so that truncated objects occur.
    margin = radius * 0.3
    cx = rng.uniform(-margin, size - 1 + margin)
    cy = rng.uniform(-margin, size - 1 + margin)
    rotation = rng.uniform(0.0, 2.0 * math.pi)
    name = CLASS_NAMES[class_id - 1]
    if name == "circle":
        return _disc(size, cx, cy, radius)
    if name == "square":
        return _fill_polygon(size, _regular_polygon(cx, cy, radius, 4, rotation))
    if name == "triangle":
        return _fill_polygon(size, _regular_polygon(cx, cy, radius, 3, rotation))
    if name == "star":
        return _fill_polygon(size, _star(cx, cy, radius, rotation, rng.uniform(0.38, 0.5)))
    if name == "hexagon":
        return _fill_polygon(size, _regular_polygon(cx, cy, radius, 6, rotation))
    if name == "ring":
        inner = radius * rng.uniform(0.45, 0.7)
        return _disc(size, cx, cy, radius) & ~_disc(size, cx, cy, inner)
    raise ValueError(f"unknown class id {class_id}")


def _shape_colour(
    rng: np.random.Generator, background: NDArray[np.float32], mask: Mask
) -> NDArray[np.float32]:
    """Random BGR colour that differs clearly from the background under ``mask``.

    Without a minimum contrast some objects would be invisible, which only
    teaches the model to miss things; a few tries with rejection is enough.
    """
    local = background[mask].mean(axis=0) if mask.any() else background.reshape(-1, 3).mean(axis=0)
    colour = rng.uniform(0.0, 255.0, size=3).astype(np.float32)
    for _ in range(20):
        if float(np.abs(colour - local).max()) >= 70.0:
            break
        colour = rng.uniform(0.0, 255.0, size=3).astype(np.float32)
    return colour


def _paint(
    rng: np.random.Generator, img: NDArray[np.float32], mask: Mask, colour: NDArray[np.float32]
) -> None:
    """Paint ``colour`` into ``img`` under ``mask`` with a mild linear shading."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return
    angle = rng.uniform(0.0, 2.0 * math.pi)
    extent = max(float(xs.max() - xs.min()), float(ys.max() - ys.min()), 1.0)
    t = ((xs - xs.mean()) * math.cos(angle) + (ys - ys.mean()) * math.sin(angle)) / extent
    shade = 1.0 + rng.uniform(0.0, 0.35) * t
    img[ys, xs] = np.clip(colour[None, :] * shade[:, None].astype(np.float32), 0.0, 255.0)


def make_scene(rng: np.random.Generator, size: int = 256) -> tuple[Image, list[Instance]]:
    """Generate one scene.

    Args:
        rng: Random generator; the scene is a pure function of its state.
        size: Width and height of the square image in pixels.

    Returns:
        ``(image, instances)`` where ``image`` is a BGR uint8 array of shape
        ``(size, size, 3)`` and ``instances`` a list of ``(class_id, mask)``
        pairs in painting order, ``class_id`` in 1..6 and ``mask`` a boolean
        ``(size, size)`` array of the instance's visible pixels.
    """
    img = _background(rng, size)
    background = img.copy()
    count = int(rng.integers(0, MAX_INSTANCES + 1))
    classes: list[int] = []
    full_areas: list[int] = []
    visible: list[Mask] = []
    for _ in range(count):
        class_id = int(rng.integers(1, len(CLASS_NAMES) + 1))
        # Retry placement a few times when the new shape would hide most of an
        # earlier one: a dropped instance stays painted but unannotated, and
        # such unlabelled fragments are noise for training and evaluation.
        for _attempt in range(8):
            mask = _shape_mask(rng, class_id, size)
            if int(mask.sum()) < MIN_VISIBLE_PIXELS:
                continue
            if all(
                _keeps(vis & ~mask, full) for vis, full in zip(visible, full_areas, strict=True)
            ):
                break
        else:
            continue
        if int(mask.sum()) < MIN_VISIBLE_PIXELS:
            continue
        visible = [vis & ~mask for vis in visible]
        classes.append(class_id)
        full_areas.append(int(mask.sum()))
        visible.append(mask)
        _paint(rng, img, mask, _shape_colour(rng, background, mask))
    image = _apply_lighting_and_noise(rng, img)
    instances = [
        (cls, vis)
        for cls, vis, full in zip(classes, visible, full_areas, strict=True)
        if _keeps(vis, full)
    ]
    return image, instances


def _keeps(visible_mask: Mask, full_area: int) -> bool:
    """Whether an instance with this visible mask is still worth annotating."""
    area = int(visible_mask.sum())
    return area >= MIN_VISIBLE_PIXELS and area >= MIN_VISIBLE_FRACTION * full_area


def jpeg_roundtrip(image: Image, quality: int = JPEG_QUALITY) -> Image:
    """Encode and decode ``image`` as JPEG in memory.

    Training images go through the same lossy round trip as the shipped
    validation JPEGs so that both come from the same domain.
    """
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.asarray(decoded, dtype=np.uint8)


# --------------------------------------------------------------------------- #
# COCO export
# --------------------------------------------------------------------------- #


def encode_mask(mask: Mask) -> dict[str, Any]:
    """COCO RLE of a boolean mask, with ``counts`` as ``str`` (JSON-serialisable)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {
        "size": [int(s) for s in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def mask_bbox(mask: Mask) -> list[float]:
    """Tight ``[x, y, w, h]`` box of a non-empty boolean mask (COCO convention)."""
    ys, xs = np.nonzero(mask)
    x0, x1 = int(xs.min()), int(xs.max())
    y0, y1 = int(ys.min()), int(ys.max())
    return [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]


def write_split(out: Path, count: int, seed: int, size: int, prefix: str = "val") -> dict[str, Any]:
    """Write ``count`` scenes as JPEGs plus a COCO instances file under ``out``.

    Layout: ``out/images/{prefix}_0001.jpg ...`` and
    ``out/annotations/instances_{prefix}.json``. Annotation masks describe the
    exact (lossless) shapes; the JPEGs carry the usual compression artefacts.

    Returns:
        The COCO dictionary that was written.
    """
    images_dir = out / "images"
    ann_dir = out / "annotations"
    images_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(count):
        image, instances = make_scene(scene_rng(seed, index), size)
        image_id = index + 1
        file_name = f"{prefix}_{image_id:04d}.jpg"
        if not cv2.imwrite(
            str(images_dir / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        ):
            raise RuntimeError(f"could not write {images_dir / file_name}")
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for class_id, mask in instances:
            annotations.append(
                {
                    "id": len(annotations) + 1,  # COCO tools treat id 0 as invalid
                    "image_id": image_id,
                    "category_id": class_id,
                    "segmentation": encode_mask(mask),
                    "area": float(mask.sum()),
                    "bbox": mask_bbox(mask),
                    "iscrowd": 0,
                }
            )
    coco: dict[str, Any] = {
        "info": {
            "description": "segtui synthetic shapes validation split",
            "generator": "tools/make_shapes_dataset.py",
            "seed": seed,
            "count": count,
            "size": size,
        },
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(CLASS_NAMES)
        ],
    }
    with open(ann_dir / f"instances_{prefix}.json", "w", encoding="utf-8") as fh:
        json.dump(coco, fh, separators=(",", ":"))
    return coco


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (images/ and annotations/)"
    )
    parser.add_argument("--count", type=int, default=200, help="number of images")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the split")
    parser.add_argument("--size", type=int, default=256, help="image width and height")
    parser.add_argument("--prefix", default="val", help="file name prefix and split name")
    parser.add_argument(
        "--preview", type=Path, help="also write a PNG mosaic of the first scenes with masks"
    )
    args = parser.parse_args(argv)
    coco = write_split(args.out, args.count, args.seed, args.size, args.prefix)
    print(
        f"wrote {len(coco['images'])} images and {len(coco['annotations'])} instances to {args.out}"
    )
    if args.preview is not None:
        _write_preview(args.preview, args.seed, args.size)
    return 0


def _write_preview(path: Path, seed: int, size: int, n: int = 8) -> None:
    """Mosaic of ``n`` scenes (top row) and their colour-coded masks (bottom row)."""
    tops: list[Image] = []
    bottoms: list[Image] = []
    palette = np.array(
        [
            [0, 0, 0],
            [0, 0, 255],
            [0, 255, 0],
            [255, 0, 0],
            [0, 255, 255],
            [255, 0, 255],
            [255, 255, 0],
        ],
        np.uint8,
    )
    for index in range(n):
        image, instances = make_scene(scene_rng(seed, index), size)
        overlay = np.zeros_like(image)
        for class_id, mask in instances:
            overlay[mask] = palette[class_id]
            contours, _ = cv2.findContours(
                mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            cv2.drawContours(overlay, contours, -1, (255, 255, 255), 1)
        tops.append(image)
        bottoms.append(overlay)
    cv2.imwrite(str(path), np.vstack([np.hstack(tops), np.hstack(bottoms)]))


if __name__ == "__main__":
    raise SystemExit(main())
