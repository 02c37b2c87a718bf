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
    # The OMZ layout has no If (its NMS lives in the ExperimentalDetectron ops), and both ROI
    # extractors are pooled by ROIAlign in the INT8 model: 1000 ROIs at 7x7, 100 at 14x14.
    assert model.optimization["if_bodies_skipped"] == 0
    rewrites = model.optimization.get("roi_rewrites", [])
    assert [(r["rois"], r["output_size"]) for r in rewrites] == [(1000, 7), (100, 14)]
    int8_model = load_registered(model).model
    types = {op.get_type_name() for op in int8_model.get_ordered_ops()}
    assert "ExperimentalDetectronROIFeatureExtractor" not in types and "ROIAlign" in types
    assert "ExperimentalDetectronDetectionOutput" in types
    # Every Convolution/MatMul runs in INT8; the geometry is kept in float.
    runtime = summarize_runtime(compile_model(int8_model, "CPU", "default"))
    assert runtime.compute_int8_share == 1.0, runtime.to_json()
    scope = model.optimization["ignored_scope"]
    assert scope is not None and scope["types"]["ExperimentalDetectronDetectionOutput"] == 1
    assert not {"Convolution", "MatMul"} & set(scope["types"]), scope["types"]
    parent_ap = parent_metrics["mask_ap"]
    child_ap = evaluate_project(ws, child.id)["metrics"]["mask_ap"]
    # The shipped model meets the sample's bar, and the manifest records segtui's own figures.
    assert parent_ap >= 0.70 and parent_metrics["mask_ap50"] >= 0.90, parent_metrics
    manifest = json.loads((sample_dir() / "manifest.json").read_text())
    assert parent_ap == pytest.approx(manifest["metrics"]["mask_ap"], abs=0.003)
    assert parent_metrics["box_ap"] == pytest.approx(manifest["metrics"]["box_ap"], abs=0.003)
    assert parent_ap - child_ap <= 0.005, (parent_ap, child_ap)


def test_without_the_automatic_ignored_scope_torchvision_masks_collapse_omz_masks_do_not(
    sample_ws: tuple[Workspace, SampleProjects], parent_metrics: CocoMetricsData, tmp_path: Path
) -> None:
    """NNCF alone quantizes torchvision's box decoding and RoI merge, and leaves OMZ's
    ExperimentalDetectron tail alone (the ROI rewrite's operations included)."""
    ws, projects = sample_ws
    no_scope = OptimizeSettings(auto_ignore=False, subset_percent=25)
    torchvision = register_sample(ws, "shapes-torchvision").annotated
    broken = optimize_project(ws, torchvision.id, no_scope, tmp_path / "tv")
    # Nothing is ignored, so NNCF quantizes the If bodies itself (its own passes run).
    assert ws.model(broken.model_id).optimization["if_bodies_skipped"] == 0  # type: ignore[index]
    tv_parent_ap = evaluate_project(ws, torchvision.id)["metrics"]["mask_ap"]
    tv_child_ap = evaluate_project(ws, broken.id)["metrics"]["mask_ap"]
    assert tv_child_ap < tv_parent_ap - 0.2, (tv_parent_ap, tv_child_ap)
    # The same network in OMZ's layout keeps its masks with no scope at all.
    omz_child = optimize_project(ws, projects.annotated.id, no_scope, tmp_path / "omz")
    omz_record = ws.model(omz_child.model_id).optimization
    assert omz_record is not None and len(omz_record.get("roi_rewrites", [])) == 2
    omz_child_ap = evaluate_project(ws, omz_child.id)["metrics"]["mask_ap"]
    assert parent_metrics["mask_ap"] - omz_child_ap <= 0.005, (parent_metrics, omz_child_ap)
    assert tv_parent_ap == pytest.approx(parent_metrics["mask_ap"], abs=0.002)
