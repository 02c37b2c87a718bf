"""segtui against Ultralytics' own tools on the bundled YOLO sample (shapes-yolo).

Side by side, on the same model, the same 200 validation images, scored by the same
evaluator (segtui's, pycocotools):

1. decoding: segtui's f32 predictions vs Ultralytics' own (`predict`, retina masks,
   OpenVINO at f32), both at conf 0.05: mask and box AP, and the difference;
2. INT8: segtui's default optimization vs Ultralytics' `export(int8=True)` (NNCF,
   calibrated on the same 200 images): AP of each and the drop from f32, and the
   quantization wall time;
3. throughput, alternating rounds: parent f32, parent at the CPU's default precision,
   segtui INT8, Ultralytics INT8; INT8/f32 and INT8/default ratios for both.

    python benchmarks/yolo_vs_ultralytics.py --ultralytics-python /work/yolovenv/bin/python \
        --weights /work/yolo_runs/shapes/weights/best.pt [--time 8] [--rounds 3]

Needs a second Python with segtui's `train` extra (torch, ultralytics) for Ultralytics'
half (benchmarks/_ultralytics_side.py); the .pt weights the sample was exported from
(tools/train_yolo_sample.py) for Ultralytics' INT8 export.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median_ratio

from segtui.core.evaluation import evaluate_coco
from segtui.core.machine import machine_info
from segtui.core.predictions import ImagePrediction
from segtui.core.sample import sample_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def segtui(ws: Path, *args: str) -> Any:
    """One `segtui --json` command; its JSON answer."""
    cmd = [sys.executable, "-m", "segtui", "--workspace", str(ws), *args, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def ultralytics(python: str, *args: str) -> str:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [python, str(HERE / "_ultralytics_side.py"), *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"ultralytics {args[0]} failed: {done.stderr[-3000:]}")
    return done.stdout


def project_named(ws: Path, name: str) -> dict[str, Any]:
    projects = segtui(ws, "list", "projects")
    return next(p for p in projects if p["name"] == name)


def evaluate(ws: Path, project: int | str) -> dict[str, float]:
    result = segtui(ws, "evaluate", str(project), "--precision", "f32")
    return {k: float(result["metrics"][k]) for k in ("mask_ap", "box_ap", "mask_ap50")}


def score_ultralytics(predictions_json: Path) -> dict[str, float]:
    """Ultralytics' own predictions, scored by segtui's evaluator."""
    root = sample_dir("shapes")
    ground_truth = json.loads((root / "annotations" / "instances_val.json").read_text())
    ids = {im["file_name"]: int(im["id"]) for im in ground_truth["images"]}
    data = json.loads(predictions_json.read_text())
    predictions = [ImagePrediction.from_json(item) for item in data]
    metrics = evaluate_coco(ground_truth, predictions, ids).to_json()
    return {k: float(metrics[k]) for k in ("mask_ap", "box_ap", "mask_ap50")}  # type: ignore[literal-required]


def write_calibration_yaml(work: Path) -> Path:
    """Ultralytics' int8 export calibrates on its data yaml's val split: the sample's images."""
    sys.path.insert(0, str(REPO / "tools"))
    from train_yolo_sample import write_val

    write_val(work / "data")
    names = "\n".join(
        f"  {i}: {n}"
        for i, n in enumerate((sample_dir("shapes") / "classes.txt").read_text().split())
    )
    path = work / "data" / "data.yaml"
    path.write_text(f"path: {work / 'data'}\ntrain: images/val\nval: images/val\nnames:\n{names}\n")
    return path


