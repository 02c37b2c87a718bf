"""COCO instances files checked entry by entry, each problem naming its entry.

What is refused: anything that would crash pycocotools or silently change a metric
(ids that are not integers, dangling references, boxes that are not 4 finite numbers
inside their image, polygons under 3 points, RLE that does not decode to its image's
size, file names outside the image folder). One such entry refuses the whole file, with
the first few named: dropping annotations quietly would change the AP the user reads.
pycocotools' C code trusts its input (garbage RLE counts or huge polygon coordinates
write or allocate out of bounds), so everything handed to it is checked here first.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from segtui.core.errors import DatasetImportError
from segtui.core.records import JsonObject

#: Problems named in a refusal; the rest are counted.
LISTED = 5
#: Ids are stored as SQLite integers.
ID_LIMIT = 2**63
#: How far a box may reach past its image's edges (rounding). A box further out is not
#: "roughly right": predictions stay inside the image, so it silently lowers box AP.
SLACK_PIXELS = 2.0
#: A polygon's outline in pixels, at most this many times its image's width + height
#: (pycocotools allocates in proportion to it).
OUTLINE_FACTOR = 100

FIX_HINT = "Fix or remove those entries in the COCO file and import it again."
EXPORT_HINT = "Export the dataset as a COCO instances JSON (object detection / segmentation)."


@dataclass(frozen=True)
class CocoImage:
    """One checked entry of 'images'."""

    index: int
    id: int
    file_name: str
    #: As the file states them (None where absent); the decoded size is what counts.
    declared: tuple[int, int] | None
    entry: JsonObject

    @property
    def label(self) -> str:
        return f"images[{self.index}] (id {self.id})"


@dataclass(frozen=True)
class CocoFile:
    """A COCO file whose entries passed the checks that need no image: types, ids, references."""

    source: str
    images: tuple[CocoImage, ...]
    categories: tuple[JsonObject, ...]
    #: Each with its index in the file's 'annotations'.
    annotations: tuple[tuple[int, JsonObject], ...]
    info: object


class Problems:
    """Problems found in a file: the first few kept word for word, the rest counted."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.listed: list[str] = []
        self.count = 0

    def add(self, entry: str, text: str) -> None:
        self.count += 1
        if len(self.listed) < LISTED:
            self.listed.append(f"{entry}: {text}")

    def raise_if_any(self, hint: str = FIX_HINT) -> None:
        if not self.count:
            return
        if self.count == 1:
            raise DatasetImportError(f"{self.source}: {self.listed[0]}.", hint)
        more = self.count - len(self.listed)
        tail = f"; and {more} more" if more else ""
        raise DatasetImportError(
            f"{self.source} has {self.count} invalid entries: {'; '.join(self.listed)}{tail}.",
            hint,
        )


# -- values ----------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _finite_numbers(values: list[Any]) -> bool:
    """All ints or floats (no bools, no strings), none NaN or infinite: fast on long polygons."""
    if not set(map(type, values)) <= {int, float}:
        return False
    try:
        return math.isfinite(sum(values))  # NaN and infinity carry through the sum
    except OverflowError:  # an integer beyond any float
        return False


def _valid_id(value: object) -> bool:
    return _is_int(value) and 0 <= value < ID_LIMIT  # type: ignore[operator]


