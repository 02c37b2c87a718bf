"""What a deployment package's config.json and README.md say.

The models with their input shapes and provenance, and the runtime configuration
`infer.py` compiles with by default: the best cell of the project's latest sweep (the
one the Configs screen and `segtui sweep` call the sweet spot, with no latency limit),
or, without a sweep, the defaults `infer.py` always used.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypedDict, cast

from segtui.core.errors import SegtuiError
from segtui.core.records import ModelRecord, PortJson, ResultRecord
from segtui.core.types import Hint, Precision, ResultKind
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.core.accuracy_values import AccuracySettingsJson
    from segtui.core.optimize import OptimizationRecord

#: How config.json and the README write a time (local time, with its offset).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class RuntimeSource(TypedDict):
    """Where a package's runtime configuration comes from: one cell of a stored sweep."""

    sweep_result_id: int
    measured_at: str
    throughput_fps: float
    latency_ms: float  # median
    #: The processor the sweep ran on (None for sweeps stored before it was kept).
    machine: str | None


class PackagedRuntime(TypedDict):
    """config.json's "runtime": how infer.py compiles the model unless told otherwise."""

    hint: Hint
    #: NUM_STREAMS; None lets the hint choose.
    streams: int | None
    #: Images per inference (the image input's first dimension).
    batch: int
    #: The INFERENCE_PRECISION_HINT asked for: f32, or the device's default.
    precision: Precision
    source: RuntimeSource | None


class PackagedModel(TypedDict):
    """A model in config.json."""

    name: str
    xml: str  # relative to the package folder
    checksum: str
    int8: bool
    input_shapes: dict[str, list[int]]
    optimization: OptimizationRecord | None  # how it was optimized, as stored
    #: How its inputs are prepared and its outputs decoded (the user's values and the
    #: detected ones): infer.py applies the values, so it predicts as segtui does.
    accuracy_settings: AccuracySettingsJson


class ProjectRef(TypedDict):
    id: int
    name: str


class PackageConfig(TypedDict):
    """config.json: what infer.py runs and where it came from."""

    segtui_version: str
    created_at: str
    project: ProjectRef
    format: str
    format_id: str
    device: str
    score_threshold: float
    class_names: list[str]
    model: PackagedModel
    parent: PackagedModel | None
    runtime: PackagedRuntime


def default_runtime() -> PackagedRuntime:
    """What infer.py compiled with before packages carried a sweep's: OpenVINO's defaults."""
    return {
        "hint": Hint.LATENCY,  # the CPU plugin's own default hint
        "streams": None,
        "batch": 1,
        "precision": Precision.DEFAULT,
        "source": None,
    }


def sweep_runtime(record: ResultRecord) -> PackagedRuntime | None:
    """The configuration of a stored sweep's best cell; None when no cell was measured."""
    # The engine loads here, not when the TUI imports the deploy dialog.
    from segtui.core.performance import SweepData, actual_streams, sweet_spot

    data = cast(SweepData, record.data)  # the database edge: a sweep job wrote it
    best = sweet_spot(data.get("cells", []), None)
    streams = None if best is None else actual_streams(best)
    if best is None or streams is None:
        return None
    # A sweep always runs THROUGHPUT, at the precision it was asked (default unless told).
    settings = data.get("settings") or {}
    # What ran, not what was asked: 4 streams asked may have run as 2, and the figures are 2's.
    return {
        "hint": Hint(settings.get("hint", Hint.THROUGHPUT)),
        "streams": streams,
        "batch": int(best.get("actual_batch", best["batch"])),
        "precision": Precision(settings.get("precision", Precision.DEFAULT)),
        "source": {
            "sweep_result_id": record.id,
            "measured_at": time.strftime(TIME_FORMAT, time.localtime(record.created_at)),
            "throughput_fps": float(best["throughput_fps"]),
            "latency_ms": float(best["latency_median_ms"]),
            "machine": best["machine"]["name"] if "machine" in best else None,
        },
    }


def recommended_runtime(ws: Workspace, project_id: int) -> PackagedRuntime:
    """The best configuration of the project's latest sweep, or the defaults without one."""
    sweeps = ws.results(project_id, ResultKind.SWEEP)
    found = sweep_runtime(sweeps[-1]) if sweeps else None
    return found if found is not None else default_runtime()


def runtime_text(runtime: PackagedRuntime) -> str:
    """'THROUGHPUT, 2 streams, batch 1' (and the precision where it is not the device's)."""
    streams = runtime["streams"]
    parts = [
        str(runtime["hint"]),
        "auto streams" if streams is None else f"{streams} stream{'' if streams == 1 else 's'}",
        f"batch {runtime['batch']}",
    ]
    if runtime["precision"] != Precision.DEFAULT:
        parts.append(f"{runtime['precision']} precision")
    return ", ".join(parts)