def throughput(ws: Path, runs: dict[str, tuple[int, str]], seconds: float, rounds: int) -> None:
    fps: dict[str, list[float]] = {key: [] for key in runs}
    ran_at: dict[str, str] = {}
    for round_ in range(rounds):
        for key, (project, precision) in runs.items():
            data = segtui(
                ws,
                "benchmark",
                str(project),
                "--time",
                str(seconds),
                "--precision",
                precision,
                "--no-per-layer",
            )
            fps[key].append(float(data["throughput_fps"]))
            ran_at[key] = str(data["precision"])
            print(
                f"  round {round_ + 1} {key:22s} {fps[key][-1]:8.1f} FPS ({ran_at[key]})",
                flush=True,
            )
    print("throughput (median of rounds):")
    for key in runs:
        print(f"  {key:22s} {statistics.median(fps[key]):8.1f} FPS at {ran_at[key]}")
    for int8 in ("segtui INT8", "ultralytics INT8"):
        for base in ("parent f32", "parent default"):
            median, low, high = median_ratio(fps[int8], fps[base])
            print(
                f"  {int8} ({ran_at[int8]}) / {base} ({ran_at[base]}): "
                f"x{median:.2f} (rounds {low:.2f}-{high:.2f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ultralytics-python", required=True)
    parser.add_argument("--weights", required=True, type=Path)
    parser.add_argument("--time", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep the workspace and exports here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="segtui-yolo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ws = work / "ws"
    info = machine_info()
    print(f"CPU: {info.name} ({info.features_text}); default precision {info.default_precision}")
    segtui(ws, "sample", "shapes-yolo")
    parent = project_named(ws, "Sample: shapes-yolo (annotated)")
    model_dir = sample_dir("shapes-yolo") / "model"

    print("1. decoding, f32, conf 0.05, 200 images, scored by segtui's evaluator")
    ours = evaluate(ws, parent["id"])
    ultralytics(
        args.ultralytics_python,
        "predict",
        str(model_dir),
        str(sample_dir("shapes") / "images"),
        str(work / "ultralytics_f32.json"),
    )
    theirs = score_ultralytics(work / "ultralytics_f32.json")
    print(f"  segtui      mask AP {ours['mask_ap']:.4f}  box AP {ours['box_ap']:.4f}")
    print(f"  ultralytics mask AP {theirs['mask_ap']:.4f}  box AP {theirs['box_ap']:.4f}")
    print(f"  difference  mask AP {ours['mask_ap'] - theirs['mask_ap']:+.4f}")

    print("2. INT8, calibrated on the same 200 images")
    started = time.perf_counter()
    child = segtui(ws, "optimize", str(parent["id"]))
    segtui_seconds = time.perf_counter() - started
    child_id = int(child["child_project_id"])
    data_yaml = write_calibration_yaml(work)
    export = json.loads(
        ultralytics(
            args.ultralytics_python,
            "int8",
            str(args.weights),
            str(data_yaml),
            str(work / "ultralytics_int8"),
        )
        .strip()
        .splitlines()[-1]
    )
    xml = next((work / "ultralytics_int8").glob("*.xml"))
    theirs_int8 = segtui(
        ws, "create-project", str(xml), str(parent["dataset_id"]), "--name", "ultralytics int8"
    )
    segtui_int8 = evaluate(ws, child_id)
    ultra_int8 = evaluate(ws, int(theirs_int8["project"]["id"]))
    print(
        f"  segtui INT8      {segtui_seconds:6.1f} s wall (job incl. start)  mask AP "
        f"{segtui_int8['mask_ap']:.4f} (drop {100 * (ours['mask_ap'] - segtui_int8['mask_ap']):.2f} pt)"
        f"  box AP {segtui_int8['box_ap']:.4f}"
    )
    print(
        f"  ultralytics INT8 {export['export_seconds']:6.1f} s wall (export)          mask AP "
        f"{ultra_int8['mask_ap']:.4f} (drop {100 * (ours['mask_ap'] - ultra_int8['mask_ap']):.2f} pt)"
        f"  box AP {ultra_int8['box_ap']:.4f}"
    )

    print(f"3. throughput, THROUGHPUT hint, {args.rounds} alternating rounds of {args.time:g} s")
    throughput(
        ws,
        {
            "parent f32": (parent["id"], "f32"),
            "parent default": (parent["id"], "default"),
            "segtui INT8": (child_id, "default"),
            "ultralytics INT8": (int(theirs_int8["project"]["id"]), "default"),
        },
        args.time,
        args.rounds,
    )


if __name__ == "__main__":
    main()
