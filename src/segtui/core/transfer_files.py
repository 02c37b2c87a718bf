"""What `segtui import` checks in the unpacked archive before it registers anything.

`transfer_doc` vouches for the document; these are the files it names: each model's files
must be what its checksum says, each dataset's annotations a COCO file as segtui stores
one, each report's prediction files predictions of its dataset's images (Visualize and
the HTML report decode them, mask by mask).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from segtui.core.checksums import file_checksum
from segtui.core.errors import SegtuiError
from segtui.core.json_input import json_depth
from segtui.core.json_shape import shape_problem
from segtui.core.records import JsonObject
from segtui.core.transfer_doc import (
    REEXPORT_HINT,
    REPORT_FILES,
    ExportDocument,
    annotations_member,
    model_member,
    report_member,
)
from segtui.core.types import ResultKind

#: A prediction file nests 5 levels (list, image, instances, instance, rle).
_MAX_DEPTH = 16
_REPORTS = (ResultKind.REPORT_PARENT, ResultKind.REPORT_ANNOTATIONS)


def check_checksums(document: ExportDocument, unpacked: Path) -> None:
    """Each model's files hash to its checksum: the workspace reuses a model by checksum
    (here, and when the same IR is imported later), so a false one would pass other
    files off as that model."""
    for model in document["models"]:
        xml = unpacked / model_member(model["id"], model["xml_name"])
        if file_checksum(xml, xml.with_suffix(".bin")) != model["checksum"]:
            raise SegtuiError(
                f"Model {model['id']} ({model['name']!r}) of the archive is not what its "
                "checksum says: its files were changed after the export. Nothing was imported.",
                REEXPORT_HINT,
            )


def _refused(member: str, detail: str) -> SegtuiError:
    return SegtuiError(
        f"The archive's {member} is not the predictions of a segtui report: {detail}.",
        REEXPORT_HINT,
    )


def _load(path: Path, member: str) -> object:
    raw = path.read_bytes()
    if json_depth(raw) > _MAX_DEPTH:
        raise _refused(member, f"it nests lists or objects more than {_MAX_DEPTH} levels deep")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refused(member, "it is not JSON text") from None


def _check_prediction_file(path: Path, member: str, sizes: Mapping[str, tuple[int, int]]) -> None:
    """A list of images of the dataset, at their size, whose masks have that size too."""
    from segtui.core.predictions import ImagePredictionData

    value = _load(path, member)
    problem = shape_problem(value, list[ImagePredictionData], "the list")
    if problem is not None:
        raise _refused(member, problem)
    for item in cast("list[JsonObject]", value):
        image, width, height = item["image"], item["width"], item["height"]
        if image not in sizes:
            raise _refused(member, f"it predicts {image!r}, which is not an image of its dataset")
        if sizes[image] not in ((width, height), (height, width)):  # EXIF may turn it
            raise _refused(member, f"{image!r} is {width}×{height} there, not as in its dataset")
        if any(i["rle"]["size"] != [height, width] for i in item["instances"]):
            raise _refused(member, f"a mask of {image!r} is not {width}×{height}")


def check_annotations(document: ExportDocument, unpacked: Path) -> None:
    """Each dataset's COCO annotations, checked as evaluate and the reports load them (a
    broken file imported fine and failed every later job on that dataset)."""
    from segtui.core.coco_checks import check_stored
    from segtui.core.errors import DatasetImportError
    from segtui.core.json_input import read_json

    for dataset in document["datasets"]:
        if not dataset["annotations"]:
            continue
        member = annotations_member(dataset["id"])
        try:
            check_stored(read_json(unpacked / member, "a COCO instances JSON"), member)
        except DatasetImportError as exc:
            raise SegtuiError(
                f"The archive's dataset {dataset['id']} has annotations segtui cannot use: "
                f"{exc.message}",
                REEXPORT_HINT,
            ) from exc


def check_predictions(document: ExportDocument, unpacked: Path) -> None:
    """Each report's prediction files: what Visualize and the HTML report decode."""
    projects = {p["id"]: p for p in document["projects"]}
    datasets = {d["id"]: d for d in document["datasets"]}
    for result in document["results"]:
        if result["kind"] not in _REPORTS or not result["files"]:
            continue
        dataset = datasets[projects[result["project"]]["dataset"]]
        sizes = {i["path"]: (i["width"], i["height"]) for i in dataset["images"]}
        for name in REPORT_FILES:
            member = report_member(result["id"], name)
            _check_prediction_file(unpacked / member, member, sizes)


__all__ = ["check_annotations", "check_checksums", "check_predictions"]
