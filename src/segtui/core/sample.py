"""The bundled sample projects (sample_projects/shapes, /shapes-yolo: registered on first start;
/shapes-torchvision: on request)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from segtui.core import storage
from segtui.core.errors import SegtuiError
from segtui.core.projects import create_project
from segtui.core.resources import sample_projects_dir
from segtui.core.workspace import DatasetRecord, ProjectRecord, Workspace

SAMPLE_SETTING = "sample_registered"
#: The bundled samples, in the order a first start registers them: the OMZ-layout Mask
#: R-CNN, then the Ultralytics YOLOv8n-seg on the same 200 validation images.
BUNDLED_SAMPLES = ("shapes", "shapes-yolo")
#: Shipped too, registered only when asked for (`segtui sample NAME`): the shapes Mask
#: R-CNN with torchvision's own detection tail, as users export it themselves.
ON_REQUEST_SAMPLES = ("shapes-torchvision",)
#: Registering takes seconds; a process that starts meanwhile waits this long at most.
LOCK_TIMEOUT_S = 600.0


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
    """Import the sample model with its images (not annotated) and with its COCO annotations.

    Registering again reuses what is there. Processes that register at once take turns
    (a lock on a file in the workspace), so the sample is imported once.
    """
    with _registering(ws, name):
        return _register(ws, name, device)


def ensure_sample(ws: Workspace) -> SampleProjects | None:
    """Register each bundled sample once per workspace (first start; a sample added by a
    newer segtui on the next start); later starts leave the user's choice alone.

    Returns the first sample's projects when this call registered them.
    """
    registered = [_ensure(ws, name) for name in BUNDLED_SAMPLES]
    return next((projects for projects in registered if projects is not None), None)


def registered_setting(name: str) -> str:
    """The workspace setting that says `name` was registered once (first start)."""
    # "shapes" keeps the key older workspaces already hold.
    return SAMPLE_SETTING if name == "shapes" else f"{SAMPLE_SETTING}:{name}"


def _ensure(ws: Workspace, name: str) -> SampleProjects | None:
    setting = registered_setting(name)
    if ws.get_setting(setting) is not None or not sample_available(name):
        return None
    with _registering(ws, name):
        # Asked again under the lock: a process that started with us may have registered it.
        if ws.get_setting(setting) is not None:
            return None
        return _register(ws, name, "CPU")


@contextlib.contextmanager
def _registering(ws: Workspace, name: str) -> Iterator[None]:
    lock = ws.root / "tmp" / f"sample-{name}.lock"
    with storage.exclusive_lock(lock, timeout_s=LOCK_TIMEOUT_S, what="registering the sample"):
        yield


def _register(ws: Workspace, name: str, device: str) -> SampleProjects:
    # OpenVINO and OpenCV only when registering: the TUI's start asks `ensure_sample` first.
    from segtui.core.datasets import import_coco, import_image_folder
    from segtui.core.models import import_model

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
    model_name = str(manifest.get("model_name", f"{name} Mask R-CNN"))
    model = import_model(ws, root / manifest["model"], name=model_name, class_names=class_names)
    images_root = (root / manifest["images"]).resolve()
    ann_path = (root / manifest["annotations"]).resolve()
    known = _recorded(ws, name, images_root, ann_path)
    images = known.images or import_image_folder(ws, images_root, name=f"{name} images")
    annotated = known.annotated or import_coco(
        ws, ann_path, images_dir=images_root, name=f"{name} val"
    )
    with ws.transaction() as tx:
        # Insert-or-update on the sample's name (the primary key): one record per sample.
        tx.execute(
            "INSERT INTO samples(name, model_id, images_dataset_id, annotated_dataset_id, "
            "registered_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "model_id = excluded.model_id, images_dataset_id = excluded.images_dataset_id, "
            "annotated_dataset_id = excluded.annotated_dataset_id",
            (name, model.id, images.id, annotated.id, time.time()),
        )
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
    ws.set_setting(registered_setting(name), "1")
    return projects


@dataclass(frozen=True)
class _Recorded:
    """The sample's datasets that are still in the workspace (None: import it again)."""

    images: DatasetRecord | None
    annotated: DatasetRecord | None


def _recorded(ws: Workspace, name: str, images_root: Path, ann_path: Path) -> _Recorded:
    with ws.transaction() as tx:
        row = tx.execute(
            "SELECT images_dataset_id, annotated_dataset_id FROM samples WHERE name = ?", (name,)
        ).fetchone()
    if row is not None:
        ids = {d.id: d for d in ws.datasets()}
        return _Recorded(ids.get(row[0]), ids.get(row[1]))
    # Registered by a segtui from before the samples table: its datasets, found by their files.
    existing = ws.datasets()
    return _Recorded(
        next((d for d in existing if d.kind == "images" and d.root == images_root), None),
        next(
            (
                d
                for d in existing
                if d.kind == "coco" and d.analysis.get("source_annotations") == str(ann_path)
            ),
            None,
        ),
    )
