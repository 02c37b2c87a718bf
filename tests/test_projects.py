"""Projects: the list in display order, the details of one, and its jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tiny_models import build_classifier, build_omz_maskrcnn

from segtui.cli import main
from segtui.core.errors import SegtuiError, UnsupportedModelError
from segtui.core.models import import_model
from segtui.core.projects import (
    ProjectExistsError,
    create_project_from,
    create_project_from_paths,
    project_details,
    project_jobs,
    project_rows,
    project_status,
    project_summary,
)
from segtui.core.records import ProjectRecord, optimization_text
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


def test_project_rows_carry_the_best_throughput_and_its_precision(
    workspace: Workspace, parent: ProjectRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    unmeasured = _child(workspace, parent, "GPU", parent.id)
    for fps, precision in ((31.25, "f32"), (63.84, "bf16"), (40.0, "f32")):
        workspace.add_result(
            project_id=parent.id,
            kind="benchmark",
            data={"throughput_fps": fps, "precision": precision},
        )
    rows = {row.id: row for row in project_rows(workspace)}
    best = rows[parent.id]
    assert (best.best_throughput_fps, best.best_precision) == (63.84, "bf16")
    assert best.throughput_text == "63.8 bf16"
    assert rows[unmeasured].best_throughput_fps is None
    assert rows[unmeasured].throughput_text == "–"
    # `segtui list` says the same, in its table and its JSON.
    assert main(["list", "--workspace", str(workspace.root)]) == 0
    table = capsys.readouterr().out
    assert "best fps" in table and "63.8 bf16" in table
    assert main(["list", "--workspace", str(workspace.root), "--json"]) == 0
    listed = {p["id"]: p for p in json.loads(capsys.readouterr().out)}
    assert (listed[parent.id]["best_fps"], listed[parent.id]["best_fps_precision"]) == (
        63.84,
        "bf16",
    )
    assert listed[unmeasured]["best_fps"] is None


def test_optimization_text_from_the_stored_settings() -> None:
    assert optimization_text({"method": "default", "preset": "performance"}) == (
        "INT8 (Default method, Performance preset)"
    )
    accuracy_aware = {
        "method": "accuracy-aware",
        "preset": "mixed",
        "max_drop": 0.5,
        "drop_type": "absolute",
    }
    assert optimization_text(accuracy_aware) == (
        "INT8 (AccuracyAware method, Mixed preset, max drop 0.5 points)"
    )
    relative = accuracy_aware | {"max_drop": 2.0, "drop_type": "relative"}
    assert optimization_text(relative) == "INT8 (AccuracyAware method, Mixed preset, max drop 2 %)"
    assert optimization_text(None) == "INT8"
    assert optimization_text({}) == "INT8"


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


def test_an_identical_project_is_refused_and_a_reshape_makes_a_new_model(
    workspace: Workspace, parent: ProjectRecord
) -> None:
    same: dict[str, Any] = {"model": parent.model_id, "dataset": parent.dataset_id}
    with pytest.raises(ProjectExistsError) as info:
        create_project_from(workspace, **same)
    assert info.value.project == parent and "already has this model" in info.value.message
    with pytest.raises(ProjectExistsError):
        create_project_from(workspace, **same, input_shape=[1, 3, 64, 96])  # its own size
    reshaped = create_project_from(workspace, **same, input_shape=[1, 3, 32, 48], name="Small")
    model = workspace.model(reshaped.model_id)
    assert (reshaped.name, model.name) == ("Small", "model 32x48")
    assert model.analysis["inputs"][0]["shape"] == [1, 3, 32, 48]
    assert [p.id for p in workspace.projects()] == [parent.id, reshaped.id]


def test_a_refused_model_leaves_no_dataset_it_imported_and_keeps_one_it_was_given(
    workspace: Workspace, parent: ProjectRecord, image_folder: Path, tmp_path: Path
) -> None:
    classifier = build_classifier(tmp_path / "cls" / "model.xml")
    for dataset in (image_folder, parent.dataset_id):
        with pytest.raises(UnsupportedModelError):
            create_project_from(workspace, model=classifier, dataset=dataset)
    assert [d.id for d in workspace.datasets()] == [parent.dataset_id]
    assert [m.id for m in workspace.models()] == [parent.model_id]


def test_refusals_known_before_any_import(
    workspace: Workspace, parent: ProjectRecord, image_folder: Path, tmp_path: Path
) -> None:
    child = import_model(
        workspace, tmp_path / "m" / "model.xml", name="INT8", optimized_from=parent.model_id
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": child.id, "input_shape": [1, 3, 32, 32]}, "is the optimized form of model"),
        ({"model": parent.model_id, "input_shape": [1, 3, 32]}, "has 3 dimension(s)"),
        ({"model": parent.model_id, "images_dir": image_folder}, "is already imported"),
        ({"model": parent.model_id, "name": " "}, "The project name is only blanks"),
        ({"model": 99}, "No model with id 99"),
    ]
    for extra, says in cases:
        with pytest.raises(SegtuiError) as info:
            create_project_from(workspace, **{"dataset": parent.dataset_id, **extra})
        assert says in info.value.message, (extra, info.value.message)
    assert len(workspace.models()) == 2 and len(workspace.datasets()) == 1
    assert [p.id for p in workspace.projects()] == [parent.id]
