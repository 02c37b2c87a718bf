"""Perform → Optimize at core level: in process, through the job runner, killed, cancelled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import write_scene
from tiny_models import build_omz_maskrcnn_conv

from segtui.core import jobs
from segtui.core.deploy import plan_deployment
from segtui.core.errors import SegtuiError
from segtui.core.models import load_registered
from segtui.core.optimize import optimize_project, validation_items
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.projects import create_project_from_paths
from segtui.core.quantize import CALIBRATION_STAGE
from segtui.core.settings import OPTIMIZE, SettingError
from segtui.core.types import DropType, Method, Preset
from segtui.core.workspace import JobRecord, ProjectRecord, Workspace


def _image_copies(folder: Path, count: int) -> Path:
    """`count` copies of one small real image (calibration time grows with the count)."""
    first = folder / "img000.png"
    write_scene(first, (48, 64), 7)
    for i in range(1, count):
        shutil.copyfile(first, folder / f"img{i:03d}.png")
    return folder


def _project(ws: Workspace, tmp_path: Path, images: int) -> ProjectRecord:
    model = build_omz_maskrcnn_conv(tmp_path / "model" / "tiny.xml", input_hw=(64, 64))
    folder = _image_copies(tmp_path / "images", images)
    return create_project_from_paths(ws, model_path=model, dataset_path=folder, name="Tiny conv")


def _model_files(ws: Workspace) -> list[str]:
    return sorted(p.relative_to(ws.root).as_posix() for p in (ws.root / "models").rglob("*"))


def _staging(ws: Workspace) -> list[str]:
    return sorted(p.name for p in (ws.root / "tmp").iterdir())


def _wait_for_stage(ws: Workspace, job_id: int, prefix: str, timeout: float = 60.0) -> JobRecord:
    """Poll the job row until its stage starts with `prefix` (fails if it ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ws.job(job_id)
        if job.stage.startswith(prefix):
            return job
        assert job.state in ("queued", "running"), f"job ended before {prefix!r}: {job}"
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {prefix!r}: {ws.job(job_id)}")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether the process `pid` ends within `timeout` (a signal takes a moment to land)."""
    deadline = time.monotonic() + timeout
    while jobs.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not jobs.pid_alive(pid)


def test_optimize_project_registers_an_int8_child(workspace: Workspace, tmp_path: Path) -> None:
    parent = _project(workspace, tmp_path, images=4)
    parent_model = workspace.model(parent.model_id)
    # An Ultralytics export keeps a metadata.yaml beside its IR (task, names, imgsz).
    metadata = f"task: segment\nnames: {dict(enumerate(parent_model.class_names))}\n"
    (parent_model.xml_path.parent / "metadata.yaml").write_text(metadata)
    stages: list[str] = []
    settings = OptimizeSettings(subset_percent=50, preset=Preset.MIXED, fast_bias_correction=False)

    child = optimize_project(
        workspace,
        parent.id,
        settings,
        tmp_path / "work",
        progress=lambda fraction, stage: stages.append(stage),
    )

    assert child.parent_id == parent.id
    assert child.dataset_id == parent.dataset_id and child.device == parent.device
    assert [c.id for c in workspace.children(parent.id)] == [child.id]
    model = workspace.model(child.model_id)
    assert model.id != parent_model.id
    assert model.optimized_from == parent_model.id
    assert model.analysis["int8"] is True
    assert model.analysis["fake_quantize_count"] > 0
    assert model.class_names == parent_model.class_names
    optimization = model.optimization
    assert optimization is not None
    assert optimization["method"] == "default"
    assert optimization["preset"] == "mixed"
    assert optimization["subset_percent"] == 50
    assert optimization["subset_size"] == 2  # 50 % of 4 images
    assert optimization["fast_bias_correction"] is False
    assert optimization["auto_ignored_scope"] is True
    # The tiny model's geometry (the fixed boxes, the reshapes of the outputs) stays in FP.
    scope = optimization["ignored_scope"]
    assert scope is not None and scope["count"] == optimization["ignored_names_count"] > 0
    assert optimization["if_bodies_skipped"] == 0  # the tiny model has no If
    assert "max_drop" not in optimization and "validation_calls" not in optimization
    assert f"{CALIBRATION_STAGE} 2/2" in stages
    assert stages[-1] == "Done"
    # The child's IR is a readable model of the same format, and nothing is left in staging.
    assert load_registered(model).adapter.format_id == parent_model.format_id
    assert model.xml_path.is_file()
    assert _staging(workspace) == []
    # The child carries the parent's metadata.yaml, and so does its deployment package.
    assert (model.xml_path.parent / "metadata.yaml").read_text() == metadata
    plan = plan_deployment(workspace, child.id, tmp_path / "pkg.tar.gz", with_parent=True)
    packaged = [name for name, _ in plan.members]
    assert "model/metadata.yaml" in packaged and "parent/metadata.yaml" in packaged


def test_optimize_refuses_bad_settings_and_int8_parents(
    workspace: Workspace, tmp_path: Path
) -> None:
    parent = _project(workspace, tmp_path, images=2)
    with pytest.raises(SegtuiError, match="out of range"):
        optimize_project(workspace, parent.id, OptimizeSettings(subset_percent=0), tmp_path / "w1")
    child = optimize_project(workspace, parent.id, OptimizeSettings(), tmp_path / "w2")
    models = len(workspace.models())
    with pytest.raises(SegtuiError, match="already INT8"):
        optimize_project(workspace, child.id, OptimizeSettings(), tmp_path / "w3")
    assert len(workspace.models()) == models


def test_optimize_job_runs_in_a_child_process(workspace: Workspace, tmp_path: Path) -> None:
    parent = _project(workspace, tmp_path, images=3)
    settings = OptimizeSettings(subset_percent=100)

    job = jobs.submit(workspace, "optimize", parent.id, settings.to_json())
    assert job.state == "running" and job.kind == "optimize"
    seen: list[str] = []
    done = jobs.wait(workspace, job.id, on_update=lambda j: seen.append(j.stage), poll=0.1)

    assert done.state == "done", (done.error, jobs.log_path(workspace, job.id).read_text())
    assert done.progress == 1.0 and done.error is None
    assert done.result is not None
    child = workspace.project(int(done.result["child_project_id"]))
    assert child.parent_id == parent.id
    assert child.model_id == done.result["model_id"]
    optimization = done.result["optimization"]
    assert optimization is not None and optimization["subset_size"] == 3
    assert optimization == workspace.model(child.model_id).optimization
    assert workspace.model(child.model_id).analysis["int8"] is True
    assert done.pid is not None and done.pid != os.getpid()
    assert not jobs.work_dir(workspace, job.id).exists()
    assert "done:" in jobs.log_path(workspace, job.id).read_text()
    assert _staging(workspace) == []


def test_killed_job_is_interrupted_after_restart_and_leaves_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    parent = _project(workspace, tmp_path, images=150)
    models_before = _model_files(workspace)

    job = jobs.submit(workspace, "optimize", parent.id, OptimizeSettings().to_json())
    running = _wait_for_stage(workspace, job.id, CALIBRATION_STAGE)
    assert running.pid is not None
    assert jobs.work_dir(workspace, job.id).is_dir()  # the job has partial files now
    os.killpg(running.pid, signal.SIGKILL)
    assert _gone(running.pid)
    assert workspace.job(job.id).state == "running"  # nobody has noticed yet

    # A restart: a fresh connection to the workspace looks for jobs whose process is gone.
    with Workspace(workspace.root) as restarted:
        assert jobs.recover_jobs(restarted) == [job.id]
        after = restarted.job(job.id)
    assert after.state == "interrupted"
    assert after.error is not None and "ended unexpectedly" in after.error
    assert after.finished_at is not None
    assert not jobs.work_dir(workspace, job.id).exists()
    assert len(workspace.models()) == 1
    assert _model_files(workspace) == models_before
    assert workspace.children(parent.id) == []
    assert _staging(workspace) == []


def test_cancelled_job_leaves_no_model_and_no_staging(workspace: Workspace, tmp_path: Path) -> None:
    parent = _project(workspace, tmp_path, images=150)
    models_before = _model_files(workspace)

    job = jobs.submit(workspace, "optimize", parent.id, OptimizeSettings().to_json())
    running = _wait_for_stage(workspace, job.id, CALIBRATION_STAGE)
    cancelled = jobs.cancel(workspace, job.id)

    assert cancelled.state == "cancelled"
    assert cancelled.result is None
    assert running.pid is not None and _gone(running.pid)
    assert "cancelled" in jobs.log_path(workspace, job.id).read_text()
    assert not jobs.work_dir(workspace, job.id).exists()
    assert len(workspace.models()) == 1
    assert _model_files(workspace) == models_before
    assert workspace.children(parent.id) == []
    assert _staging(workspace) == []
    # Cancelling again is harmless and changes nothing.
    assert jobs.cancel(workspace, job.id).state == "cancelled"


def test_subset_count_is_not_pushed_up_by_floating_point() -> None:
    # 250 × 64.4 % is 161.00000000000003 in floating point: 161 images, not 162.
    assert OptimizeSettings(subset_percent=64.4).subset_count(250) == 161
    assert OptimizeSettings(subset_percent=8.8).subset_count(375) == 33
    assert OptimizeSettings(subset_percent=64.5).subset_count(250) == 162  # 161.25 rounds up
    assert OptimizeSettings(subset_percent=0.1).subset_count(10) == 1  # never zero


def test_settings_take_their_defaults_and_choices_from_the_schema() -> None:
    settings = OptimizeSettings()
    assert settings.values() == OPTIMIZE.defaults()
    assert settings.method is Method.DEFAULT and settings.drop_type is DropType.ABSOLUTE
    # The job's parameters are plain JSON: enum members as strings, tuples as lists.
    params = OptimizeSettings(ignore_names=("a", "b"), preset=Preset.MIXED).to_json()
    assert params["preset"] == "mixed" and type(params["preset"]) is str
    assert params["ignore_names"] == ["a", "b"]
    assert OptimizeSettings.from_values(params) == OptimizeSettings(
        ignore_names=("a", "b"), preset=Preset.MIXED
    )


def test_job_parameters_are_checked_and_converted_by_the_schema() -> None:
    params = {
        "method": "accuracy-aware",
        "drop_type": "relative",
        "ignore_types": ["Add"],
        "max_drop": 2,
        "unknown": "ignored",
    }
    settings = OptimizeSettings.from_values(params)
    assert settings.method is Method.ACCURACY_AWARE and settings.accuracy_aware
    assert settings.drop_type is DropType.RELATIVE
    assert settings.ignore_types == ("Add",)
    assert settings.max_drop == 2.0 and isinstance(settings.max_drop, float)
    with pytest.raises(SettingError, match="Max accuracy drop 20 is out of range") as err:
        OptimizeSettings.from_values({"max_drop": 20})
    assert err.value.field == "max_drop"
    with pytest.raises(SettingError, match="'fast' is not one of: default, accuracy-aware"):
        OptimizeSettings.from_values({"method": "fast"})


def test_validate_names_every_refused_value_with_its_range() -> None:
    OptimizeSettings().validate()
    with pytest.raises(SettingError) as err:
        OptimizeSettings(subset_percent=0, validation_images=0).validate()
    assert err.value.field == "subset_percent"
    assert "Subset size 0 is out of range" in err.value.message
    assert "Validation images 0 is out of range" in err.value.message
    assert "subset: above 0 and at most 100 %" in err.value.hint
    assert "validation-images: 1–10000" in err.value.hint


def test_max_drop_met_reads_absolute_points_and_relative_percent() -> None:
    from segtui.core.optimize import max_drop_met
    from segtui.core.quantize import AccuracyAwareRecord
    from segtui.core.types import DropType

    record: AccuracyAwareRecord = {
        "validation_calls": 12,
        "reference_mask_ap": 0.80,
        "final_mask_ap": 0.79,
        "reported_drop_points": 1.0,
    }
    # 1 point absolute; 1.25 % relative to 0.80.
    assert max_drop_met(record, 1.0, DropType.ABSOLUTE) is True
    assert max_drop_met(record, 0.9, DropType.ABSOLUTE) is False
    assert max_drop_met(record, 1.3, DropType.RELATIVE) is True
    assert max_drop_met(record, 1.2, DropType.RELATIVE) is False
    unmeasured: AccuracyAwareRecord = {
        "validation_calls": 1,
        "reference_mask_ap": 0.8,
        "final_mask_ap": 0.8,
        "reported_drop_points": None,
    }
    assert max_drop_met(unmeasured, 1.0, DropType.ABSOLUTE) is None


def test_validation_items_carry_the_annotation_files_image_ids_from_0(
    workspace: Workspace, tmp_path: Path, coco_dataset: Path
) -> None:
    # The same COCO image ids as predict, evaluate and the report use: image id 0 stays 0.
    data = json.loads(coco_dataset.read_text())
    for item in [*data["images"], *data["annotations"]]:
        item["image_id" if "image_id" in item else "id"] -= 1
    coco_dataset.write_text(json.dumps(data))
    model = build_omz_maskrcnn_conv(tmp_path / "model" / "tiny.xml", input_hw=(64, 64))
    project = create_project_from_paths(workspace, model_path=model, dataset_path=coco_dataset)
    items = validation_items(workspace, project.id, 2)
    assert [(name, image_id) for name, _, image_id in items] == [("x.png", 0), ("y.png", 1)]