def kind(value: object) -> str:
    """The JSON type of a value, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def shown(value: object) -> str:
    """An offending value as JSON, cut short; lists and objects by their kind."""
    if isinstance(value, dict) or (
        isinstance(value, list)
        and not all(
            (isinstance(v, int | float) and not isinstance(v, bool)) or v is None for v in value[:8]
        )
    ):
        return kind(value)
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= 48 else text[:45] + "..."


def _id_text(key: str, value: object) -> str:
    if value is None:
        got = "missing"
    elif _is_int(value) and value >= 0:  # type: ignore[operator]
        got = "too large"
    else:
        got = f"not {shown(value)}"
    return f"{key} must be a non-negative integer ({got})"


def _label(section: str, index: int, ident: object) -> str:
    return f"{section}[{index}] (id {ident})" if _valid_id(ident) else f"{section}[{index}]"


# -- entries ---------------------------------------------------------------------


def _image_problem(entry: JsonObject) -> str | None:
    name = entry.get("file_name")
    if not isinstance(name, str) or not name.strip():
        return f"file_name must be a non-empty string (not {shown(name)})"
    if "\x00" in name:
        return "file_name must not contain a NUL character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a \udXXX escape in the JSON)
        return "file_name is not valid Unicode text"
    width, height = entry.get("width"), entry.get("height")
    for key, value in (("width", width), ("height", height)):
        if value is not None and not (_is_int(value) and value > 0):
            return f"{key} must be a positive integer (not {shown(value)})"
    return None


def _images(items: list[Any], problems: Problems) -> list[CocoImage]:
    found: list[CocoImage] = []
    by_id: dict[int, int] = {}
    by_name: dict[str, int] = {}
    for index, entry in enumerate(items):
        if not isinstance(entry, dict):
            problems.add(f"images[{index}]", f"must be an object, not {kind(entry)}")
            continue
        ident: Any = entry.get("id")
        label = _label("images", index, ident)
        text = None if _valid_id(ident) else _id_text("id", ident)
        if text is None and ident in by_id:
            text = f"duplicate id (images[{by_id[ident]}] has it too)"
        text = text or _image_problem(entry)
        name: Any = entry.get("file_name")
        if text is None and name in by_name:
            text = f"file_name {shown(name)} is also the file of images[{by_name[name]}]"
        if text is not None:
            problems.add(label, text)
            continue
        by_id[int(ident)] = by_name[str(name)] = index
        width, height = entry.get("width"), entry.get("height")
        declared = (int(width), int(height)) if width is not None and height is not None else None
        found.append(CocoImage(index, int(ident), str(name), declared, entry))
    return found


def _categories(items: list[Any], problems: Problems) -> list[JsonObject]:
    found: list[JsonObject] = []
    by_id: dict[int, int] = {}
    for index, entry in enumerate(items):
        if not isinstance(entry, dict):
            problems.add(f"categories[{index}]", f"must be an object, not {kind(entry)}")
            continue
        ident: Any = entry.get("id")
        label = _label("categories", index, ident)
        name: Any = entry.get("name")
        if not _valid_id(ident):
            problems.add(label, _id_text("id", ident))
        elif ident in by_id:
            problems.add(label, f"duplicate id (categories[{by_id[ident]}] has it too)")
        elif name is not None and not isinstance(name, str):
            problems.add(label, f"name must be a string (not {shown(name)})")
        else:
            by_id[int(ident)] = index
            found.append(entry)
    return found


def _reference_problem(key: str, value: object, known: Mapping[int, object], where: str) -> str:
    if not _valid_id(value):
        return _id_text(key, value)
    return "" if value in known else f"{key} {value} is not the id of any entry in '{where}'"


def _bbox_problem(bbox: object) -> str | None:
    if (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(_is_finite(v) for v in bbox)
        and bbox[2] >= 0
        and bbox[3] >= 0
    ):
        return None
    return (
        "bbox must be 4 finite numbers [x, y, width, height] with non-negative width "
        f"and height (not {shown(bbox)})"
    )


def _polygons_problem(polygons: list[Any]) -> str | None:
    if not polygons:
        return "segmentation is an empty list (no polygon)"
    for n, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not _finite_numbers(polygon):
            return f"segmentation[{n}] must be a list of finite numbers (x, y, x, y, ...)"
        if len(polygon) % 2:
            return f"segmentation[{n}] has an odd count of numbers ({len(polygon)}): a polygon is x, y pairs"
        if len(polygon) < 6:
            return f"segmentation[{n}] has {len(polygon) // 2} point(s): a polygon needs at least 3"
    return None


def rle_counts(text: str) -> list[int] | None:
    """The run lengths of a compressed COCO RLE string (pycocotools' rleFrString), None if malformed."""
    counts: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            return None
        value |= (code & 0x1F) << (5 * shift)
        shift += 1
        if code & 0x20:
            continue
        if code & 0x10:
            value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    return None if shift else counts


def _rle_problem(rle: JsonObject) -> str | None:
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)):
        return f"RLE size must be [height, width], two positive integers (not {shown(size)})"
    counts = rle.get("counts")
    runs: list[int] | None
    if isinstance(counts, str):
        runs = rle_counts(counts)
        if runs is None:
            return "RLE counts is not a valid compressed RLE string"
    elif isinstance(counts, list) and all(_is_int(v) for v in counts):
        runs = counts
    else:
        return f"RLE counts must be a string or a list of integers (not {shown(counts)})"
    pixels = size[0] * size[1]
    if any(v < 0 for v in runs) or sum(runs) != pixels:
        return f"RLE counts do not decode to its size {size[0]}×{size[1]} (corrupt RLE)"
    return None


def _segmentation_problem(segmentation: object) -> str | None:
    if isinstance(segmentation, list):
        return _polygons_problem(segmentation)
    if isinstance(segmentation, dict):
        return _rle_problem(segmentation)
    return (
        "segmentation must be polygons (a list of lists) or RLE (an object), "
        f"not {kind(segmentation)}"
    )


