"""A deployment package's runtime configuration: the latest sweep's best cell, used by infer.py.

(The package without a sweep, with OpenVINO's defaults, is checked in test_deploy.)
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import yaml
from conftest import sweep_cell
from test_deploy import _extract, _infer
from test_optimize import _project

from segtui.core.benchmark import BenchmarkSettings
from segtui.core.deploy import build_deployment
from segtui.core.deploy_config import PackagedRuntime, runtime_line
from segtui.core.machine import machine_info
from segtui.core.performance import SweepCell, SweepData, SweepSettings, sweep_project
from segtui.core.projects import create_project_from_paths
from segtui.core.types import Hint, Precision, ResultKind
from segtui.core.workspace import Workspace


def _batchable_yolo(path: Path, size: int = 64) -> Path:
    """A YOLO -seg model (batch 1, reshapeable) whose one detection scores its image's mean.

    Each image of a batch gets its own score, so outputs split wrongly between a batch's
    images show: image 2 would get image 1's score.
    """
    nc, nm, anchors = 2, 32, 4
    pred = np.zeros((1, 4 + nc + nm, anchors), np.float32)
    pred[0, :4, :] = np.array([[32.0], [32.0], [16.0], [16.0]])  # cx, cy, w, h
    pred[0, 4 + nc, 0] = 20.0  # anchor 0's mask: prototype 0, which is 1 everywhere
    pick = np.zeros_like(pred)
    pick[0, 4, 0] = 1.0  # anchor 0's class-0 score: the image's mean
    protos = np.zeros((1, nm, size // 4, size // 4), np.float32)
    protos[0, 0] = 1.0
    image = ops.parameter([1, 3, size, size], np.float32, name="images")
    image.output(0).get_tensor().set_names({"images"})
    mean = ops.unsqueeze(ops.reduce_mean(image, [1, 2, 3], keep_dims=False), [1, 2])
    scores = ops.add(ops.constant(pred), ops.multiply(mean, ops.constant(pick)))
    scores.output(0).get_tensor().set_names({"output0"})
    zero = ops.multiply(ops.reduce_sum(image, [0, 1, 2, 3], keep_dims=False), np.float32(0))
    prototypes = ops.add(ops.constant(protos), zero)
    prototypes.output(0).get_tensor().set_names({"output1"})
    model = ov.Model([ops.result(scores), ops.result(prototypes)], [image], "batchable_yolo")
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=False)
    metadata = {"task": "segment", "imgsz": [size, size], "names": ["a", "b"]}
    (path.parent / "metadata.yaml").write_text(yaml.safe_dump(metadata), encoding="utf-8")
    return path


def _scores(results: Path) -> list[float]:
    images = json.loads(results.read_text())["images"]
    return [image["instances"][0]["score"] for image in images]


def test_the_latest_sweeps_best_cell_is_the_packages_runtime_and_infer_uses_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    model = _batchable_yolo(tmp_path / "m" / "model.xml")
    for n, grey in enumerate((50, 130, 210)):  # three images: batch 2 ends with a short one
        path = tmp_path / "images" / f"{n}.png"
        path.parent.mkdir(exist_ok=True)
        assert cv2.imwrite(str(path), np.full((64, 64, 3), grey, np.uint8))
    project = create_project_from_paths(
        workspace, model_path=model, dataset_path=tmp_path / "images", name="yolo"
    )
    older = _hand_made_sweep("Older CPU", BenchmarkSettings(hint=Hint.THROUGHPUT))
    workspace.add_result(project_id=project.id, kind=ResultKind.SWEEP, data=older)
    # A real sweep, stored as a sweep job stores it; its 2 x 2 cell made the fastest.
    data = sweep_project(workspace, project.id, SweepSettings((1, 2), (1, 2), 0.5))
    best = data["cells"][3]
    assert (best["batch"], best["streams"], best["ok"]) == (2, 2, True)
    best["throughput_fps"] = 10 * max(float(c.get("throughput_fps", 0)) for c in data["cells"])
    stored = workspace.add_result(project_id=project.id, kind=ResultKind.SWEEP, data=data)
    here = machine_info("CPU").name
    ran = int(best.get("actual_streams", 0))
    assert ran >= 1
    expected: PackagedRuntime = {
        "hint": Hint.THROUGHPUT,
        "streams": ran,
        "batch": 2,
        "precision": Precision.DEFAULT,
        "source": {
            "sweep_result_id": stored.id,
            "measured_at": deploy_time(stored.created_at),
            "throughput_fps": best["throughput_fps"],
            "latency_ms": best["latency_median_ms"],
            "machine": here,
        },
    }
    result = build_deployment(workspace, project.id, tmp_path)
    package = _extract(result.path, tmp_path / "x")
    config = json.loads((package / "config.json").read_text())
    assert config["runtime"] == expected == result.runtime
    streams = f"{ran} stream{'' if ran == 1 else 's'}"
    fps = f"{best['throughput_fps']:.1f} FPS"
    assert runtime_line(result.runtime) == (
        f"runtime: THROUGHPUT, {streams}, batch 2 from sweep #{stored.id} ({fps} on {here})"
    )
    readme = (package / "README.md").read_text()
    assert f"**THROUGHPUT, {streams}, batch 2**" in readme
    assert f"sweep #{stored.id} of {deploy_time(stored.created_at)}: " in readme
    assert f"{fps} at {best['latency_median_ms']:.2f} ms median latency, measured on {here}." in (
        " ".join(readme.split())
    )

    images = str(tmp_path / "images")
    done = _infer(package, images, "--threshold", "0.01", "--out", str(tmp_path / "b2.json"))
    assert done.returncode == 0, done.stderr
    measured_at = deploy_time(stored.created_at)
    assert done.stdout.splitlines()[:2] == [
        f"runtime: THROUGHPUT, {streams}, batch 2 from sweep #{stored.id} ({fps} on {here}, "
        f"{measured_at})",
        f"compiled for CPU: {streams}, {ran} request{'' if ran == 1 else 's'} in flight",
    ]
    assert json.loads((tmp_path / "b2.json").read_text())["runtime"] == expected
    # The command line overrides the sweep's configuration, and the start line says so.
    done = _infer(
        package, images, "--streams", "1", "--batch", "1", "--threshold", "0.01",
        "--out", str(tmp_path / "b1.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        f"runtime: THROUGHPUT, 1 stream, batch 1 from sweep #{stored.id} ({fps} on {here}, "
        f"{measured_at}); --streams, --batch from the command line",
        "compiled for CPU: 1 stream, 1 request in flight",
    ]
    # Batched two at a time (the last batch padded), each image keeps its own result.
    batched, single = _scores(tmp_path / "b2.json"), _scores(tmp_path / "b1.json")
    assert batched == pytest.approx(single, abs=1e-3)
    assert single == pytest.approx([50 / 255, 130 / 255, 210 / 255], abs=0.01)


def deploy_time(created_at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created_at))


def _hand_made_sweep(cpu: str, settings: BenchmarkSettings) -> SweepData:
    """A stored sweep's shape with made-up figures: 1 x 4 asked ran with 2 streams, 2 x 1 failed."""
    machine = replace(machine_info("CPU"), name=cpu).to_json()
    cells: list[SweepCell] = [
        {**sweep_cell(1, 1, 40.0, 20.0), "actual_batch": 1, "actual_streams": 1},
        {**sweep_cell(1, 4, 63.8, 31.0), "actual_batch": 1, "actual_streams": 2},
        {"batch": 2, "streams": 1, "ok": False, "error": "This model cannot run with batch 2"},
    ]
    for cell in cells[:2]:
        cell["machine"] = machine
    return {"cells": cells, "settings": settings.to_json()}


