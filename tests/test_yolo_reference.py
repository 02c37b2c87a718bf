"""segtui's YOLO-seg decoding against Ultralytics' own predictions of the YOLO sample.

The fixture (tests/data/yolo_reference/ultralytics_predictions.json) is what
`tools/ultralytics_reference.py` recorded from Ultralytics' `predict(retina_masks=True)`
at f32: every 10th bundled validation image (256x256, no letterbox) and four
non-square crops (letterboxed). segtui runs the same IR at f32 through its own
loading, preprocessing and decoding, and must find the same detections, the same
boxes and the same mask pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict, cast

import numpy as np
import pytest

from segtui.core.inference import run_inference
from segtui.core.models import load_model
from segtui.core.predictions import ImagePrediction, Instance, Rle, decode_mask, encode_mask
from segtui.core.predictions import mask_ious as rle_ious
from segtui.core.types import Precision

REPO = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "yolo_reference"
FIXTURE = REFERENCE_DIR / "ultralytics_predictions.json"
MODEL_DIR = REPO / "sample_projects" / "shapes-yolo" / "model"
VAL_IMAGES = REPO / "sample_projects" / "shapes" / "images"
REGENERATE = "YOLO_OFFLINE=1 python tools/ultralytics_reference.py (in the `train` environment)"

Kind = Literal["square", "letterboxed"]
#: Box agreement in original px: exact mapping on square images; through the letterbox
#: float32 (Ultralytics, torch) against float64 (segtui) arithmetic on scaled coordinates.
BOX_TOLERANCE: dict[Kind, float] = {"square": 0.1, "letterboxed": 0.5}
SCORE_TOLERANCE = 1e-3
MEAN_MASK_IOU = 0.99
MIN_MASK_IOU = 0.9
#: The sample's square input side (Ultralytics' imgsz).
INPUT_SIZE = 256


class ReferenceDetection(TypedDict):
    class_id: int
    score: float
    box: list[float]
    rle: Rle


class ReferenceImage(TypedDict):
    file: str
    kind: Kind
    width: int
    height: int
    sha256: str
    detections: list[ReferenceDetection]


class ReferenceModel(TypedDict):
    xml: str
    xml_sha256: str
    bin_sha256: str


class ReferenceSettings(TypedDict):
    imgsz: int
    conf: float
    iou: float
    max_det: int
    agnostic_nms: bool
    retina_masks: bool
    device: str


class Reference(TypedDict):
    ultralytics: str
    openvino: str
    torch: str
    model: ReferenceModel
    settings: ReferenceSettings
    precision: str
    date: str
    images: list[ReferenceImage]


@dataclass(frozen=True)
class Pair:
    """One Ultralytics detection and the segtui detection matched to it."""

    image: str
    kind: Kind
    reference: Instance
    ours: Instance


@dataclass(frozen=True)
class Compared:
    """Both sides' detections per image, and the one-to-one pairs found between them."""

    reference: list[ReferenceImage]
    ours: list[ImagePrediction]
    pairs: list[Pair]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_reference() -> Reference:
    return cast(Reference, json.loads(FIXTURE.read_text(encoding="utf-8")))


def _image_path(image: ReferenceImage) -> Path:
    return (VAL_IMAGES if image["kind"] == "square" else REFERENCE_DIR) / image["file"]


def _sample_model_or_skip(reference: Reference) -> Path:
    """The sample IR the fixture was made from; skip when it is absent or another one."""
    xml = MODEL_DIR / reference["model"]["xml"]
    if not xml.is_file() or not xml.with_suffix(".bin").is_file():
        pytest.skip(f"the YOLO sample model {xml.relative_to(REPO)} is missing")
    if (_sha256(xml), _sha256(xml.with_suffix(".bin"))) != (
        reference["model"]["xml_sha256"],
        reference["model"]["bin_sha256"],
    ):
        pytest.skip(f"the YOLO sample model changed since the fixture was made; run {REGENERATE}")
    return xml


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def _match(
    reference: Sequence[Instance], ours: Sequence[Instance]
) -> list[tuple[Instance, Instance]]:
    """Greedy one-to-one: each reference detection, best score first, takes the unmatched
    segtui detection of its class with the highest box IoU (at least 0.5)."""
    free = list(ours)
    pairs = []
    for ref in sorted(reference, key=lambda inst: -inst.score):
        candidates = [o for o in free if o.class_id == ref.class_id]
        if not candidates:
            continue
        best = max(candidates, key=lambda o: _box_iou(ref.box, o.box))
        if _box_iou(ref.box, best.box) >= 0.5:
            pairs.append((ref, best))
            free.remove(best)
    return pairs


def _as_instance(detection: ReferenceDetection) -> Instance:
    x1, y1, x2, y2 = detection["box"]
    return Instance(detection["class_id"], detection["score"], (x1, y1, x2, y2), detection["rle"])


