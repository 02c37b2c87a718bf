"""The automatic scope on OMZ's ExperimentalDetectron structure (issue #14, item 2).

A tiny Mask R-CNN laid out as instance-segmentation-security-0002 is (tests/tiny_omz_model.py)
is detected, its geometry kept in float by the automatic scope, every compute layer quantized,
its ROI extractors pooled by ROIAlign in the INT8 model (or kept, when asked), and the INT8
model's detections stay those of its parent. Real OpenVINO, real NNCF.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
import pytest
from cli_run import run_cli
from tiny_omz_model import (
    BOX_ADD,
    BOX_EXTRACTOR,
    BOX_MIN,
    BOX_POOL,
    DETECTIONS,
    LABELS,
    MASK_EXTRACTOR,
    MASK_GATHER,
    MASK_POOL,
    MASK_SIGMOID,
    MAX_ROIS,
    build_omz_model,
    build_tiny_omz_maskrcnn,
    write_textured_scenes,
)

from segtui.core.datasets import load_image
from segtui.core.ignored_scope import COMPUTE_TYPES, propose_ignored_scope
from segtui.core.inference import compile_model
from segtui.core.models import load_model, load_registered
from segtui.core.optimize import optimize_project
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.projects import create_project_from_paths
from segtui.core.roi_rewrite import EXTRACTOR, rewrite_roi_extractors
from segtui.core.runtime_graph import summarize_runtime
from segtui.core.types import Preset
from segtui.core.workspace import ModelRecord, Workspace

IMAGES = 4
ED_PREFIX = "ExperimentalDetectron"
BOX_RULE = "proposals and box decoding"
NMS_RULE = "NMS and post-NMS geometry"
#: How core.roi_rewrite names the ROIAlign that replaces an extractor.
ROI_ALIGN = "pyramid_roi_align"
#: Stem and backbone 1 + 4 Convolutions, RPN head 3 per level, box head 4 MatMuls, mask head
#: 2 Convolutions, a ConvolutionBackpropData and the 1x1 Convolution to the classes.
COMPUTE_LAYERS = 1 + 4 + 3 * 5 + 4 + 4


@dataclass(frozen=True)
class OmzProject:
    root: Path
    project_id: int
    images: tuple[Path, ...]


@pytest.fixture(scope="module")
def omz_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OmzProject]:
    """A workspace holding the tiny model on a few small real images (shared by the module)."""
    tmp = tmp_path_factory.mktemp("omz")
    with pytest.MonkeyPatch.context() as patch:
        # The module's fixtures outlive the per-test isolated home: isolate them as well.
        patch.setenv("SEGTUI_HOME", str(tmp / "home"))
        patch.setenv("XDG_STATE_HOME", str(tmp / "state"))
        images = tuple(write_textured_scenes(tmp / "images", IMAGES))
        model = build_tiny_omz_maskrcnn(tmp / "model" / "tiny_omz.xml")
        with Workspace(tmp / "ws") as ws:
            project = create_project_from_paths(
                ws, model_path=model, dataset_path=tmp / "images", name="tiny omz"
            )
        yield OmzProject(tmp / "ws", project.id, images)


@dataclass(frozen=True)
class Optimized:
    parent: ModelRecord
    child: ModelRecord


def _optimize(project: OmzProject, work: Path, **settings: Any) -> Optimized:
    with Workspace(project.root) as ws:
        parent = ws.project(project.project_id)
        chosen = OptimizeSettings(preset=Preset.PERFORMANCE, subset_percent=100, **settings)
        child = optimize_project(ws, parent.id, chosen, work)
        return Optimized(ws.model(parent.model_id), ws.model(child.model_id))


@pytest.fixture(scope="module")
def rewritten(omz_project: OmzProject, tmp_path_factory: pytest.TempPathFactory) -> Optimized:
    """The INT8 child with the default settings (ROI extractors pooled by ROIAlign)."""
    return _optimize(omz_project, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def kept(omz_project: OmzProject, tmp_path_factory: pytest.TempPathFactory) -> Optimized:
    """The INT8 child with the ROI extractors kept."""
    return _optimize(omz_project, tmp_path_factory.mktemp("work"), rewrite_roi_extractors=False)


def _types(model: ov.Model) -> dict[str, str]:
    return {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}


# -- the structure and its detection ---------------------------------------------------


def test_the_tiny_model_has_the_omz_structure_and_is_detected_as_omz(tmp_path: Path) -> None:
    xml = build_tiny_omz_maskrcnn(tmp_path / "m.xml")
    loaded = load_model(xml)
    assert loaded.adapter.format_id == "omz-maskrcnn"
    kinds = list(_types(loaded.model).values())
    assert kinds.count("ExperimentalDetectronPriorGridGenerator") == 5
    assert kinds.count("ExperimentalDetectronGenerateProposalsSingleImage") == 5
    assert kinds.count(EXTRACTOR) == 2
    assert kinds.count("ExperimentalDetectronTopKROIs") == 1
    assert kinds.count("ExperimentalDetectronDetectionOutput") == 1
    assert kinds.count("ConvolutionBackpropData") == 1 and kinds.count("MatMul") == 4
    assert "Interpolate" not in kinds  # no resize in the graph, as OMZ's
    shapes = {
        o.get_any_name(): (list(o.get_shape()), o.get_element_type().get_type_name())
        for o in loaded.model.outputs
    }
    assert shapes == {
        "labels": ([DETECTIONS], "i32"),
        "boxes": ([DETECTIONS, 5], "f32"),
        "masks": ([DETECTIONS, 28, 28], "f32"),
    }
    assert list(loaded.adapter.class_names) == list(LABELS)


# -- the automatic scope ---------------------------------------------------------------


def test_the_scope_keeps_the_detectron_tail_in_float_and_quantizes_every_compute_layer() -> None:
    model = build_omz_model()
    types = _types(model)
    proposal = propose_ignored_scope(model)
    ignored = set(proposal.names)
    rule_of = {name: rule for rule, names in proposal.by_rule.items() for name in names}
    detectron = [n for n, kind in types.items() if kind.startswith(ED_PREFIX)]
    assert len(detectron) == 14
    assert all(rule_of.get(n) == BOX_RULE for n in detectron), {
        n: rule_of.get(n) for n in detectron
    }
    # The box tail after DetectionOutput: the Add of (0, 0, 1, 1) and the clip.
    assert rule_of[BOX_ADD] == rule_of[BOX_MIN] == BOX_RULE
    # The mask of each detection's class, after the mask head.
    assert rule_of[MASK_GATHER] == rule_of[MASK_SIGMOID] == NMS_RULE
    compute = [n for n, kind in types.items() if kind in COMPUTE_TYPES]
    assert len(compute) == COMPUTE_LAYERS
    assert sorted(ignored & set(compute)) == []
    # The backbone's activations are features, not geometry: the pyramid levels feed the
    # ROI extractors' feature inputs and the prior grids' shape inputs only.
    backbone = [n for n, kind in types.items() if kind in ("Relu", "MaxPool")]
    assert len(backbone) == 1 + 4 + 1 + 5 + 2 + 3
    assert sorted(ignored & set(backbone)) == []
    # The whole tail is reached back from the extractors' ROIs; after the mask head, the
    # class's mask (Gather, Sigmoid) and the outputs' Unsqueeze, Concat and label Subtract.
    assert proposal.to_json()["by_rule"] == {
        BOX_RULE: 38,
        "RoI feature merging": 1,  # the box head's flatten
        NMS_RULE: 5,
        "output decoding": 1,  # the mask logits' bias Add
        "preprocessing": 2,  # /255 and -0.5
        "inside geometry subgraphs": 0,
    }


def test_the_scope_of_the_rewritten_model_keeps_the_level_assignment_in_float() -> None:
    """What NNCF sees by default: each extractor is a ROIAlign over the padded pyramid."""
    model = build_omz_model()
    before = set(_types(model))
    rewrite_roi_extractors(model)
    added = {n: kind for n, kind in _types(model).items() if n not in before and kind != "Constant"}
    proposal = propose_ignored_scope(model)
    rule_of = {name: rule for rule, names in proposal.by_rule.items() for name in names}
    aligns = sorted(n for n, kind in added.items() if kind == "ROIAlign")
    assert aligns == [f"{BOX_EXTRACTOR}/{ROI_ALIGN}", f"{MASK_EXTRACTOR}/{ROI_ALIGN}"]
    # The ROIs' level, index and scaling are geometry; the padded levels, and the zero
    # plane appended to them, are features.
    float_kept = {n for n in added if rule_of.get(n) == BOX_RULE}
    features = set(added) - float_kept
    assert sorted(added[n] for n in features) == sorted(
        2 * ["Pad"] * 4 + 2 * ["Concat", "ConvertLike", "Broadcast"]
    )
    assert not features & set(rule_of)
    assert len(float_kept) == 2 * 24
    assert not {n for n, kind in _types(model).items() if kind in COMPUTE_TYPES} & set(rule_of)


# -- the INT8 model --------------------------------------------------------------------


def _runtime(record: ModelRecord) -> Any:
    model = load_registered(record).model
    return summarize_runtime(compile_model(model, "CPU", "f32", hint="LATENCY"), model)


def test_int8_runs_every_compute_layer_in_int8_and_pools_with_roialign(
    rewritten: Optimized,
) -> None:
    optimization = rewritten.child.optimization
    assert optimization is not None
    assert optimization["rewrite_roi_extractors"] is True
    rewrites = optimization["roi_rewrites"]
    assert [(r["name"], r["rois"], r["output_size"], r["levels"]) for r in rewrites] == [
        (BOX_EXTRACTOR, MAX_ROIS, BOX_POOL, 4),
        (MASK_EXTRACTOR, DETECTIONS, MASK_POOL, 4),
    ]
    runtime = _runtime(rewritten.child).to_json()
    assert runtime["compute_layers"] == COMPUTE_LAYERS
    assert runtime["compute_int8"] == runtime["compute_layers"], runtime["compute_float"]
    child_types = set(_types(load_registered(rewritten.child).model).values())
    assert EXTRACTOR not in child_types and "ROIAlign" in child_types
    names = {n for n, kind in _types(load_registered(rewritten.child).model).items()}
    assert {f"{BOX_EXTRACTOR}/{ROI_ALIGN}", f"{MASK_EXTRACTOR}/{ROI_ALIGN}"} <= names
    # The parent is untouched: its extractors, no quantizer.
    parent_types = list(_types(load_registered(rewritten.parent).model).values())
    assert parent_types.count(EXTRACTOR) == 2 and "FakeQuantize" not in parent_types


def test_keeping_the_extractors_records_no_rewrite(kept: Optimized) -> None:
    optimization = kept.child.optimization
    assert optimization is not None
    assert optimization["rewrite_roi_extractors"] is False
    assert "roi_rewrites" not in optimization
    child_types = list(_types(load_registered(kept.child).model).values())
    assert child_types.count(EXTRACTOR) == 2 and "ROIAlign" not in child_types
    runtime = _runtime(kept.child).to_json()
    assert runtime["compute_int8"] == runtime["compute_layers"] == COMPUTE_LAYERS


def _fake_quantize_count(record: ModelRecord) -> int:
    return sum(
        op.get_type_name() == "FakeQuantize" for op in load_registered(record).model.get_ops()
    )


def test_without_the_automatic_scope_the_rewrite_adds_no_quantizer(
    omz_project: OmzProject, tmp_path: Path
) -> None:
    """NNCF leaves the extractor alone; the operations that stand for it must be left too."""
    plain = _optimize(omz_project, tmp_path / "a", auto_ignore=False, rewrite_roi_extractors=False)
    pooled = _optimize(omz_project, tmp_path / "b", auto_ignore=False)
    assert pooled.child.optimization is not None
    assert len(pooled.child.optimization["roi_rewrites"]) == 2
    assert _fake_quantize_count(pooled.child) == _fake_quantize_count(plain.child) > 0
    model = load_registered(pooled.child).model
    for op in model.get_ordered_ops():
        if op.get_type_name() == "ROIAlign":
            sources = [op.input_value(i).get_node().get_type_name() for i in range(3)]
            assert "FakeQuantize" not in sources, sources


@dataclass(frozen=True)
class Detections:
    """One image's outputs: labels [N], boxes [N, 5] in network-input pixels, masks [N, S, S]."""

    labels: npt.NDArray[np.int32]
    boxes: npt.NDArray[np.float32]
    masks: npt.NDArray[np.float32]

    def match(self, label: int, box: npt.NDArray[np.float32]) -> int | None:
        """The row of `label` within 1.5 px and 0.05 of score of `box`, if there is one."""
        close = np.abs(self.boxes[:, :4] - box[:4]).max(axis=1) <= 1.5
        close &= np.abs(self.boxes[:, 4] - box[4]) <= 0.05
        rows = np.flatnonzero((self.labels == label) & close)
        return int(rows[0]) if rows.size else None


