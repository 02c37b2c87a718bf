"""Dataset import: image folders, COCO files, and the bad inputs they come with."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import workspace_files, write_scene
from PIL import Image
from tiny_models import Det, build_omz_maskrcnn

from segtui.cli import main
from segtui.core.datasets import import_dataset, load_image
from segtui.core.errors import DatasetImportError
from segtui.core.evaluation import load_annotations
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


def test_wrong_extension_inside_links_and_exif_rotation_are_still_images(
    workspace: Workspace, image_folder: Path
) -> None:
    folder = image_folder
    write_scene(folder / "png.png", (20, 30))
    (folder / "png.png").rename(folder / "png.jpg")
    (folder / "alias.png").symlink_to(folder / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° on display: the header's size is swapped when decoded
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (0, 0, 255)).save(buffer, "JPEG", exif=exif.tobytes())
    (folder / "rotated.jpg").write_bytes(buffer.getvalue())
    record = import_dataset(workspace, folder)
    images = workspace.dataset_images(record.id)
    assert [(i.path, i.width, i.height) for i in images] == [
        ("a.png", 64, 48),
        ("alias.png", 64, 48),
        ("b.jpg", 40, 60),
        ("png.jpg", 30, 20),
        ("rotated.jpg", 20, 40),
        ("sub/c.bmp", 32, 32),
    ]
    assert record.analysis["skipped"] == []


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


def _rewrite(coco_dataset: Path, mutate: Callable[[dict[str, Any]], object]) -> None:
    data = json.loads(coco_dataset.read_text())
    mutate(data)
    coco_dataset.write_text(json.dumps(data))


def test_coco_polygons_without_box_or_area_get_them_from_the_mask(
    workspace: Workspace, coco_dataset: Path
) -> None:
    def polygons(data: dict[str, Any]) -> None:
        for ann in data["annotations"]:
            del ann["bbox"], ann["area"], ann["id"]
        data["annotations"][0]["segmentation"] = [[8, 6, 32, 6, 32, 24, 8, 24]]
        data["annotations"][0]["bbox"] = [-1.5, -1, 10, 10]  # within rounding of the edge
        data["info"] = {"description": "[" * 100_000}  # brackets in a string do not nest

    _rewrite(coco_dataset, polygons)
    record = import_dataset(workspace, coco_dataset)
    assert record.annotations is not None
    stored = json.loads(record.annotations.read_text())["annotations"]
    assert [a["id"] for a in stored] == [1, 2]
    assert stored[0]["bbox"] == [-1.5, -1, 10, 10] and stored[0]["area"] == 432.0
    assert stored[1]["bbox"] == [5.0, 5.0, 16.0, 16.0] and stored[1]["area"] == 256.0


def test_coco_without_annotations_imports_as_images_and_cannot_be_evaluated(
    workspace: Workspace, coco_dataset: Path
) -> None:
    _rewrite(coco_dataset, lambda d: d.pop("annotations"))
    record = import_dataset(workspace, coco_dataset)
    assert record.kind == "images" and not record.annotated and record.annotations is None
    assert [i.coco_id for i in workspace.dataset_images(record.id)] == [1, 2]
    assert record.analysis["skipped"] == [
        {
            "path": "instances.json",
            "reason": "lists no annotations: imported as images, which cannot be evaluated",
        }
    ]


def test_stored_annotations_are_checked_again_before_evaluation(tmp_path: Path) -> None:
    stored = tmp_path / "annotations.json"
    image = {"id": 1, "file_name": "a.png", "width": 64, "height": 48}
    stored.write_text(json.dumps({"images": [image], "annotations": [], "categories": []}))
    with pytest.raises(DatasetImportError) as info:
        load_annotations(stored)
    assert info.value.message.startswith("The dataset's annotations list no instances")
    bad = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4]]}
    categories = [{"id": 1, "name": "box"}]
    stored.write_text(
        json.dumps({"images": [image], "annotations": [bad], "categories": categories})
    )
    with pytest.raises(DatasetImportError) as info:
        load_annotations(stored)
    assert info.value.message == (
        "The dataset's stored annotations cannot be used: annotations.json: annotations[0] "
        "(id 1): segmentation[0] has 2 point(s): a polygon needs at least 3."
    )


def test_images_option_and_path_problems_say_what_they_are(
    workspace: Workspace, coco_dataset: Path, image_folder: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nonexistent"
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: import_dataset(workspace, coco_dataset, images_dir=missing),
            f"The image folder {missing} cannot be opened (no such file).",
        ),
        (
            lambda: import_dataset(workspace, coco_dataset, images_dir=coco_dataset),
            f"The image folder {coco_dataset} is not a folder.",
        ),
        (
            lambda: import_dataset(workspace, image_folder, images_dir=missing),
            f"--images {missing} applies to a COCO .json file, but {image_folder} is a folder of images.",
        ),
    ]
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    cases.append(
        (
            lambda: import_dataset(workspace, loop),
            f"{loop} cannot be opened (a symbolic link loop).",
        )
    )
    latin1 = tmp_path / os.fsdecode(b"caf\xe9")
    latin1.mkdir()
    (latin1 / "a.png").write_bytes((image_folder / "a.png").read_bytes())  # cv2 crashes on it
    cases.append(
        (
            lambda: import_dataset(workspace, latin1),
            f"{tmp_path}/caf\ufffd has a name that is not UTF-8 text.",
        )
    )
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    cases.append((lambda: import_dataset(workspace, fifo), "pipe.json is not a regular file."))
    for call, message in cases:
        with pytest.raises(DatasetImportError) as info:
            call()
        assert info.value.message == message and info.value.hint
    assert workspace.datasets() == [] and workspace_files(workspace) == []


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def test_cli_refuses_bad_datasets_with_a_message_and_no_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, coco_dataset: Path, image_folder: Path
) -> None:
    ws = str(tmp_path / "ws")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)
    code, text = _cli(capsys, "import-dataset", str(deep), "--workspace", ws)
    assert code == 1 and "deep.json nests lists or objects more than 64 levels deep" in text
    code, text = _cli(
        capsys, "import-dataset", str(image_folder), "--images", "/nonexistent", "--workspace", ws
    )
    assert code == 1 and "--images /nonexistent applies to a COCO .json file" in text
    _rewrite(coco_dataset, lambda d: d["images"][0].update(file_name="../../../../etc/passwd"))
    code, text = _cli(capsys, "import-dataset", str(coco_dataset), "--workspace", ws)
    assert code == 1 and "file_name must name a file inside the image folder" in text
    assert "passwd" not in text
    code, text = _cli(capsys, "list", "datasets", "--workspace", ws, "--json")
    assert code == 0 and json.loads(text) == []


def test_cli_evaluate_is_refused_on_a_coco_file_without_annotations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, coco_dataset: Path
) -> None:
    ws = str(tmp_path / "ws")
    model = build_omz_maskrcnn(
        tmp_path / "m" / "model.xml",
        input_hw=(48, 64),
        detections=[Det(1, 0.9, (16.0, 12.0, 48.0, 36.0), "full")],
        labels=["box", "disc"],
    )
    _rewrite(coco_dataset, lambda d: d.update(annotations=[]))
    code, text = _cli(
        capsys, "create-project", str(model), str(coco_dataset), "--workspace", ws, "--json"
    )
    assert code == 0, text
    project = json.loads(text)["project"]["id"]
    code, text = _cli(capsys, "evaluate", str(project), "--workspace", ws)
    assert code == 1 and "has no annotations" in text and "mask AP" not in text


def test_real_entry_point_lists_a_bomb_as_skipped(tmp_path: Path, image_folder: Path) -> None:
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    (image_folder / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header + crc
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segtui",
            "import-dataset",
            str(image_folder),
            "--workspace",
            str(tmp_path / "ws"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr
    assert "bomb.png: image too large by its header: 40000×40000 pixels" in proc.stdout
    assert "images      3" in proc.stdout
