"""Masks in original-image pixels: per-box maps pasted into their box, input-space maps
resampled through the preprocessing, both bilinear like OpenCV and thresholded."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from segtui.core.formats.preprocessing import FloatArray, PreprocessMeta

MASK_THRESHOLD = 0.5


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
