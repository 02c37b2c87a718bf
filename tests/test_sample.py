"""The bundled sample project: registered on first start, and its model finds the shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from segtui.core.datasets import image_path
from segtui.core.evaluation import load_annotations
from segtui.core.inference import run_inference
from segtui.core.matching import match_instances
from segtui.core.models import load_registered
from segtui.core.report import annotations_as_predictions
from segtui.core.sample import ensure_sample, register_sample, sample_available, sample_dir
from segtui.core.workspace import Workspace

pytestmark = pytest.mark.skipif(not sample_available(), reason="sample project files are missing")


def test_first_start_registers_both_sample_projects_once(workspace: Workspace) -> None:
    projects = ensure_sample(workspace)
    assert projects is not None
    images, annotated = projects.images, projects.annotated
    assert images.model_id == annotated.model_id
    model = workspace.model(images.model_id)
    assert model.format_id == "omz-maskrcnn"
    assert model.class_names == ["circle", "square", "triangle", "star", "hexagon", "ring"]
    assert model.analysis["inputs"][0]["shape"] == [1, 3, 256, 256]
    assert model.analysis["outputs"][2]["shape"][1:] == [28, 28]
    assert workspace.dataset(images.dataset_id).kind == "images"
    ann = workspace.dataset(annotated.dataset_id)
    assert ann.annotated and ann.image_count == 200
    assert ann.analysis["classes"] == model.class_names
    expected = 4 if sample_available("shapes-yolo") else 2
    assert len(workspace.projects()) == expected
    # A second start leaves the workspace as it is.
    assert ensure_sample(workspace) is None
    assert len(workspace.projects()) == expected


@pytest.mark.skipif(not sample_available("shapes-yolo"), reason="the YOLO sample is missing")
def test_first_start_registers_the_yolo_sample_on_the_same_datasets(workspace: Workspace) -> None:
    shapes = ensure_sample(workspace)
    assert shapes is not None
    by_name = {p.name: p for p in workspace.projects()}
    yolo_images = by_name["Sample: shapes-yolo (images)"]
    yolo_annotated = by_name["Sample: shapes-yolo (annotated)"]
    # The YOLO sample reads the same 200 images and annotations: no second copy.
    assert (yolo_images.dataset_id, yolo_annotated.dataset_id) == (
        shapes.images.dataset_id,
        shapes.annotated.dataset_id,
    )
    assert len(workspace.datasets()) == 2 and len(workspace.models()) == 2
    model = workspace.model(yolo_annotated.model_id)
    assert (model.name, model.format_id) == ("shapes YOLOv8n-seg", "yolo-seg")
    assert model.class_names == ["circle", "square", "triangle", "star", "hexagon", "ring"]
    settings = model.analysis["settings"]
    assert (settings["resize_type"], settings["pad_value"]) == ("letterbox", 114.0)
    assert settings["mask_protocol"].startswith("Ultralytics process_mask_native")
    # A workspace from before the YOLO sample gets it on its next start, once.
    workspace._conn.execute("DELETE FROM projects WHERE id = ?", (yolo_images.id,))
    assert ensure_sample(workspace) is None
    assert "Sample: shapes-yolo (images)" not in {p.name for p in workspace.projects()}


def test_sample_model_finds_the_shapes_of_a_known_validation_image(workspace: Workspace) -> None:
    projects = ensure_sample(workspace)
    assert projects is not None
    project = projects.annotated
    dataset = workspace.dataset(project.dataset_id)
    assert dataset.annotations is not None
    annotations = load_annotations(dataset.annotations)
    # A known validation image with six shapes: a square, four stars and a ring.
    image = next(im for im in workspace.dataset_images(dataset.id) if im.path == "val_0019.jpg")
    loaded = load_registered(workspace.model(project.model_id))
    run = run_inference(loaded.model, loaded.adapter, [(image.path, image_path(dataset, image))])
    found = run.predictions[0].above(0.5)
    truth = annotations_as_predictions(
        annotations, [(image.path, int(image.coco_id or 0))], None, 6
    )[0]
    matches = match_instances(found, truth.instances, 0.5)
    # Every annotated shape is found (nothing else), with the right class and a mask overlapping it well.
    assert sorted(i.class_id for i in truth.instances) == [
        1,
        3,
        3,
        3,
        3,
        5,
    ]  # square, 4 stars, ring
    assert len(matches) == len(truth.instances) == len(found)
    assert all(iou >= 0.8 for _, _, iou in matches)


def test_manifest_describes_the_shipped_files() -> None:
    root = sample_dir()
    manifest = json.loads((root / "manifest.json").read_text())
    for key in ("model", "classes", "images", "annotations"):
        assert (root / manifest[key]).exists(), key
    assert 0.0 < manifest["metrics"]["mask_ap"] <= manifest["metrics"]["mask_ap50"] <= 1.0
    size = (root / manifest["model"]).stat().st_size + (root / manifest["model"]).with_suffix(
        ".bin"
    ).stat().st_size
    assert size < 30 * 1024 * 1024


def test_registering_the_sample_again_reuses_it(workspace: Workspace) -> None:
    first = register_sample(workspace)
    second = register_sample(workspace)
    assert (first.images.id, first.annotated.id) == (second.images.id, second.annotated.id)
    assert (
        len(workspace.projects()) == 2
        and len(workspace.datasets()) == 2
        and len(workspace.models()) == 1
    )


def test_three_first_starts_at_once_register_the_sample_once(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "segtui", "--workspace", str(root), "sample", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers = [start.communicate(timeout=600) for start in starts]
    assert [start.returncode for start in starts] == [0, 0, 0], answers
    assert len({out for out, _err in answers}) == 1  # all three name the same projects
    samples = [s for s in ("shapes", "shapes-yolo") if sample_available(s)]
    assert [s["name"] for s in json.loads(answers[0][0])["samples"]] == samples
    with Workspace(root) as ws:
        assert len(ws.projects()) == 2 * len(samples) and len(ws.datasets()) == 2
        assert len(ws.models()) == len(samples)
        rows = ws._conn.execute("SELECT name FROM samples ORDER BY name").fetchall()
        assert [r[0] for r in rows] == samples
        assert ws._conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert sorted(p.name for p in (root / "models").iterdir()) == [
        str(i + 1) for i in range(len(samples))
    ]
    assert list((root / "tmp").iterdir()) == []  # no staging folder, no lock file left


def test_a_sample_dataset_deleted_by_the_user_is_imported_again_once(
    workspace: Workspace,
) -> None:
    first = register_sample(workspace)
    workspace._conn.execute("DELETE FROM projects WHERE id = ?", (first.images.id,))
    workspace.delete_dataset(first.images.dataset_id)
    again = register_sample(workspace)
    assert again.images.dataset_id != first.images.dataset_id
    assert again.annotated.id == first.annotated.id
    row = workspace._conn.execute(
        "SELECT images_dataset_id, annotated_dataset_id FROM samples WHERE name = 'shapes'"
    ).fetchone()
    assert tuple(row) == (again.images.dataset_id, first.annotated.dataset_id)
    assert len(workspace.datasets()) == 2 and len(workspace.projects()) == 2
