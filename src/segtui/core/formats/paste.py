"""A Mask R-CNN's per-box SxS mask map pasted into the image as its makers paste it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from segtui.core.formats.masks import MASK_THRESHOLD


def paste_reference(
    mask_prob: npt.NDArray[Any],
    box: Sequence[float] | npt.NDArray[Any],
    image_size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
) -> npt.NDArray[np.bool_]:
    """Paste a per-box SxS probability map into an (h, w) image as a binary mask.

    The Detectron / maskrcnn-benchmark / torchvision `paste_masks_in_image` convention,
    line for line as OMZ's Accuracy Checker (`segm_postprocess`, mask_rcnn adapter) and
    OpenVINO Model API (`_segm_postprocess`) write it: the map padded with one cell of
    zeros, the box (x1, y1, x2, y2, original px) scaled by (S+2)/S about its centre and
    truncated to integers (`astype(int)`, towards zero), the padded map resized bilinearly
    (cv2.resize) to that integer box, both ends included, and kept where > `threshold`;
    what falls outside the image is cut off.
    """
    im_h, im_w = image_size
    # Fortran order: what COCO RLE encoding consumes, so encode_mask need not copy it.
    out = np.zeros((im_h, im_w), np.bool_, order="F")
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64).reshape(-1)[:4])
    if not np.isfinite((x1, y1, x2, y2)).all():
        return out  # the reference would cast garbage to int; nothing sensible to paste
    padded = np.pad(np.asarray(mask_prob, np.float32), ((1, 1), (1, 1)), "constant")
    # The reference takes the scale from the rows for both axes (its maps are square).
    scale = padded.shape[0] / (padded.shape[0] - 2.0)
    w_half, h_half = (x2 - x1) * 0.5 * scale, (y2 - y1) * 0.5 * scale
    x_c, y_c = (x2 + x1) * 0.5, (y2 + y1) * 0.5
    ex0, ey0, ex1, ey1 = (int(v) for v in (x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half))
    x0, y0 = min(max(ex0, 0), im_w), min(max(ey0, 0), im_h)
    x1i, y1i = min(max(ex1 + 1, 0), im_w), min(max(ey1 + 1, 0), im_h)
    if x1i <= x0 or y1i <= y0:
        return out  # nothing of the box is in the image: the reference pastes nothing either
    width, height = max(ex1 - ex0 + 1, 1), max(ey1 - ey0 + 1, 1)
    resized = cv2.resize(padded, (width, height))
    out[y0:y1i, x0:x1i] = resized[y0 - ey0 : y1i - ey0, x0 - ex0 : x1i - ex0] > threshold
    return out
