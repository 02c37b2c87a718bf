"""What the project page's Model and Dataset tabs list: a model's and a dataset's properties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segtui.core.records import DatasetRecord, ModelRecord
from segtui.core.roi_rewrite import rewrite_text
from segtui.core.settings_versions import optimization_staleness
from segtui.core.standalone_fq_record import standalone_text
from segtui.ui.widgets.property_table import Property

_MAX_CLASSES_SHOWN = 8
# Decoding settings that the Model tab already shows in their own rows.
_SETTINGS_SHOWN_ABOVE = {"format_id", "format", "class_names", "input_size"}


def shape_text(shape: Sequence[int | None] | None) -> str:
    if not shape:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


def size_text(size: int | float | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return _number(value, 4)
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value_text(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def class_names_text(names: list[str]) -> str:
    if not names:
        return "-"
    shown = ", ".join(names[:_MAX_CLASSES_SHOWN])
    more = ", … (all listed below)" if len(names) > _MAX_CLASSES_SHOWN else ""
    return f"{len(names)}: {shown}{more}"


def _port_rows(model: ModelRecord) -> list[Property]:
    analysis = model.analysis
    ports = [("Input", p) for p in analysis.get("inputs", [])]
    ports += [("Output", p) for p in analysis.get("outputs", [])]
    return [
        (f"{role} {port['name']}", f"{shape_text(port['shape'])} {port['type']}".strip())
        for role, port in ports
    ]


def _calibration_rows(model: ModelRecord) -> list[Property]:
    """The accuracy settings an optimized model was calibrated with, and if they still hold."""
    optimization = model.optimization
    recorded = optimization.get("accuracy_settings") if optimization else None
    if not recorded:
        return []
    text = f"version {recorded['version']}"
    if optimization_staleness(model).stale:
        text += " (stale: its accuracy settings changed since; optimize again)"
    return [("Calibrated with settings", text)]


def model_properties(model: ModelRecord) -> list[Property]:
    """What the Model tab lists: the model's record and its analysis."""
    a = model.analysis
    rows: list[Property] = [
        ("§Model", ""),
        ("Name", model.name),
        ("Format", str(a.get("format", model.format_id))),
        ("Format id", model.format_id),
    ]
    if a.get("source_kind"):
        rows.append(("Imported from", "ONNX" if a.get("source_kind") == "onnx" else "OpenVINO IR"))
    rows += _port_rows(model)
    if a.get("input_size"):
        rows.append(("Input size (H×W)", shape_text(a["input_size"])))
    reshaped = a.get("reshaped_to") or []
    if reshaped:
        rows.append(("Reshaped to", "; ".join(shape_text(s) for s in reshaped)))
    if a.get("gflops") is not None:
        partial = "≥ " if a.get("gflops_partial") else ""
        rows.append(("GFLOPs", partial + _number(a["gflops"], 4)))
    if a.get("params_m") is not None:
        rows.append(("Parameters (M)", _number(a["params_m"], 4)))
    precisions = a.get("weight_precisions") or {}
    shares = ", ".join(f"{k.upper()} {v * 100:.0f}%" for k, v in precisions.items())
    rows.append(("Weight precision", shares or "-"))
    if a.get("int8"):
        rows.append(("FakeQuantize ops", str(a.get("fake_quantize_count", 0))))
    rows.append(("IR version", str(a.get("ir_version", "-"))))
    if a.get("opset"):
        rows.append(("Opset", f"opset{a['opset']}"))
    rows.append(("Size on disk", size_text(a.get("size_bytes"))))
    class_names = [str(n) for n in model.class_names]
    rows.append(("Classes", class_names_text(class_names)))
    if model.optimization:
        rows.append(("§Optimization", ""))
        worded = {
            "standalone_quantizers": standalone_text(
                model.optimization.get("standalone_quantizers")
            ),
            "roi_rewrites": rewrite_text(model.optimization.get("roi_rewrites")),
        }
        rows += [
            (
                k.replace("_", " ").capitalize(),
                worded[k] if k in worded else _value_text(v),
            )
            for k, v in model.optimization.items()
            if k != "accuracy_settings"  # one row below, not its whole JSON
        ]
        rows += _calibration_rows(model)
    if model.accuracy_settings:
        # The user's values win over the detected ones below (e opens the form).
        rows.append(("§Accuracy settings set by you (e edits them)", ""))
        rows += [(k.replace("_", " "), _value_text(v)) for k, v in model.accuracy_settings.items()]
    settings = a.get("settings") or {}
    if settings:
        rows.append(("§Decoding settings as detected (e edits them)", ""))
        rows += [
            (k.replace("_", " "), _value_text(v))
            for k, v in settings.items()
            if k not in _SETTINGS_SHOWN_ABOVE
        ]
    if len(class_names) > _MAX_CLASSES_SHOWN:
        rows.append((f"§Class names ({len(class_names)})", ""))
        rows += [(f"class {i}", name) for i, name in enumerate(class_names)]
    return rows


def dataset_properties(dataset: DatasetRecord) -> list[Property]:
    """What the Dataset tab lists: the dataset's record and its analysis."""
    a = dataset.analysis
    rows: list[Property] = [
        ("§Dataset", ""),
        ("Name", dataset.name),
        (
            "Type",
            "Annotated (COCO instances)" if dataset.annotated else "Not annotated (images only)",
        ),
        ("Images folder", str(dataset.root)),
        ("Images", str(a.get("image_count", 0))),
    ]
    sizes = a.get("sizes") or {}
    if sizes:
        distinct = int(a.get("distinct_sizes", len(sizes)))
        text = ", ".join(f"{k} ×{v}" for k, v in sizes.items())
        if distinct > len(sizes):
            text += f" (+{distinct - len(sizes)} more sizes)"
        rows.append(("Sizes (W×H)", text))
    smallest, largest = a.get("min_size"), a.get("max_size")
    if smallest and largest:
        rows.append(("Smallest / largest", f"{shape_text(smallest)} / {shape_text(largest)}"))
    if dataset.annotated:
        counts = a.get("instance_counts") or {}
        rows.append(("Annotations", str(a.get("annotation_count", sum(counts.values())))))
        rows.append(("§Classes (instances)", ""))
        rows += [(name, str(counts.get(name, 0))) for name in a.get("classes", [])]
    skipped = a.get("skipped") or []
    rows.append((f"§Skipped files ({len(skipped)})", ""))
    if not skipped:
        rows.append(("(none)", "every file found was a readable image"))
    rows += [(s["path"], s["reason"]) for s in skipped]
    return rows
