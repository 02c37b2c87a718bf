"""The bundled sample project (sample_projects/shapes): registered on first start."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from segtui.core.datasets import import_coco, import_image_folder
from segtui.core.errors import SegtuiError
from segtui.core.models import import_model
from segtui.core.projects import create_project
from segtui.core.resources import sample_projects_dir
from segtui.core.workspace import ProjectRecord, Workspace

SAMPLE_SETTING = "sample_registered"


@dataclass(frozen=True)
class SampleProjects:
    """The two projects made from the sample: images only (tutorial flow) and annotated."""

    images: ProjectRecord
    annotated: ProjectRecord


def sample_dir(name: str = "shapes") -> Path:
    return sample_projects_dir() / name


def sample_available(name: str = "shapes") -> bool:
    return (sample_dir(name) / "manifest.json").is_file()


def register_sample(ws: Workspace, name: str = "shapes", device: str = "CPU") -> SampleProjects:
    """Import the sample model with its images (not annotated) and with its COCO annotations."""
    root = sample_dir(name)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise SegtuiError(
            f"The sample project is missing ({manifest_path} not found).",
            "Reinstall segtui from a complete source tree.",
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    classes_file = root / manifest["classes"]
    class_names = [line.strip() for line in classes_file.read_text().splitlines() if line.strip()]
    model = import_model(
        ws, root / manifest["model"], name=f"{name} Mask R-CNN", class_names=class_names
    )
    # Registering again (segtui sample) reuses the datasets already made from these files.
    images_root = (root / manifest["images"]).resolve()
    ann_path = (root / manifest["annotations"]).resolve()
    existing = ws.datasets()
    images = next(
        (d for d in existing if d.kind == "images" and d.root == images_root), None
    ) or import_image_folder(ws, images_root, name=f"{name} images")
    annotated = next(
        (
            d
            for d in existing
            if d.kind == "coco" and d.analysis.get("source_annotations") == str(ann_path)
        ),
        None,
    ) or import_coco(ws, ann_path, images_dir=images_root, name=f"{name} val")
    projects = SampleProjects(
        images=create_project(
            ws,
            model_id=model.id,
            dataset_id=images.id,
            device=device,
            name=f"Sample: {name} (images)",
        ),
        annotated=create_project(
            ws,
            model_id=model.id,
            dataset_id=annotated.id,
            device=device,
            name=f"Sample: {name} (annotated)",
        ),
    )
    ws.set_setting(SAMPLE_SETTING, "1")
    return projects


def ensure_sample(ws: Workspace) -> SampleProjects | None:
    """Register the sample once per workspace (first start); later starts leave the user's choice alone."""
    if ws.get_setting(SAMPLE_SETTING) is not None or not sample_available():
        return None
    return register_sample(ws)