def _annotation_problem(
    entry: JsonObject, images: Mapping[int, object], categories: Mapping[int, object]
) -> str | None:
    """The first thing wrong with one annotation, in words (None: nothing)."""
    if "id" in entry and not _valid_id(entry["id"]):
        return _id_text("id", entry["id"])
    text = _reference_problem("image_id", entry.get("image_id"), images, "images")
    text = text or _reference_problem(
        "category_id", entry.get("category_id"), categories, "categories"
    )
    if text:
        return text
    iscrowd = entry.get("iscrowd", 0)
    if not (_is_int(iscrowd) and iscrowd in (0, 1)):
        return f"iscrowd must be 0 or 1 (not {shown(iscrowd)})"
    if "area" in entry and not (_is_finite(entry["area"]) and entry["area"] >= 0):
        return f"area must be a finite number ≥ 0 (not {shown(entry['area'])})"
    if "bbox" in entry and (box_text := _bbox_problem(entry["bbox"])):
        return box_text
    if "segmentation" not in entry:
        return "it has no segmentation (segtui needs instance masks: polygons or RLE)"
    return _segmentation_problem(entry["segmentation"])


def _annotations(
    items: list[Any],
    images: Mapping[int, object],
    categories: Mapping[int, object],
    problems: Problems,
) -> list[tuple[int, JsonObject]]:
    found: list[tuple[int, JsonObject]] = []
    for index, entry in enumerate(items):
        if not isinstance(entry, dict):
            problems.add(f"annotations[{index}]", f"must be an object, not {kind(entry)}")
            continue
        text = _annotation_problem(entry, images, categories)
        if text is not None:
            problems.add(_label("annotations", index, entry.get("id")), text)
        else:
            found.append((index, entry))
    return found


def _sections(data: object, source: str) -> tuple[list[Any], list[Any], list[Any]]:
    """The file's images, annotations and categories lists (else a message naming what is wrong)."""
    needs = "it needs 'images', 'annotations' and 'categories'"
    if not isinstance(data, dict):
        raise DatasetImportError(
            f"{source} is not a COCO instances file: its top level is {kind(data)}, "
            f"not an object ({needs}).",
            EXPORT_HINT,
        )
    if "images" not in data:
        raise DatasetImportError(f"{source} is not a COCO instances file: {needs}.", EXPORT_HINT)
    for key in ("images", "annotations", "categories"):
        if key in data and not isinstance(data[key], list):
            raise DatasetImportError(
                f"{source}: '{key}' must be a list, not {kind(data[key])}.", FIX_HINT
            )
    if not data["images"]:
        raise DatasetImportError(f"{source} lists no images.", "Use a COCO file with images.")
    annotations: list[Any] = data.get("annotations", [])
    if annotations and "categories" not in data:
        raise DatasetImportError(
            f"{source} is not a COCO instances file: it has annotations but no 'categories' ({needs}).",
            EXPORT_HINT,
        )
    return data["images"], annotations, data.get("categories", [])


def check_coco(data: object, source: str) -> CocoFile:
    """Types, ids and references of every entry; refuses the file naming the first problems."""
    images_list, annotations_list, categories_list = _sections(data, source)
    problems = Problems(source)
    images = _images(images_list, problems)
    categories = _categories(categories_list, problems)
    problems.raise_if_any()
    annotations = _annotations(
        annotations_list,
        {im.id: im for im in images},
        {int(c["id"]): c for c in categories},
        problems,
    )
    problems.raise_if_any()
    info = data.get("info", {}) if isinstance(data, dict) else {}
    return CocoFile(source, tuple(images), tuple(categories), tuple(annotations), info)


# -- against the image folder and the decoded sizes ------------------------------


def outside_folder(root: Path, file_name: str) -> bool:
    """Whether a file name leads (symbolic links followed) outside `root`, a resolved folder.

    Decided from the name and the links alone, so the answer and its message are the
    same whether or not something exists out there.
    """
    target = Path(os.path.realpath(root / file_name))
    return target == root or not target.is_relative_to(root)


def check_paths(coco: CocoFile, root: Path) -> None:
    """Every file_name stays inside the image folder, and names a file no other entry names."""
    problems = Problems(coco.source)
    seen: dict[Path, str] = {}
    for image in coco.images:
        if outside_folder(root, image.file_name):
            problems.add(image.label, f"file_name must name a file inside the image folder {root}")
            continue
        real = Path(os.path.realpath(root / image.file_name))
        if real in seen:
            problems.add(image.label, f"file_name names the same file as {seen[real]}")
        seen[real] = image.label
    problems.raise_if_any("Use file names relative to the image folder, without '..'.")