def _detections(record: ModelRecord, images: tuple[Path, ...]) -> list[Detections]:
    loaded = load_registered(record)
    request = compile_model(loaded.model, "CPU", "f32", hint="LATENCY").create_infer_request()
    found = []
    for image in images:
        inputs, _ = loaded.adapter.preprocess(load_image(image))
        request.infer(inputs)
        out = {
            o.get_any_name(): np.array(request.get_tensor(o).data) for o in request.model_outputs
        }
        found.append(Detections(out["labels"], out["boxes"], out["masks"]))
    return found


@pytest.mark.parametrize("variant", ["rewritten", "kept"])
def test_int8_detections_stay_those_of_the_parent(
    omz_project: OmzProject, variant: str, request: pytest.FixtureRequest
) -> None:
    """Each image's best detection, and nearly all the others, are the parent's.

    Which of two overlapping near-equal detections NMS keeps may change with the INT8
    arithmetic (it differs between CPUs), so detections are matched, not rows compared.
    """
    optimized: Optimized = request.getfixturevalue(variant)
    parents = _detections(optimized.parent, omz_project.images)
    children = _detections(optimized.child, omz_project.images)
    matched = 0
    for parent, int8 in zip(parents, children, strict=True):
        assert (parent.boxes[:, 4] > 0.2).all()  # the parent finds DETECTIONS boxes
        top = int8.match(int(parent.labels[0]), parent.boxes[0])
        assert top is not None, (parent.boxes[0], int8.boxes)
        # The mask head is quantized too: the same mask, probability by probability.
        assert np.abs(int8.masks[top] - parent.masks[0]).mean() < 0.02
        rows = [int8.match(int(c), b) for c, b in zip(parent.labels, parent.boxes, strict=True)]
        matched += sum(row is not None for row in rows)
    assert matched >= 0.8 * IMAGES * DETECTIONS


