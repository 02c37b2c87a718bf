"""INT8 on the sample project: the compute runs in INT8 and the masks survive (issue: optimization).

These calibrate the real sample Mask R-CNN on its 200 images; they take a
couple of minutes on 2 cores, the slowest tests of the suite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from segtui.core.accuracy import evaluate_project
from segtui.core.evaluation import CocoMetricsData
from segtui.core.inference import compile_model
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.runtime_graph import summarize_runtime
from segtui.core.sample import SampleProjects, register_sample, sample_available, sample_dir
from segtui.core.workspace import Workspace

pytestmark = pytest.mark.skipif(not sample_available(), reason="sample project files are missing")


@pytest.fixture(scope="module")
def sample_ws(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, SampleProjects]]:
    ws = Workspace(tmp_path_factory.mktemp("sample_ws"))
    yield ws, register_sample(ws)
    ws.close()


@pytest.fixture(scope="module")
def parent_metrics(sample_ws: tuple[Workspace, SampleProjects]) -> CocoMetricsData:
    """The sample parent's COCO metrics at f32 (evaluated once: ~25 s on 2 cores)."""
    ws, projects = sample_ws
    return evaluate_project(ws, projects.annotated.id)["metrics"]


def test_default_int8_runs_compute_in_int8_and_keeps_mask_ap(
    sample_ws: tuple[Workspace, SampleProjects], parent_metrics: CocoMetricsData, tmp_path: Path
) -> None:
    ws, projects = sample_ws
    parent = projects.annotated
    child = optimize_project(ws, parent.id, OptimizeSettings(), tmp_path / "work")
    model = ws.model(child.model_id)
    assert child.parent_id == parent.id and model.optimized_from == ws.project(parent.id).model_id
    assert model.analysis["int8"] and model.optimization is not None
    assert (
        model.optimization["preset"] == "performance" and model.optimization["subset_size"] == 200
    )
    # Both Ifs (the batched NMS) are kept in floating point whole: NNCF's passes for them are skipped.
    assert model.optimization["if_bodies_skipped"] == 2
    runtime = summarize_runtime(compile_model(load_registered(model).model, "CPU", "default"))
    assert runtime.compute_int8_share >= 0.90, runtime.to_json()
    parent_ap = parent_metrics["mask_ap"]
    child_ap = evaluate_project(ws, child.id)["metrics"]["mask_ap"]
    # The shipped model meets the sample's bar, and the manifest records segtui's own figures.
    assert parent_ap >= 0.70 and parent_metrics["mask_ap50"] >= 0.90, parent_metrics
    manifest = json.loads((sample_dir() / "manifest.json").read_text())
    assert parent_ap == pytest.approx(manifest["metrics"]["mask_ap"], abs=0.003)
    assert parent_metrics["box_ap"] == pytest.approx(manifest["metrics"]["box_ap"], abs=0.003)
    assert parent_ap - child_ap <= 0.010, (parent_ap, child_ap)


def test_without_the_automatic_ignored_scope_the_masks_collapse(
    sample_ws: tuple[Workspace, SampleProjects], parent_metrics: CocoMetricsData, tmp_path: Path
) -> None:
    ws, projects = sample_ws
    parent = projects.annotated
    child = optimize_project(
        ws, parent.id, OptimizeSettings(auto_ignore=False, subset_percent=50), tmp_path / "w"
    )
    # Nothing is ignored, so NNCF quantizes the If bodies itself (its own passes run).
    assert ws.model(child.model_id).optimization["if_bodies_skipped"] == 0  # type: ignore[index]
    child_ap = evaluate_project(ws, child.id)["metrics"]["mask_ap"]
    parent_ap = parent_metrics["mask_ap"]
    assert child_ap < parent_ap - 0.2, (parent_ap, child_ap)