def runtime_line(runtime: PackagedRuntime) -> str:
    """One line for the CLI and the TUI: the configuration and the sweep it comes from."""
    source = runtime["source"]
    if source is None:
        return "runtime: defaults (no sweep)"
    return (
        f"runtime: {runtime_text(runtime)} from sweep #{source['sweep_result_id']} "
        f"({source['throughput_fps']:.1f} FPS on {source['machine'] or 'an unrecorded CPU'})"
    )


def _runtime_section(runtime: PackagedRuntime) -> list[str]:
    source = runtime["source"]
    lines = [
        "## Runtime configuration",
        "",
        f"`infer.py` compiles the model with **{runtime_text(runtime)}** "
        "(config.json's `runtime`; `--hint`, `--streams`, `--batch` and `--precision` "
        "override it) and prints the configuration it uses when it starts.",
        "",
    ]
    if source is None:
        return [*lines, "No sweep: defaults; run segtui sweep to tune.", ""]
    return [
        *lines,
        f"From segtui's sweep #{source['sweep_result_id']} of {source['measured_at']}: "
        f"the best throughput of its cells, {source['throughput_fps']:.1f} FPS at "
        f"{source['latency_ms']:.2f} ms median latency, measured on "
        f"{source['machine'] or 'a CPU it did not record'}. On another CPU the best "
        "configuration may differ: run `segtui sweep` there, or try `--streams` and `--batch`.",
        "",
    ]


def _static_shape(record: ModelRecord, port: PortJson) -> list[int]:
    # The import analysed the model after making it static: its input shapes are final.
    shape = [d for d in port["shape"] if d is not None]
    if len(shape) != len(port["shape"]):
        raise SegtuiError(
            f"Model {record.name!r} has a dynamic input shape ({port['name']}).",
            "Import it again with --input-shape.",
        )
    return shape


def model_entry(record: ModelRecord, folder: str) -> PackagedModel:
    """A model as config.json describes it; its IR goes to `folder`/model.xml."""
    from segtui.core.accuracy_settings import record_settings  # reads the model's graph

    return {
        "name": record.name,
        "xml": f"{folder}/model.xml",
        "checksum": record.checksum,
        "int8": bool(record.analysis.get("int8")),
        "input_shapes": {
            port["name"]: _static_shape(record, port) for port in record.analysis["inputs"]
        },
        "optimization": record.optimization,
        "accuracy_settings": record_settings(record).to_json(),
    }


def readme(project_name: str, config: PackageConfig, top: str) -> str:
    """The package's README.md: what it holds, how to run it, with which configuration."""
    model = config["model"]
    lines = [
        f"# {project_name} — deployment package",
        "",
        f"Built by segtui {config['segtui_version']} on {config['created_at']}.",
        "",
        f"- model: {model['name']} ({config['format']}), "
        f"{'INT8' if model['int8'] else 'floating-point'} weights, input "
        + ", ".join(f"{k} {'×'.join(map(str, v))}" for k, v in model["input_shapes"].items()),
        f"- classes ({len(config['class_names'])}): {', '.join(config['class_names'])}",
        f"- default device {config['device']}, score threshold {config['score_threshold']}",
    ]
    if config["parent"]:
        lines.append(f"- parent model (for comparison): {config['parent']['name']}, `--parent`")
    lines += [
        "",
        "## Run",
        "",
        "```bash",
        f"cd {top}",
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
        ".venv/bin/python infer.py path/to/images --out results.json --overlay overlays/",
        "```",
        "",
        "`infer.py` prints the instances found in each image; `--out` writes them as JSON",
        "(class, score, box in image pixels, mask as COCO RLE), `--overlay` draws them.",
        "`--precision f32` runs the floating-point layers at f32 on CPUs whose default is bf16.",
        "",
        *_runtime_section(config["runtime"]),
        "## Files",
        "",
        "- `model/` the OpenVINO IR; `parent/` the parent's IR when included",
        "- `segtui_runtime/` segtui's pre/post-processing for this format, unchanged but for",
        "  its imports, so results match segtui's",
        "- `config.json` format, input shapes, classes, thresholds, each model's accuracy",
        "  settings (its pre- and post-processing), the runtime configuration and where the",
        "  model came from",
        "- `classes.txt`, `requirements.txt` (the runtime, pinned)",
        "",
    ]
    return "\n".join(lines)