def compare(xml: Path, reference: Reference) -> Compared:
    """Run segtui on the fixture's images at f32 and pair its detections with Ultralytics'."""
    loaded = load_model(xml)
    images = [(image["file"], _image_path(image)) for image in reference["images"]]
    run = run_inference(
        loaded.model,
        loaded.adapter,
        images,
        precision=Precision.F32,
        score_threshold=reference["settings"]["conf"],
    )
    assert run.precision == "f32"
    pairs = [
        Pair(image["file"], image["kind"], ref, ours)
        for image, predicted in zip(reference["images"], run.predictions, strict=True)
        for ref, ours in _match([_as_instance(d) for d in image["detections"]], predicted.instances)
    ]
    return Compared(reference["images"], run.predictions, pairs)


def mask_ious(pairs: Sequence[Pair]) -> list[float]:
    return [float(rle_ious([p.reference.rle], [p.ours.rle])[0, 0]) for p in pairs]


def box_errors(pairs: Sequence[Pair], kind: Kind) -> list[float]:
    return [
        max(abs(r - o) for r, o in zip(p.reference.box, p.ours.box, strict=True))
        for p in pairs
        if p.kind == kind
    ]


@pytest.fixture(scope="module")
def compared() -> Compared:
    reference = _load_reference()
    return compare(_sample_model_or_skip(reference), reference)


def test_fixture_describes_its_images_and_ultralytics_settings() -> None:
    reference = _load_reference()
    assert reference["settings"]["retina_masks"] is True
    assert reference["settings"]["imgsz"] == 256
    assert reference["precision"].startswith("f32")
    kinds = [image["kind"] for image in reference["images"]]
    assert kinds.count("square") == 20 and kinds.count("letterboxed") == 4
    for image in reference["images"]:
        path = _image_path(image)
        assert _sha256(path) == image["sha256"], f"{path} is not the image the fixture saw"
        for detection in image["detections"]:
            assert detection["rle"]["size"] == [image["height"], image["width"]]


def test_same_detections_and_classes_on_every_image(compared: Compared) -> None:
    total = 0
    for image, ours in zip(compared.reference, compared.ours, strict=True):
        theirs = sorted(d["class_id"] for d in image["detections"])
        assert sorted(i.class_id for i in ours.instances) == theirs, image["file"]
        matched = sum(1 for p in compared.pairs if p.image == image["file"])
        assert matched == len(theirs), f"{image['file']}: {matched} of {len(theirs)} matched"
        total += len(theirs)
    # The comparison means something only if the model finds things, letterboxed too.
    assert total >= 40
    assert sum(1 for p in compared.pairs if p.kind == "letterboxed") >= 4


def test_scores_and_boxes_agree(compared: Compared) -> None:
    score_error = max(abs(p.reference.score - p.ours.score) for p in compared.pairs)
    assert score_error <= SCORE_TOLERANCE
    for kind, tolerance in BOX_TOLERANCE.items():
        errors = box_errors(compared.pairs, kind)
        print(f"{kind}: {len(errors)} boxes, max error {max(errors):.4f} px")
        assert max(errors) <= tolerance, kind


def test_masks_agree_pixel_for_pixel_on_average(compared: Compared) -> None:
    ious = mask_ious(compared.pairs)
    print(f"mask IoU over {len(ious)}: mean {np.mean(ious):.5f}, min {min(ious):.5f}")
    assert np.mean(ious) >= MEAN_MASK_IOU
    assert min(ious) >= MIN_MASK_IOU


def _shrunk_at_box_edge(instance: Instance) -> Instance:
    """The mask without its outermost pixel row/column on each side of the box: what
    cropping by prototype cells instead of image pixels did to segtui's masks before."""
    mask = decode_mask(instance.rle).astype(bool)
    x1, y1, x2, y2 = (int(np.ceil(v)) for v in instance.box)
    keep = np.zeros_like(mask)
    keep[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1] = True
    return Instance(instance.class_id, instance.score, instance.box, encode_mask(mask & keep))


def test_one_pixel_less_at_the_box_edge_fails_the_mask_threshold(compared: Compared) -> None:
    shrunk = [
        Pair(p.image, p.kind, p.reference, _shrunk_at_box_edge(p.ours)) for p in compared.pairs
    ]
    mean = float(np.mean(mask_ious(shrunk)))
    print(f"mask IoU with a 1 px frame of the box removed: mean {mean:.5f}")
    assert mean < MEAN_MASK_IOU


def test_nominal_letterbox_scale_fails_the_box_tolerance(compared: Compared) -> None:
    """Mapping letterboxed boxes back by the nominal scale, as segtui did before, instead of
    the gain each axis really got, moves them by more than the tolerance."""
    worst = 0.0
    for pair in compared.pairs:
        if pair.kind != "letterboxed":
            continue
        image = next(i for i in compared.reference if i["file"] == pair.image)
        h, w = image["height"], image["width"]
        scale = min(INPUT_SIZE / h, INPUT_SIZE / w)
        gain_x, gain_y = max(round(w * scale), 1) / w, max(round(h * scale), 1) / h
        x1, y1, x2, y2 = pair.ours.box
        nominal = (
            x1 * gain_x / scale,
            y1 * gain_y / scale,
            x2 * gain_x / scale,
            y2 * gain_y / scale,
        )
        worst = max(worst, *(abs(r - n) for r, n in zip(pair.reference.box, nominal, strict=True)))
    print(f"letterboxed boxes by the nominal scale: max error {worst:.3f} px")
    assert worst > BOX_TOLERANCE["letterboxed"]
