"""Dataset import (a folder of images, or COCO instances JSON + images) and robust image loading."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from segtui.core.errors import DatasetImportError
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.records import (
    DatasetAnalysis,
    DatasetImage,
    DatasetRecord,
    JsonObject,
    SkippedFile,
)
from segtui.core.types import DatasetKind
from segtui.core.workspace import Workspace, atomic_write_text

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# Images larger than this are refused per file (a decoded 100 MP RGB image is 300 MB).
MAX_PIXELS = 100_000_000


class ImageReadError(Exception):
    """One image that cannot be decoded; the message says why."""


def load_image(path: Path) -> npt.NDArray[np.uint8]:
    """Decode an image to HxWx3 BGR uint8.

    OpenCV's IMREAD_COLOR applies the EXIF orientation, expands grayscale,
    drops alpha and reduces 16-bit samples to 8 bits, which is what the
    models expect. Reading through np.fromfile keeps unicode paths working.
    """
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror})") from exc
    if raw.size == 0:
        raise ImageReadError("empty file")
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and not _jpeg_complete(raw):
        raise ImageReadError("truncated JPEG (no end-of-image marker)")
    header = cv2.imdecode(raw, cv2.IMREAD_REDUCED_GRAYSCALE_8) if raw.size > 50_000_000 else None
    if header is not None and header.shape[0] * header.shape[1] * 64 > MAX_PIXELS:
        raise ImageReadError("image too large (over 100 megapixels)")
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError("not a readable image (corrupt or unsupported encoding)")
    return np.ascontiguousarray(image, dtype=np.uint8)


def _jpeg_complete(raw: npt.NDArray[np.uint8]) -> bool:
    # Trailing padding after EOI is common; look at the last bytes only.
    tail = raw[-64:].tobytes()
    return b"\xff\xd9" in tail


@dataclass
class ScanResult:
    """Images found under a folder, and the files skipped with their reason."""

    images: list[DatasetImage] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def scan_images(
    root: Path,
    relpaths: list[str] | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ScanResult:
    """Decode every image under `root` (recursive) or the given relative paths; skip and list bad files."""
    if relpaths is None:
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        relpaths = [p.relative_to(root).as_posix() for p in files]
    result = ScanResult()
    total = len(relpaths)
    for n, rel in enumerate(relpaths):
        if cancel is not None:
            cancel.raise_if_cancelled()
        path = root / rel
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            result.skipped.append({"path": rel, "reason": "not an image file (by extension)"})
            continue
        try:
            image = load_image(path)
        except ImageReadError as exc:
            result.skipped.append({"path": rel, "reason": str(exc)})
            continue
        h, w = image.shape[:2]
        result.images.append(DatasetImage(len(result.images), rel, w, h, None))
        if n % 16 == 0 or n == total - 1:
            progress((n + 1) / max(total, 1), f"Reading images {n + 1}/{total}")
    return result


def _analysis(
    images: list[DatasetImage], skipped: list[SkippedFile], *, annotated: bool
) -> DatasetAnalysis:
    """Image counts and sizes; an annotated dataset adds its annotation keys."""
    sizes: dict[str, int] = {}
    for image in images:
        key = f"{image.width}x{image.height}"
        sizes[key] = sizes.get(key, 0) + 1
    common = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return {
        "image_count": len(images),
        "sizes": dict(common),
        "distinct_sizes": len(sizes),
        "min_size": [min(i.width for i in images), min(i.height for i in images)]
        if images
        else None,
        "max_size": [max(i.width for i in images), max(i.height for i in images)]
        if images
        else None,
        "skipped": skipped,
        "annotated": annotated,
    }


def import_image_folder(
    ws: Workspace,
    folder: Path,
    *,
    name: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetRecord:
    """Register a not-annotated dataset: every readable image under `folder`."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise DatasetImportError(
            f"{folder} is not a folder.", "Pass a folder of images or a COCO .json file."
        )
    scan = scan_images(folder, progress=progress, cancel=cancel)
    if not scan.images:
        detail = (
            f"; {len(scan.skipped)} file(s) skipped, e.g. {_skipped_text(scan.skipped)}"
            if scan.skipped
            else ""
        )
        raise DatasetImportError(
            f"{folder} holds no readable images{detail}.",
            f"Put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder or its subfolders.",
        )
    analysis = _analysis(scan.images, scan.skipped, annotated=False)
    return ws.add_dataset(
        name=name or folder.name,
        kind=DatasetKind.IMAGES,
        root=folder,
        analysis=analysis,
        images=scan.images,
    )


