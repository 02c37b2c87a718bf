"""The bundled Mask R-CNN sample scored twice: independently, with the reference paste, and by segtui.

The independent side uses none of segtui's code: plain OpenVINO (CPU,
INFERENCE_PRECISION_HINT=f32) on the 200 images of sample_projects/shapes, its own
preprocessing (the model's input is 256x256 BGR 0..255, normalised inside the graph),
its own OMZ decoding (labels [N], boxes [N,5] with the score, masks [N,28,28] per box;
score >= 0.05, the usual COCO cut), its own copy of the reference paste (OMZ Accuracy
Checker's `segm_postprocess`, as Detectron and torchvision paste), and pycocotools'
COCOeval (segm and bbox). Then segtui's `evaluate_project` on the annotated sample
project at f32. Prints both and the difference; exits 1 if the mask AP differs by more
than 0.003.

    python benchmarks/omz_reference_eval.py
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import openvino as ov
from _common import sample, scratch_workspace
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segtui.core.accuracy import evaluate_project
from segtui.core.types import Precision

SAMPLE = Path(__file__).resolve().parents[1] / "sample_projects" / "shapes"
SCORE_CUT = 0.05
MASK_THRESHOLD = 0.5
TOLERANCE = 0.003


def expand_box(box: npt.NDArray[np.float64], scale: float) -> npt.NDArray[np.float64]:
    """Accuracy Checker's expand_boxes for one box: scaled about its centre."""
    w_half = (box[2] - box[0]) * 0.5 * scale
    h_half = (box[3] - box[1]) * 0.5 * scale
    x_c = (box[2] + box[0]) * 0.5
    y_c = (box[3] + box[1]) * 0.5
    return np.array([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half])


def segm_postprocess(
    box: npt.NDArray[np.float64], raw_cls_mask: npt.NDArray[np.float32], im_h: int, im_w: int
) -> npt.NDArray[np.uint8]:
    """Accuracy Checker's mask_rcnn `segm_postprocess` (full-image mask), line for line."""
    raw_cls_mask = np.pad(raw_cls_mask, ((1, 1), (1, 1)), "constant", constant_values=0)
    extended_box = expand_box(box, raw_cls_mask.shape[0] / (raw_cls_mask.shape[0] - 2.0))
    extended_box = extended_box.astype(int)
    w, h = np.maximum(extended_box[2:] - extended_box[:2] + 1, 1)
    x0, y0 = np.clip(extended_box[:2], a_min=0, a_max=[im_w, im_h])
    x1, y1 = np.clip(extended_box[2:] + 1, a_min=0, a_max=[im_w, im_h])
    mask = (cv2.resize(raw_cls_mask, (int(w), int(h))) > MASK_THRESHOLD).astype(np.uint8)
    im_mask = np.zeros((im_h, im_w), dtype=np.uint8)
    im_mask[y0:y1, x0:x1] = mask[
        (y0 - extended_box[1]) : (y1 - extended_box[1]),
        (x0 - extended_box[0]) : (x1 - extended_box[0]),
    ]
    return im_mask


