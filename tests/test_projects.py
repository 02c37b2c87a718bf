"""Projects: the list in display order, the details of one, and its jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import build_omz_maskrcnn

from segtui.core.models import import_model
from segtui.core.projects import (
    create_project_from_paths,
    project_details,
    project_jobs,
    project_rows,
    project_status,
    project_summary,
)
from segtui.core.records import ProjectRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace


@pytest.fixture
def parent(workspace: Workspace, image_folder: Path, tmp_path: Path) -> ProjectRecord:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    return create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Parent"
    )


def _child(ws: Workspace, parent: ProjectRecord, device: str, parent_id: int | None) -> int:
    """A project on the parent's model and dataset (another device keeps it distinct)."""
    return ws.add_project(
        name=f"on {device}",
        model_id=parent.model_id,
        dataset_id=parent.dataset_id,
        device=device,
        parent_id=parent_id,
    ).id


def test_project_rows_put_children_under_their_parent(
    workspace: Workspace, parent: ProjectRecord
) -> None:
    other_root = _child(workspace, parent, "NPU", None)
    child = _child(workspace, parent, "GPU", parent.id)
    grandchild = _child(workspace, parent, "GPU.1", child)
    second_child = _child(workspace, parent, "GPU.2", parent.id)
    rows = project_rows(workspace)
    assert [(row.id, row.depth) for row in rows] == [
        (parent.id, 0),
        (child, 1),
        (grandchild, 2),
        (second_child, 1),
        (other_root, 0),
    ]
    first = rows[0]
    assert (first.name, first.model_name, first.image_count) == ("Parent", "model", 3)
    assert not first.annotated and first.status == "ready"


def test_status_details_and_jobs_of_a_project(
    workspace: Workspace, parent: ProjectRecord, tmp_path: Path
) -> None:
    child_model = import_model(
        workspace,
        tmp_path / "m" / "model.xml",
        name="model INT8",
        optimized_from=parent.model_id,
    )
    child = workspace.add_project(
        name="Parent INT8",
        model_id=child_model.id,
        dataset_id=parent.dataset_id,
        device="CPU",
        parent_id=parent.id,
    )
    assert project_status(workspace, parent) == "ready"
    made_it = workspace.add_job(kind=JobKind.OPTIMIZE, project_id=parent.id, params={})
    workspace.update_job(made_it.id, state=JobState.DONE, result={"child_project_id": child.id})
    other = workspace.add_job(kind=JobKind.OPTIMIZE, project_id=parent.id, params={})
    own = workspace.add_job(kind=JobKind.BENCHMARK, project_id=child.id, params={})
    assert project_status(workspace, parent) == "optimize queued"
    assert project_status(workspace, child) == "benchmark queued"
    # The child's page lists the parent's job that made it, then its own.
    assert [j.id for j in project_jobs(workspace, child)] == [made_it.id, own.id]
    assert [j.id for j in project_jobs(workspace, parent)] == [made_it.id, other.id]

    details = project_details(workspace, child.id)
    assert details.parent == parent and details.children == ()
    assert details.model.id == child_model.id and details.status == "benchmark queued"
    summary = project_summary(workspace, parent.id)
    assert summary["project"] == {
        "id": parent.id,
        "name": "Parent",
        "device": "CPU",
        "status": "optimize queued",
        "parent_id": None,
        "children": [child.id],
    }
    parent_model = workspace.model(parent.model_id)
    assert summary["model"]["ir_version"] == parent_model.analysis["ir_version"] == "11"
    assert summary["model"]["settings"]["format_id"] == "omz-maskrcnn"
    assert "settings" in summary["model"] and summary["dataset"]["image_count"] == 3
    assert summary["dataset"]["kind"] == "images" and summary["dataset"]["annotated"] is False
