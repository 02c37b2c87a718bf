"""Masks in original-image pixels: per-box maps pasted into their box, input-space maps
resampled through the preprocessing, both bilinear like OpenCV and thresholded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from segtui.core.formats.preprocessing import FloatArray, PreprocessMeta

MASK_THRESHOLD = 0.5


def _sample_positions(
    start: float, end: float, size: int, lo: int, hi: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """Where the centres of pixels lo..hi-1 fall on a `size`-long mask axis stretched over
    [start, end): the two neighbouring mask cells and the weight of the second, clamped at
    the mask's edges like cv2.resize."""
    centres = np.arange(lo, hi, dtype=np.float64) + 0.5
    src = np.clip((centres - start) / max(end - start, 1e-6) * size - 0.5, 0.0, size - 1.0)
    left = np.minimum(np.floor(src).astype(np.int64), size - 1)
    right = np.minimum(left + 1, size - 1)
    return left, right, (src - left).astype(np.float32)


def paste_mask(
    mask_prob: npt.NDArray[Any],
    box: Sequence[float],
    image_size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
) -> npt.NDArray[np.bool_]:
    """Paste a per-box SxS probability map into an (h, w) image as a binary mask.

    The map is stretched over the box (bilinear, as cv2.resize to the box size
    would) and sampled at the centre of every image pixel whose centre lies in
    the box; pixels outside the box or the image stay off. So an all-ones map
    gives exactly the box's pixels and a left-half map the left half of them,
    also for fractional boxes, without OMZ's integer rounding of the box.
    """
    h, w = image_size
    x1, y1, x2, y2 = (float(v) for v in box)
    # Fortran order: what COCO RLE encoding consumes, so encode_mask need not copy it.
    out = np.zeros((h, w), np.bool_, order="F")
    if not (x2 > x1 and y2 > y1):
        return out
    # Pixel i is in the box when its centre i + 0.5 lies in [x1, x2).
    col_lo, col_hi = max(0, math.ceil(x1 - 0.5)), min(w, math.ceil(x2 - 0.5))
    row_lo, row_hi = max(0, math.ceil(y1 - 0.5)), min(h, math.ceil(y2 - 0.5))
    if col_hi <= col_lo or row_hi <= row_lo:
        return out
    prob = np.asarray(mask_prob, np.float32)
    # Separable bilinear sampling by gathers: exact in f32, and much cheaper than BLAS
    # or cv2.remap (which rounds positions to 1/32 px) for the small maps involved.
    top, bottom, fy = _sample_positions(y1, y2, prob.shape[0], row_lo, row_hi)
    left, right, fx = _sample_positions(x1, x2, prob.shape[1], col_lo, col_hi)
    by_rows = prob[top] * (1.0 - fy)[:, None] + prob[bottom] * fy[:, None]
    sampled = by_rows[:, left] * (1.0 - fx) + by_rows[:, right] * fx
    out[row_lo:row_hi, col_lo:col_hi] = sampled > threshold
    return out


def _linear_taps(
    positions: npt.NDArray[np.int64], out_size: int, in_size: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """The two source cells and weights of output pixels `positions` of an axis resized
    from `in_size` to `out_size` bilinearly: half-pixel centres, clamped edges, exactly
    as cv2.resize(INTER_LINEAR) and torch's interpolate(align_corners=False) do it."""
    src = (positions.astype(np.float64) + 0.5) * (in_size / out_size) - 0.5
    src = np.clip(src, 0.0, in_size - 1.0)
    first = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    weight = (src - first).astype(np.float32)
    return [(first, 1.0 - weight), (second, weight)]


def _original_axis_taps(
    lo: int, hi: int, original: int, content: int, pad: int, network: int, map_size: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """Taps from original pixels lo..hi-1 of one axis into a map of `map_size` cells.

    Composes the two resizes Ultralytics and Model API do: the map up to the network
    input (skipped when it is already that size), then the content part of the input,
    without the padding, to the original image.
    """
    taps = [
        (index + pad, weight)
        for index, weight in _linear_taps(np.arange(lo, hi), original, content)
    ]
    if map_size == network:
        return taps
    return [
        (inner, outer_weight * inner_weight)
        for outer, outer_weight in taps
        for inner, inner_weight in _linear_taps(outer, network, map_size)
    ]


def map_to_original(
    prob_map: npt.NDArray[Any],
    meta: PreprocessMeta,
    region: tuple[int, int, int, int] | None = None,
    threshold: float = MASK_THRESHOLD,
) -> npt.NDArray[np.bool_]:
    """A probability map in network-input space (input size, or smaller like YOLO's
    prototypes at H/4 x W/4) as a binary mask of the original image.

    Upsamples to the input, cuts the padding and resizes to the original size, all
    bilinear, then thresholds. Only the pixels in `region` (x1, y1, x2, y2; original
    px) are computed, the rest stay off: the map is zero beyond the box it was cropped
    to, so decoding costs the box's area, not the image's.
    """
    h, w = meta.original_size
    in_h, in_w = meta.input_size
    content_h, content_w = meta.content_size
    x_lo, y_lo, x_hi, y_hi = region if region is not None else (0, 0, w, h)
    x_lo, y_lo, x_hi, y_hi = max(0, x_lo), max(0, y_lo), min(w, x_hi), min(h, y_hi)
    # Fortran order: what COCO RLE encoding consumes, so encode_mask need not copy it.
    out = np.zeros((h, w), np.bool_, order="F")
    if x_hi <= x_lo or y_hi <= y_lo:
        return out
    prob = np.asarray(prob_map, np.float32)
    row_taps = _original_axis_taps(y_lo, y_hi, h, content_h, round(meta.pad_y), in_h, prob.shape[0])
    col_taps = _original_axis_taps(x_lo, x_hi, w, content_w, round(meta.pad_x), in_w, prob.shape[1])
    # The whole chain is separable: rows first, then columns, by gathers.
    by_rows = np.zeros((y_hi - y_lo, prob.shape[1]), np.float32)
    for index, weight in row_taps:
        by_rows += prob[index] * weight[:, None]
    sampled = np.zeros((y_hi - y_lo, x_hi - x_lo), np.float32)
    for index, weight in col_taps:
        sampled += by_rows[:, index] * weight
    out[y_lo:y_hi, x_lo:x_hi] = sampled > threshold
    return out


def region_around(
    box: npt.NDArray[Any], meta: PreprocessMeta, margin: float
) -> tuple[int, int, int, int]:
    """Original-pixel bounds of an input-pixel box grown by `margin` input px (and 2 px more
    for the last resize's reach)."""
    x1, y1, x2, y2 = meta.box_to_original(
        np.asarray(box, np.float64) + np.array([-margin, -margin, margin, margin])
    )[0]
    return (math.floor(x1) - 2, math.floor(y1) - 2, math.ceil(x2) + 2, math.ceil(y2) + 2)