# -- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("keep", [False, True])
def test_cli_optimize_keeps_or_rewrites_the_roi_extractors(
    capsys: pytest.CaptureFixture[str], omz_project: OmzProject, keep: bool
) -> None:
    extra = ["--keep-roi-extractors"] if keep else []
    argv = ["--workspace", str(omz_project.root), "optimize", str(omz_project.project_id)]
    code, text = run_cli(capsys, [*argv, "--subset", "50", *extra])
    assert code == 0, text
    with Workspace(omz_project.root) as ws:
        child = ws.project(int(text.split("Child project ")[1].split(":")[0]))
        record = ws.model(child.model_id).optimization
    assert record is not None and record["rewrite_roi_extractors"] is not keep
    if keep:
        assert "ROI pooling" not in text and "roi_rewrites" not in record
        return
    assert len(record["roi_rewrites"]) == 2
    line = next(line for line in text.splitlines() if line.startswith("ROI pooling: "))
    assert line == (
        f"ROI pooling: 2 {EXTRACTOR} pooled by one ROIAlign each over the padded pyramid "
        f"({MAX_ROIS} ROIs at {BOX_POOL}x{BOX_POOL}, {DETECTIONS} ROIs at "
        f"{MASK_POOL}x{MASK_POOL}; same features)"
    )