def _polygon_placement(polygons: list[list[float]], width: int, height: int) -> str | None:
    for n, polygon in enumerate(polygons):
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        low, high = points.min(axis=0), points.max(axis=0)
        if low[0] < -width or high[0] > 2 * width or low[1] < -height or high[1] > 2 * height:
            return f"segmentation[{n}] has points far outside its {width}×{height} image"
        # pycocotools rasterises each edge in steps of its longer side (5× upsampled).
        steps = np.abs(np.roll(points, -1, axis=0) - points).max(axis=1)
        outline = float(steps.sum())
        if outline > OUTLINE_FACTOR * (width + height):
            return f"segmentation[{n}] has an outline of {outline:.0f} pixels, too long for its {width}×{height} image"
    return None


def _placement_problem(entry: JsonObject, width: int, height: int) -> str | None:
    """Whether an annotation fits its image: RLE of its size, box and polygons inside it."""
    segmentation = entry["segmentation"]
    if isinstance(segmentation, dict) and segmentation["size"] != [height, width]:
        size = segmentation["size"]
        return f"RLE size [{size[0]}, {size[1]}] is not its image's [height, width] [{height}, {width}]"
    bbox = entry.get("bbox")
    if bbox is not None:
        x, y, w, h = bbox
        slack = SLACK_PIXELS
        if x < -slack or y < -slack or x + w > width + slack or y + h > height + slack:
            return f"bbox {shown(bbox)} lies outside its {width}×{height} image"
    if isinstance(segmentation, list):
        return _polygon_placement(segmentation, width, height)
    return None


def check_geometry(coco: CocoFile, sizes: Mapping[int, tuple[int, int]]) -> None:
    """Sizes stated in the file agree with the decoded images, and annotations fit in them."""
    problems = Problems(coco.source)
    for image in coco.images:
        width, height = sizes[image.id]
        if image.declared is not None and image.declared not in ((width, height), (height, width)):
            declared = f"{image.declared[0]}×{image.declared[1]}"
            problems.add(
                image.label,
                f"width×height {declared} differ from the image file's {width}×{height}",
            )
    for index, entry in coco.annotations:
        text = _placement_problem(entry, *sizes[entry["image_id"]])
        if text is not None:
            problems.add(_label("annotations", index, entry.get("id")), text)
    problems.raise_if_any()


# -- the normalised copy ---------------------------------------------------------


def segmentation_rle(segmentation: Any, height: int, width: int) -> Any:
    """A checked segmentation as one pycocotools RLE (polygons merged)."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return {"size": segmentation["size"], "counts": counts.encode("ascii")}


def _completed(entry: JsonObject, number: int, height: int, width: int) -> JsonObject:
    """An annotation numbered from 1 (id 0 yields AP 0 in pycocotools), with iscrowd, area, bbox."""
    done = dict(entry, id=number, iscrowd=int(entry.get("iscrowd", 0)))
    if "area" not in entry or "bbox" not in entry:
        # pycocotools' bbox evaluation needs the box, its area ranges the area.
        rle = segmentation_rle(entry["segmentation"], height, width)
        done.setdefault("area", float(mask_utils.area(rle)))
        done.setdefault("bbox", [float(v) for v in mask_utils.toBbox(rle)])
    return done


def normalised(coco: CocoFile, sizes: Mapping[int, tuple[int, int]]) -> JsonObject:
    """The copy segtui keeps: images at their decoded sizes, annotations completed."""
    annotations = [
        _completed(entry, n, sizes[entry["image_id"]][1], sizes[entry["image_id"]][0])
        for n, (_, entry) in enumerate(coco.annotations, start=1)
    ]
    return {
        "info": coco.info,
        "images": [
            dict(im.entry, width=sizes[im.id][0], height=sizes[im.id][1]) for im in coco.images
        ],
        "annotations": annotations,
        "categories": sorted(coco.categories, key=lambda c: int(c["id"])),
    }


def check_stored(data: object, source: str) -> JsonObject:
    """A stored normalised copy, checked as at import (a file from an older segtui, or edited)."""
    coco = check_coco(data, source)
    sizes: dict[int, tuple[int, int]] = {}
    problems = Problems(source)
    for image in coco.images:
        if image.declared is None:
            problems.add(image.label, "width and height are missing")
        else:
            sizes[image.id] = image.declared
    problems.raise_if_any("Import the dataset again.")
    check_geometry(coco, sizes)
    return normalised(coco, sizes)