def test_a_sweep_from_another_cpu_is_used_and_says_where_it_was_measured(
    workspace: Workspace, tmp_path: Path
) -> None:
    tiny = _project(workspace, tmp_path / "src", images=2)
    sweep = _hand_made_sweep("Test CPU 9000", BenchmarkSettings(precision=Precision.F32))
    stored = workspace.add_result(project_id=tiny.id, kind=ResultKind.SWEEP, data=sweep)
    result = build_deployment(workspace, tiny.id, tmp_path)
    assert result.runtime == {
        "hint": Hint.THROUGHPUT,
        "streams": 2,  # what the device ran: the figures are 2 streams'
        "batch": 1,
        "precision": Precision.F32,
        "source": {
            "sweep_result_id": stored.id,
            "measured_at": deploy_time(stored.created_at),
            "throughput_fps": 63.8,
            "latency_ms": 31.0,
            "machine": "Test CPU 9000",
        },
    }
    assert runtime_line(result.runtime) == (
        f"runtime: THROUGHPUT, 2 streams, batch 1, f32 precision from sweep #{stored.id} "
        "(63.8 FPS on Test CPU 9000)"
    )
    package = _extract(result.path, tmp_path / "x")
    readme = " ".join((package / "README.md").read_text().split())
    assert "63.8 FPS at 31.00 ms median latency, measured on Test CPU 9000." in readme
    images = str(workspace.dataset(tiny.dataset_id).root)
    here = machine_info("CPU").name
    start = (
        f"runtime: THROUGHPUT, 2 streams, batch 1, f32 precision from sweep #{stored.id} "
        f"(63.8 FPS on Test CPU 9000, {deploy_time(stored.created_at)}); this machine is "
        f"{here}, not the sweep's CPU: run segtui sweep to tune"
    )
    done = _infer(package, images)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        start,
        "compiled for CPU: 2 streams, 2 requests in flight",
    ]
    done = _infer(package, images, "--streams", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        start.replace("2 streams", "1 stream") + "; --streams from the command line",
        "compiled for CPU: 1 stream, 1 request in flight",
    ]
