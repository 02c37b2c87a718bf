"""Stored JSON as segtui writes it (a model's analysis and optimization, benchmarks, sweeps,
evaluations), for workspaces built without running anything: import checks every one of
them against its TypedDict, as the workspace's readers index it."""

from __future__ import annotations

import hashlib
import json
from typing import cast

from segtui.core.accuracy import EvaluationResult
from segtui.core.benchmark import BenchmarkRun
from segtui.core.optimize import OptimizationRecord
from segtui.core.performance import SweepCell, SweepData
from segtui.core.records import ModelAnalysis
from segtui.core.workspace import Workspace

MACHINE = {
    "device": "CPU",
    "name": "Test CPU",
    "capabilities": ["FP32", "BF16", "INT8"],
    "cpu_features": ["AVX2"],
    "default_precision": "bf16",
}


def model_analysis(classes: list[str], *, int8: bool) -> ModelAnalysis:
    """A Mask R-CNN's analysis, as `models.analyze_model` and the import store it."""
    ports = [
        {"name": "labels", "shape": [None], "type": "i64"},
        {"name": "boxes", "shape": [None, 5], "type": "f32"},
        {"name": "masks", "shape": [None, 28, 28], "type": "f32"},
    ]
    settings = {
        "format_id": "omz-maskrcnn",
        "format": "OMZ Mask R-CNN",
        "image_input": "image",
        "mask_size": 28,
        "mask_threshold": 0.5,
        "outputs": {"labels": 0, "boxes": 1, "masks": 2},
        "confidence_threshold": 0.5,
        "iou_threshold": None,
        "num_classes": len(classes),
        "class_names": classes,
        "model_info": {"model_type": "MaskRCNN"},
        "input_size": [64, 64],
        "layout": "NCHW",
        "resize_type": "standard",
        "channel_order": "BGR",
        "mean_values": [0.0, 0.0, 0.0],
        "scale_values": [1.0, 1.0, 1.0],
        "pad_value": 0.0,
    }
    return cast(
        ModelAnalysis,
        {
            "format_id": "omz-maskrcnn",
            "format": "OMZ Mask R-CNN",
            "inputs": [{"name": "image", "shape": [1, 3, 64, 64], "type": "f32"}],
            "outputs": ports,
            "input_size": [64, 64],
            "gflops": 1.25,
            "gflops_partial": True,
            "params_m": 2.5,
            "weight_precisions": {"i8": 0.9, "f32": 0.1} if int8 else {"f32": 1.0},
            "ir_version": "11",
            "opset": 14,
            "op_count": 120,
            "int8": int8,
            "fake_quantize_count": 12 if int8 else 0,
            "settings": settings,
            "size_bytes": 1234,
            "source_kind": "ir",
        },
    )


def optimization_record() -> OptimizationRecord:
    """How `segtui optimize` records a Default-method INT8 model."""
    return cast(
        OptimizationRecord,
        {
            "method": "default",
            "preset": "performance",
            "subset_percent": 100.0,
            "subset_size": 3,
            "fast_bias_correction": True,
            "auto_ignored_scope": True,
            "ignored_scope": {"count": 1, "by_rule": {"geometry": 1}, "types": {}, "names": ["x"]},
            "ignored_names_count": 1,
            "user_ignore_names": [],
            "user_ignore_types": [],
            "calibration_seconds": 1.5,
            "if_bodies_skipped": 0,
            "started_at": 1_700_000_000.0,
        },
    )


def benchmark_run(model_id: int, fps: float, precision: str) -> BenchmarkRun:
    """A "benchmark" result: one measurement of the model `model_id`."""
    return {
        "throughput_fps": fps,
        "latency_median_ms": round(1000 / fps, 3),
        "latency_avg_ms": round(1100 / fps, 3),
        "latency_min_ms": round(900 / fps, 3),
        "latency_max_ms": round(2000 / fps, 3),
        "iterations": 40,
        "wall_s": 2.1,
        "device": "CPU",
        "hint": "THROUGHPUT",
        "streams": 2,
        "requests": 2,
        "batch": 1,
        "duration_s": 2.0,
        "precision": precision,
        "requested_precision": "f32",
        "images": 3,
        "runtime": {"layers": 40, "time_by_type_ms": {"Convolution": 3.5, "Add": 0.25}},
        "machine": cast("dict[str, object]", MACHINE),  # type: ignore[typeddict-item]
        "model_id": model_id,
        "int8": precision != "f32",
    }


def sweep_data(model_id: int, fps: float) -> SweepData:
    """A "sweep" result: a cell that ran and one that failed."""
    asked = {"batch": 1, "streams": 2, "actual_batch": 1, "actual_streams": 2, "ok": True}
    ran = cast(SweepCell, {**benchmark_run(model_id, fps, "bf16"), **asked})
    failed: SweepCell = {"batch": 4, "streams": 8, "ok": False, "error": "out of memory"}
    settings = {
        "hint": "THROUGHPUT",
        "streams": None,
        "requests": None,
        "batch": 1,
        "duration_s": 2.0,
        "precision": "default",
        "device": "CPU",
    }
    return {"cells": [ran, failed], "settings": settings}  # type: ignore[typeddict-item]


def evaluation_result(mask_ap: float, box_ap: float) -> EvaluationResult:
    """An "accuracy" result: COCO AP of a model on its annotated dataset."""
    metrics = {
        "box_ap": box_ap,
        "box_ap50": box_ap,
        "box_ap75": box_ap,
        "mask_ap": mask_ap,
        "mask_ap50": mask_ap,
        "mask_ap75": mask_ap,
        "mask_ap_small": None,
        "mask_ap_medium": mask_ap,
        "mask_ap_large": None,
        "images": 3,
        "ground_truth": 7,
        "detections": 8,
    }
    return cast(
        EvaluationResult,
        {
            "metrics": metrics,
            "precision": "f32",
            "device": "CPU",
            "images": 3,
            "inference_seconds": 0.5,
        },
    )


def make_whole(ws: Workspace, model_id: int, *, int8: bool) -> None:
    """A stand-in model (report_builder's: an .xml alone, its name as checksum, `{}` as
    analysis) made whole: a weights file, the checksum of its files, and the analysis and
    optimization record `import-model` and `optimize` store."""
    model = ws.model(model_id)
    weights = model.xml_path.with_suffix(".bin")
    weights.write_bytes(f"weights of {model.name}".encode())
    checksum = hashlib.sha256(model.xml_path.read_bytes() + weights.read_bytes()).hexdigest()
    analysis = json.dumps(model_analysis(model.class_names, int8=int8))
    optimization = json.dumps(optimization_record()) if int8 else None
    with ws.transaction() as tx:
        tx.execute(
            "UPDATE models SET checksum = ?, analysis = ?, optimization = ? WHERE id = ?",
            (checksum, analysis, optimization, model_id),
        )