def compiled_model(core: ov.Core, xml: Path) -> ov.CompiledModel:
    return core.compile_model(core.read_model(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def image_results(
    compiled: ov.CompiledModel, image_path: Path, image_id: int, category_ids: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """COCO bbox and segm results of one image."""
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {image_path}")
    im_h, im_w = bgr.shape[:2]
    in_h, in_w = (int(d) for d in compiled.inputs[0].get_partial_shape().to_shape()[2:])
    resized = cv2.resize(bgr, (in_w, in_h)) if (im_h, im_w) != (in_h, in_w) else bgr
    tensor = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)
    out = compiled(tensor)
    labels = np.asarray(out["labels"]).reshape(-1).astype(np.int64)
    boxes = np.asarray(out["boxes"], np.float32).reshape(-1, 5)
    masks = np.asarray(out["masks"], np.float32).reshape(-1, *out["masks"].shape[-2:])
    bbox_res: list[dict[str, Any]] = []
    segm_res: list[dict[str, Any]] = []
    for label, row, raw_mask in zip(labels, boxes, masks, strict=False):
        score = float(row[4])
        if score < SCORE_CUT or label < 0 or not (row[2] > row[0] and row[3] > row[1]):
            continue
        box = row[:4].astype(np.float64) * [im_w / in_w, im_h / in_h, im_w / in_w, im_h / in_h]
        category = category_ids[int(label)]
        x1, y1 = max(0.0, min(box[0], im_w)), max(0.0, min(box[1], im_h))
        x2, y2 = max(0.0, min(box[2], im_w)), max(0.0, min(box[3], im_h))
        bbox_res.append(
            {
                "image_id": image_id,
                "category_id": category,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": score,
            }
        )
        rle = mask_utils.encode(np.asfortranarray(segm_postprocess(box, raw_mask, im_h, im_w)))
        rle["counts"] = rle["counts"].decode("ascii")
        segm_res.append(
            {"image_id": image_id, "category_id": category, "segmentation": rle, "score": score}
        )
    return bbox_res, segm_res


def coco_ap(gt: COCO, results: list[dict[str, Any]], iou_type: str) -> tuple[float, float]:
    """(AP@[.5:.95], AP50) by pycocotools."""
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])


def independent(core: ov.Core) -> tuple[dict[str, float], int, str]:
    """Mask and box AP of the sample without segtui: metrics, detections, inference precision."""
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(SAMPLE / manifest["annotations"]))
    names = (SAMPLE / manifest["classes"]).read_text().split()
    by_name = {c["name"]: int(c["id"]) for c in gt.loadCats(gt.getCatIds())}
    category_ids = [by_name[name] for name in names]
    compiled = compiled_model(core, SAMPLE / manifest["model"])
    bbox_res: list[dict[str, Any]] = []
    segm_res: list[dict[str, Any]] = []
    for image_id in sorted(gt.getImgIds()):
        info = gt.loadImgs(image_id)[0]
        path = SAMPLE / manifest["images"] / info["file_name"]
        boxes, segms = image_results(compiled, path, image_id, category_ids)
        bbox_res += boxes
        segm_res += segms
    mask_ap, mask_ap50 = coco_ap(gt, segm_res, "segm")
    box_ap, box_ap50 = coco_ap(gt, bbox_res, "bbox")
    metrics = {"mask_ap": mask_ap, "mask_ap50": mask_ap50, "box_ap": box_ap, "box_ap50": box_ap50}
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type: f32, bf16, ...
    return metrics, len(segm_res), str(getattr(hint, "to_string", lambda: hint)())


def main() -> int:
    core = ov.Core()
    print(f"CPU: {core.get_property('CPU', 'FULL_DEVICE_NAME')}; OpenVINO {ov.get_version()}")
    start = time.perf_counter()
    reference, detections, precision = independent(core)
    print(
        f"independent (plain OpenVINO, INFERENCE_PRECISION_HINT={precision}, Accuracy Checker "
        f"paste, pycocotools): {detections} detections, {time.perf_counter() - start:.1f} s"
    )
    ws = scratch_workspace()
    start = time.perf_counter()
    result = evaluate_project(ws, sample(ws).annotated.id, precision=Precision.F32)
    ours = result["metrics"]
    print(
        f"segtui evaluate_project (precision {result['precision']}, {result['device']}): "
        f"{ours['detections']} detections, {time.perf_counter() - start:.1f} s"
    )
    print(f"{'':10s} {'reference':>10s} {'segtui':>10s} {'difference':>12s}")
    for key in ("mask_ap", "mask_ap50", "box_ap", "box_ap50"):
        theirs, mine = reference[key], float(ours[key])
        print(f"{key:10s} {theirs:10.6f} {mine:10.6f} {mine - theirs:+12.6f}")
    difference = float(ours["mask_ap"]) - reference["mask_ap"]
    if abs(difference) > TOLERANCE:
        print(f"FAIL: mask AP differs by {difference:+.4f} (more than ±{TOLERANCE})")
        return 1
    print(f"OK: mask AP within ±{TOLERANCE} of the independent evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
