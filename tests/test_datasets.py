"""Dataset import: image folders, COCO files, and the bad inputs they come with."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import workspace_files, write_scene
from PIL import Image

from segtui.core.datasets import import_dataset, load_image
from segtui.core.errors import DatasetImportError
from segtui.core.workspace import Workspace


def test_image_folder_is_scanned_recursively_with_sizes(
    workspace: Workspace, image_folder: Path
) -> None:
    record = import_dataset(workspace, image_folder)
    assert record.kind == "images" and not record.annotated
    images = workspace.dataset_images(record.id)
    assert [(i.path, i.width, i.height) for i in images] == [
        ("a.png", 64, 48),
        ("b.jpg", 40, 60),
        ("sub/c.bmp", 32, 32),
    ]
    assert record.image_count == 3 and record.analysis["skipped"] == []


def test_corrupt_and_non_image_files_are_skipped_and_listed(
    workspace: Workspace, image_folder: Path
) -> None:
    (image_folder / "notes.txt").write_text("hello")
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = (image_folder / "b.jpg").read_bytes()
    (image_folder / "cut.jpg").write_bytes(good[: len(good) // 2])
    record = import_dataset(workspace, image_folder)
    assert record.image_count == 3
    skipped = {s["path"]: s["reason"] for s in record.analysis["skipped"]}
    assert set(skipped) == {"notes.txt", "broken.png", "cut.jpg"}
    assert "not an image" in skipped["notes.txt"]
    assert "truncated" in skipped["cut.jpg"]


def test_empty_folder_is_refused_and_leaves_nothing(workspace: Workspace, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    with pytest.raises(DatasetImportError, match="no readable images") as info:
        import_dataset(workspace, empty)
    assert "readme.md" in info.value.message and info.value.hint
    assert workspace.datasets() == [] and workspace_files(workspace) == []


def test_grayscale_rgba_16bit_and_exif_rotated_images_load_as_bgr(tmp_path: Path) -> None:
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((10, 12), 77, np.uint8))
    rgba = tmp_path / "rgba.png"
    pixels = np.zeros((10, 12, 4), np.uint8)
    pixels[..., 2] = 200  # red in BGRA
    pixels[..., 3] = 128
    cv2.imwrite(str(rgba), pixels)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.full((10, 12), 65535, np.uint16))
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (0, 0, 255)).save(buffer, "JPEG", exif=exif.tobytes())
    rotated.write_bytes(buffer.getvalue())
    unicode_path = tmp_path / "снимок ü.png"
    write_scene(unicode_path, (16, 24))

    g = load_image(gray)
    assert g.shape == (10, 12, 3) and g.dtype == np.uint8 and (g == 77).all()
    r = load_image(rgba)
    assert r.shape == (10, 12, 3) and tuple(r[0, 0]) == (0, 0, 200)
    d = load_image(deep)
    assert d.dtype == np.uint8 and d.max() == 255
    assert load_image(rotated).shape == (40, 20, 3)  # width and height swapped by EXIF
    assert load_image(unicode_path).shape == (16, 24, 3)


def test_coco_dataset_is_validated_and_normalised(workspace: Workspace, coco_dataset: Path) -> None:
    record = import_dataset(workspace, coco_dataset)
    assert record.annotated and record.image_count == 2
    assert record.analysis["classes"] == ["box", "disc"]
    assert record.analysis["instance_counts"] == {"box": 2}
    assert record.annotations is not None and record.annotations.is_file()
    stored = json.loads(record.annotations.read_text())
    assert [a["id"] for a in stored["annotations"]] == [1, 2]
    assert [i.coco_id for i in workspace.dataset_images(record.id)] == [1, 2]


def test_coco_annotation_ids_from_zero_are_renumbered(
    workspace: Workspace, coco_dataset: Path
) -> None:
    data = json.loads(coco_dataset.read_text())
    for n, ann in enumerate(data["annotations"]):
        ann["id"] = n  # the first id is 0: pycocotools would silently give AP 0
    coco_dataset.write_text(json.dumps(data))
    record = import_dataset(workspace, coco_dataset)
    assert record.annotations is not None
    assert [a["id"] for a in json.loads(record.annotations.read_text())["annotations"]] == [1, 2]


def test_coco_referencing_missing_images_is_refused(
    workspace: Workspace, coco_dataset: Path
) -> None:
    (coco_dataset.parent.parent / "images" / "y.png").unlink()
    with pytest.raises(
        DatasetImportError, match=r"references 1 image\(s\) that are not in"
    ) as info:
        import_dataset(workspace, coco_dataset)
    assert "y.png" in info.value.message and "--images" in info.value.hint
    assert workspace.datasets() == [] and workspace_files(workspace) == []


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda d: d["annotations"][0].update(image_id=77),
            r"annotations\[0\] \(id 1\): image_id 77 is not the id of any entry in 'images'",
        ),
        (
            lambda d: d["annotations"][1].update(category_id=9),
            r"annotations\[1\] \(id 2\): category_id 9 is not the id of any entry in 'categories'",
        ),
        (lambda d: d.pop("categories"), "not a COCO instances file"),
    ],
)
def test_coco_bad_references_are_refused(
    workspace: Workspace,
    coco_dataset: Path,
    mutate: Callable[[dict[str, Any]], object],
    match: str,
) -> None:
    data = json.loads(coco_dataset.read_text())
    mutate(data)
    coco_dataset.write_text(json.dumps(data))
    with pytest.raises(DatasetImportError, match=match):
        import_dataset(workspace, coco_dataset)
    assert workspace.datasets() == [] and workspace_files(workspace) == []


def test_not_json_and_unknown_paths_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "a.json"
    bad.write_text("{nope")
    with pytest.raises(DatasetImportError, match="not valid JSON"):
        import_dataset(workspace, bad)
    with pytest.raises(DatasetImportError, match="No such file"):
        import_dataset(workspace, tmp_path / "missing")
    other = tmp_path / "x.csv"
    other.write_text("1,2")
    with pytest.raises(DatasetImportError, match="neither a folder"):
        import_dataset(workspace, other)