def _skipped_text(skipped: list[SkippedFile], limit: int = 3) -> str:
    return ", ".join(f"{s['path']} ({s['reason']})" for s in skipped[:limit])


def _find_images_dir(ann_path: Path, file_names: list[str]) -> Path:
    candidates = [
        ann_path.parent,
        ann_path.parent / "images",
        ann_path.parent.parent / "images",
        ann_path.parent.parent,
    ]
    probe = file_names[:20]
    # The folder where most of the first files exist; missing ones are reported afterwards.
    best = max(candidates, key=lambda cand: sum((cand / f).is_file() for f in probe))
    return best


def _read_coco(ann_path: Path) -> JsonObject:
    """The COCO file's JSON, with its three lists present (else a message naming what is wrong)."""
    try:
        data = json.loads(ann_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetImportError(f"No such file: {ann_path}.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetImportError(f"{ann_path.name} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or not all(
        k in data for k in ("images", "annotations", "categories")
    ):
        raise DatasetImportError(
            f"{ann_path.name} is not a COCO instances file: it needs 'images', 'annotations' and 'categories'.",
        )
    if not data["images"]:
        raise DatasetImportError(
            f"{ann_path.name} lists no images.", "Use a COCO file with images."
        )
    return data


def _checked_annotations(
    ann_path: Path, data: JsonObject, image_ids: set[int], cat_ids: set[int]
) -> list[JsonObject]:
    """Annotations whose references hold, renumbered from 1 (id 0 yields AP 0 in pycocotools)."""
    annotations: list[JsonObject] = []
    for n, ann in enumerate(data["annotations"], start=1):
        if int(ann.get("image_id", -1)) not in image_ids:
            raise DatasetImportError(
                f"{ann_path.name}: annotation {ann.get('id')} refers to image id {ann.get('image_id')}, "
                "which is not in 'images'."
            )
        if int(ann.get("category_id", -1)) not in cat_ids:
            raise DatasetImportError(
                f"{ann_path.name}: annotation {ann.get('id')} has category {ann.get('category_id')}, "
                "which is not in 'categories'."
            )
        if "segmentation" not in ann:
            raise DatasetImportError(
                f"{ann_path.name}: annotation {ann.get('id')} has no segmentation.",
                "segtui needs instance masks (polygons or RLE).",
            )
        annotations.append(dict(ann, id=n, iscrowd=int(ann.get("iscrowd", 0))))
    return annotations


def _coco_analysis(
    ann_path: Path,
    categories: list[JsonObject],
    annotations: list[JsonObject],
    images: list[DatasetImage],
) -> DatasetAnalysis:
    """The dataset's analysis with its classes and instance counts per class."""
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in categories}
    instance_counts: dict[str, int] = {}
    for ann in annotations:
        key = names[int(ann["category_id"])]
        instance_counts[key] = instance_counts.get(key, 0) + 1
    analysis = _analysis(images, [], annotated=True)
    analysis["classes"] = [names[c] for c in sorted(names)]
    analysis["category_ids"] = sorted(names)
    analysis["instance_counts"] = instance_counts
    analysis["annotation_count"] = len(annotations)
    analysis["source_annotations"] = str(ann_path)
    return analysis


def import_coco(
    ws: Workspace,
    ann_path: Path,
    *,
    images_dir: Path | None = None,
    name: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetRecord:
    """Register an annotated dataset from a COCO instances JSON and its image folder.

    The annotations are validated (references, categories, segmentations) and a
    normalised copy is stored in the workspace: annotation ids renumbered from 1 (id 0
    silently yields AP 0 in pycocotools), iscrowd present, image sizes as decoded.
    """
    ann_path = Path(ann_path).resolve()
    data = _read_coco(ann_path)
    images = data["images"]
    try:
        file_names = [str(im["file_name"]) for im in images]
        image_ids = [int(im["id"]) for im in images]
        cat_ids = {int(c["id"]) for c in data["categories"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetImportError(
            f"{ann_path.name}: malformed image or category entry ({exc})."
        ) from exc
    if len(set(image_ids)) != len(image_ids):
        raise DatasetImportError(f"{ann_path.name}: duplicate image ids.")
    root = Path(images_dir).resolve() if images_dir else _find_images_dir(ann_path, file_names)
    missing = [f for f in file_names if not (root / f).is_file()]
    if missing:
        raise DatasetImportError(
            f"{ann_path.name} references {len(missing)} image(s) that are not in {root}, "
            f"e.g. {', '.join(missing[:3])}.",
            "Pass the image folder with --images (or fix the file_name entries).",
        )
    annotations = _checked_annotations(ann_path, data, set(image_ids), cat_ids)
    scan = scan_images(root, file_names, progress=progress, cancel=cancel)
    if scan.skipped:
        raise DatasetImportError(
            f"{len(scan.skipped)} image(s) referenced by {ann_path.name} cannot be read, "
            f"e.g. {_skipped_text(scan.skipped)}.",
            "Fix or remove those images and their annotations.",
        )
    by_name = {f: i for f, i in zip(file_names, image_ids, strict=True)}
    dataset_images = [
        DatasetImage(img.idx, img.path, img.width, img.height, by_name[img.path])
        for img in scan.images
    ]
    sizes_by_id = {d.coco_id: (d.width, d.height) for d in dataset_images}
    normalised = {
        "info": data.get("info", {}),
        "images": [
            dict(im, width=sizes_by_id[int(im["id"])][0], height=sizes_by_id[int(im["id"])][1])
            for im in images
        ],
        "annotations": annotations,
        "categories": sorted(data["categories"], key=lambda c: int(c["id"])),
    }
    analysis = _coco_analysis(ann_path, data["categories"], annotations, dataset_images)
    return _register_coco(ws, name or ann_path.stem, root, analysis, dataset_images, normalised)


def _register_coco(
    ws: Workspace,
    name: str,
    root: Path,
    analysis: DatasetAnalysis,
    images: list[DatasetImage],
    normalised: JsonObject,
) -> DatasetRecord:
    """Stage the normalised annotations and register the dataset with them."""
    staged = ws.staging_dir()
    staged_file = staged / "annotations.json"
    atomic_write_text(staged_file, json.dumps(normalised))
    try:
        return ws.add_dataset(
            name=name,
            kind=DatasetKind.COCO,
            root=root,
            analysis=analysis,
            images=images,
            annotations_file=staged_file,
        )
    finally:
        if staged.exists():
            for child in staged.iterdir():
                child.unlink()
            os.rmdir(staged)


def import_dataset(
    ws: Workspace,
    path: Path,
    *,
    images_dir: Path | None = None,
    name: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetRecord:
    """Import a folder of images, or a COCO .json with its image folder."""
    path = Path(path)
    if not path.exists():
        raise DatasetImportError(f"No such file or folder: {path}.", "Check the path.")
    if path.is_dir():
        return import_image_folder(ws, path, name=name, progress=progress, cancel=cancel)
    if path.suffix.lower() == ".json":
        return import_coco(
            ws, path, images_dir=images_dir, name=name, progress=progress, cancel=cancel
        )
    raise DatasetImportError(
        f"{path.name} is neither a folder of images nor a COCO .json file.",
        "Pass a folder of images, or a COCO instances .json (with --images for its image folder).",
    )


def image_path(dataset: DatasetRecord, image: DatasetImage) -> Path:
    return dataset.root / image.path
