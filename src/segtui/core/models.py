"""Model import (OpenVINO IR or ONNX) and graph analysis."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openvino as ov
from openvino.frontend import FrontEndManager

from segtui.core.accuracy_values import Detector, checked_user_values
from segtui.core.checksums import file_checksum
from segtui.core.errors import ModelImportError, SegtuiError, UnsupportedModelError
from segtui.core.formats import (
    FormatAdapter,
    OmzMaskRcnnLegacyAdapter,
    YoloSegAdapter,
    detect_format,
    read_metadata_yaml,
    read_model_info,
)
from segtui.core.formats.metadata import names_from_model_info
from segtui.core.import_checks import (
    InputShapeError,
    check_input_shape,
    check_readable_file,
    model_file,
    shape_text,
)
from segtui.core.records import ModelAnalysis, ModelRecord
from segtui.core.workspace import Workspace

if TYPE_CHECKING:
    from segtui.core.workspace import _Tx

_core: ov.Core | None = None

WEIGHT_TYPES = {"f32", "f16", "bf16", "i8", "u8", "i4", "u4", "nf4", "f8e4m3", "f8e5m2"}


def ov_core() -> ov.Core:
    """One OpenVINO Core per process (creating one costs ~100 ms)."""
    global _core
    if _core is None:
        _core = ov.Core()
    return _core


def _check_ir_pair(xml_path: Path, bin_path: Path) -> tuple[str, int]:
    """Check that the .xml is an IR and the .bin holds what it references; return (IR version, bytes needed)."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, UnicodeDecodeError) as exc:
        raise ModelImportError(
            f"{xml_path.name} is not an OpenVINO IR: it is not valid XML ({exc}).",
            "Pass the .xml file of an IR (with its .bin beside it) or an .onnx file.",
        ) from exc
    root = tree.getroot()
    if root.tag != "net" or root.find("layers") is None:
        raise ModelImportError(
            f"{xml_path.name} is XML but not an OpenVINO IR (root element <{root.tag}>, expected <net> with <layers>).",
            "Pass the .xml file of an IR (with its .bin beside it) or an .onnx file.",
        )
    needed = 0
    for data in root.iter("data"):
        offset, size = data.get("offset"), data.get("size")
        if offset is not None and size is not None and offset.isdigit() and size.isdigit():
            needed = max(needed, int(offset) + int(size))
    if needed and not bin_path.exists():
        raise ModelImportError(
            f"The weights file {bin_path.name} is missing beside {xml_path.name}.",
            "Keep the .bin next to the .xml with the same base name.",
        )
    if bin_path.exists():
        check_readable_file(bin_path)
    actual = bin_path.stat().st_size if bin_path.exists() else 0
    if actual < needed:
        raise ModelImportError(
            f"{bin_path.name} is truncated: the IR references {needed:,} bytes of weights, the file has {actual:,}.",
            "Copy the .bin again (the transfer was probably cut short).",
        )
    if actual > needed:
        raise ModelImportError(
            f"{bin_path.name} does not belong to {xml_path.name}: it has {actual:,} bytes, the IR references {needed:,}.",
            "Use the .bin that was saved together with this .xml.",
        )
    return root.get("version", "?"), needed


@dataclass
class LoadedModel:
    """A model read from disk, made static, with its detected format."""

    model: ov.Model
    adapter: FormatAdapter
    ir_version: str
    source_kind: str  # "ir" | "onnx"
    reshaped: bool


def _openvino_reason(exc: BaseException) -> str:
    """OpenVINO's own words from an exception: the layer and the reason, without source paths."""
    layer, reasons = "", []
    for line in str(exc).strip().splitlines():
        text = re.sub(r"^Exception from \S+:\s*", "", line.strip())
        text = re.sub(r"^Check '.*' failed at \S+:\s*", "", text).strip()
        validating = re.search(r"While validating node .* with friendly_name '(.*)':$", text)
        if validating:
            layer = f"layer {validating.group(1)}: "
        elif text and not text.startswith("Shape inference input shapes"):
            reasons.append(text)
    return (layer + (reasons[-1] if reasons else type(exc).__name__))[:300]


def _reshape_to(model: ov.Model, input_shape: list[int], name: str) -> bool:
    """Reshape the model's one image input to `input_shape`; False when it already is that."""
    image_inputs = [
        i
        for i in model.inputs
        if i.get_partial_shape().rank.is_static and i.get_partial_shape().rank.get_length() == 4
    ]
    if len(image_inputs) != 1:
        described = ", ".join(
            f"{i.any_name}[{shape_text(_dims(i.get_partial_shape()))}]" for i in model.inputs
        )
        raise InputShapeError(
            f"An input shape needs one image input of rank 4 (N,C,H,W); {name} has "
            f"{len(image_inputs)} among its inputs {described}.",
            "Import it without an input shape.",
        )
    port = image_inputs[0]
    check_input_shape(input_shape, _dims(port.get_partial_shape()), name)
    if port.get_partial_shape().is_static and list(port.get_shape()) == list(input_shape):
        return False  # already that size: the same model, not a reshaped copy
    try:
        model.reshape({port: ov.PartialShape(input_shape)})
    except Exception as exc:
        original = shape_text(_dims(port.get_partial_shape()))
        raise InputShapeError(
            f"{name} cannot take the input shape {shape_text(input_shape)}: its layers refuse "
            f"that size (OpenVINO: {_openvino_reason(exc)}).",
            f"Pick a size the model supports, often a multiple of 32; it was exported as "
            f"[{original}].",
        ) from exc
    return True


def _make_static(model: ov.Model, input_shape: list[int] | None, name: str) -> bool:
    """Fix a dynamic batch to 1, apply --input-shape, refuse other dynamic dimensions.

    Returns whether the model was reshaped (its IR must then be saved anew).
    """
    if input_shape is not None:
        return _reshape_to(model, input_shape, name)
    new_shapes: dict[Any, ov.PartialShape] = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.is_static:
            continue
        if shape.rank.is_dynamic:
            raise UnsupportedModelError(
                f"{name} has an input of dynamic rank ({port.any_name}).",
                "Export it with a static input shape.",
            )
        dims = list(shape)
        if dims[0].is_dynamic and all(d.is_static for d in dims[1:]):
            new_shapes[port] = ov.PartialShape([1, *[d.get_length() for d in dims[1:]]])
        else:
            raise UnsupportedModelError(
                f"{name} has a dynamic input shape: {port.any_name}{shape}.",
                "Give a static size with `segtui import-model --input-shape 1,3,H,W` "
                "(or in the create-project form).",
            )
    if new_shapes:
        model.reshape(new_shapes)
    return bool(new_shapes)


def _check_frontend(path: Path, framework: str, ir_version: str = "?") -> None:
    """Refuse a file the IR or ONNX frontend cannot parse before read_model tries every frontend.

    OpenVINO would hand it to the TensorFlow frontend too, whose parser writes absl
    error lines straight to the terminal's stderr.
    """
    try:
        readable = FrontEndManager().load_by_framework(framework).supported(str(path))
    except Exception:
        readable = True  # no such frontend to ask: reading says what is wrong
    if readable:
        return
    if framework == "onnx":
        raise ModelImportError(
            f"{path.name} is not a readable ONNX model: it cannot be parsed as an ONNX file "
            "(corrupt, truncated or another format).",
            "Export the model to ONNX again, or pass an OpenVINO IR (.xml + .bin).",
        )
    raise ModelImportError(
        f"{path.name} is not an OpenVINO IR that this OpenVINO ({ov.get_version().split('-')[0]}) "
        f"reads: its IR version is {'missing' if ir_version == '?' else ir_version}.",
        "Convert the model again with OpenVINO's ovc, or pass the .onnx file.",
    )


def load_model(
    path: Path,
    *,
    class_names: list[str] | None = None,
    input_shape: list[int] | None = None,
    settings: Mapping[str, object] | None = None,
) -> LoadedModel:
    """Read an IR or ONNX model, make it static and detect its format; raise a clear error otherwise.

    `settings` are the user's accuracy values (checked ones: core.accuracy_settings),
    applied to the adapter; their "format" replaces detection.
    """
    path = model_file(Path(path))
    suffix = path.suffix.lower()
    if suffix == ".bin":
        raise ModelImportError(
            f"{path.name} is the weights file of an IR.",
            f"Pass {path.with_suffix('.xml').name} instead.",
        )
    if suffix not in (".xml", ".onnx"):
        raise ModelImportError(
            f"{path.name}: unknown model file type {suffix or '(none)'}.",
            "segtui imports OpenVINO IR (.xml + .bin) and ONNX (.onnx) files.",
        )
    check_readable_file(path)
    ir_version = "-"
    core = ov_core()
    try:
        if suffix == ".xml":
            ir_version, _ = _check_ir_pair(path, path.with_suffix(".bin"))
            _check_frontend(path, "ir", ir_version)
            model = core.read_model(path)
            kind = "ir"
        else:
            _check_frontend(path, "onnx")
            model = ov.convert_model(str(path))
            kind = "onnx"
            ir_version = "11"
    except SegtuiError:  # ours already, a cancel (Cancelled) included
        raise
    except Exception as exc:
        raise ModelImportError(
            f"OpenVINO cannot read {path.name}: {_openvino_reason(exc)}",
            "Check that the file is a complete OpenVINO IR or ONNX model.",
        ) from exc
    reshaped = _make_static(model, input_shape, path.name)
    adapter = detect_format(model, path, class_names, settings=settings or None)
    return LoadedModel(model, adapter, ir_version, kind, reshaped)


def _type_str(element_type: Any) -> str:
    return str(element_type.get_type_name())


def _dims(shape: Any) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in shape]


def _static_len(dim: Any, bound: int) -> int:
    if dim.is_static:
        return int(dim.get_length())
    upper = dim.get_max_length()
    return int(upper) if 0 < upper <= bound else 1


def _numel(shape: Any, bound: int = 1000) -> int:
    total = 1
    for dim in shape:
        total *= _static_len(dim, bound)
    return total


#: The layers whose multiply-adds are counted as the model's GFLOPs.
COMPUTE_FLOP_TYPES = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")


def _compute_flops(op: Any, type_name: str) -> tuple[int, bool]:
    """FLOPs of one compute layer (2 per multiply-add), and whether its output is dynamic."""
    out_shape = op.get_output_partial_shape(0)
    dynamic = not out_shape.is_static
    w_shape = op.get_input_partial_shape(1)
    if w_shape.rank.is_dynamic or out_shape.rank.is_dynamic:
        return 0, dynamic
    w = [_static_len(d, 100000) for d in w_shape]
    if type_name == "Convolution":
        return 2 * _numel(out_shape) * _prod(w[1:]), dynamic
    if type_name == "GroupConvolution":
        return 2 * _numel(out_shape) * _prod(w[2:]), dynamic
    if type_name == "ConvolutionBackpropData":
        return 2 * _numel(op.get_input_partial_shape(0)) * _prod(w[1:]), dynamic
    a_shape = op.get_input_partial_shape(0)
    transpose_a = bool(op.get_attributes().get("transpose_a", False))
    k_dim = a_shape[-2] if transpose_a else a_shape[-1]
    return 2 * _numel(out_shape) * _static_len(k_dim, 100000), dynamic


def analyze_model(model: ov.Model, adapter: FormatAdapter, ir_version: str) -> ModelAnalysis:
    """Inputs/outputs, GFLOPs and parameters from the graph, weight precisions, opset, format."""
    flops = 0
    dynamic_compute = False
    params = 0
    weight_types: Counter[str] = Counter()
    op_types: Counter[str] = Counter()
    opset = 0
    for op in model.get_ordered_ops():
        type_name = op.get_type_name()
        op_types[type_name] += 1
        match = re.match(r"opset(\d+)", op.get_type_info().version_id or "")
        if match:
            opset = max(opset, int(match.group(1)))
        if type_name == "Constant":
            etype = _type_str(op.get_output_element_type(0))
            shape = op.get_output_shape(0)
            count = 1
            for d in shape:
                count *= d
            if etype in WEIGHT_TYPES and count > 1:
                params += count
                weight_types[etype] += count
            continue
        if type_name in COMPUTE_FLOP_TYPES:
            op_flops, dynamic = _compute_flops(op, type_name)
            flops += op_flops
            dynamic_compute = dynamic_compute or dynamic
    total_weights = sum(weight_types.values()) or 1
    return {
        "format_id": adapter.format_id,
        "format": adapter.display_name,
        "inputs": [
            {
                "name": p.any_name,
                "shape": _dims(p.get_partial_shape()),
                "type": _type_str(p.get_element_type()),
            }
            for p in model.inputs
        ],
        "outputs": [
            {
                "name": _port_name(p, i),
                "shape": _dims(p.get_partial_shape()),
                "type": _type_str(p.get_element_type()),
            }
            for i, p in enumerate(model.outputs)
        ],
        "input_size": list(adapter.input_size),
        "gflops": round(flops / 1e9, 4),
        "gflops_partial": dynamic_compute,
        "params_m": round(params / 1e6, 4),
        "weight_precisions": {
            k: round(v / total_weights, 4) for k, v in weight_types.most_common()
        },
        "ir_version": ir_version,
        "opset": opset,
        "op_count": sum(op_types.values()),
        "int8": any(t == "FakeQuantize" for t in op_types),
        "fake_quantize_count": op_types.get("FakeQuantize", 0),
        "settings": adapter.settings(),
    }


def _prod(values: list[int]) -> int:
    total = 1
    for v in values:
        total *= v
    return total


def _port_name(port: Any, index: int) -> str:
    names = port.get_names()
    return port.any_name if names else f"output{index}"


def _known_class_count(loaded: LoadedModel, path: Path) -> tuple[int, str] | None:
    """How many classes the model itself says it has, and how it says so; None if it does not."""
    adapter, model = loaded.adapter, loaded.model
    if isinstance(adapter, YoloSegAdapter):
        return adapter.num_classes, f"its detections output scores {adapter.num_classes} classes"
    if isinstance(adapter, OmzMaskRcnnLegacyAdapter):
        channels = model.outputs[adapter.roles["masks"]].get_partial_shape()[1]
        if channels.is_static:
            count = channels.get_length() - 1
            return count, f"its masks output has {count} classes besides the background"
    own = read_metadata_yaml(path).names or names_from_model_info(read_model_info(model))
    if own:
        shown = ", ".join(own[:8]) + (" …" if len(own) > 8 else "")
        return len(own), f"its own labels are {shown}"
    return None


def _check_class_count(loaded: LoadedModel, path: Path, class_names: list[str]) -> None:
    """Refuse class names whose count differs from the classes the model predicts."""
    known = _known_class_count(loaded, path)
    if known is None or known[0] == len(class_names):
        return
    count, why = known
    raise ModelImportError(
        f"{len(class_names)} class names were given, but {path.name} predicts {count} "
        f"class(es): {why}.",
        f"Give {count} names, one per line, in the order of the model's class ids "
        "(or leave out the class names to use the model's own).",
    )


def _same_model(
    ws: Workspace, checksum: str, class_names: list[str], user: Mapping[str, object]
) -> ModelRecord | None:
    """A model already imported from the same files with the same class names and settings."""
    for record in ws.models():
        if (
            record.checksum == checksum
            and record.class_names == class_names
            and record.accuracy_settings == user
        ):
            return record
    return None


def _detector(loaded: LoadedModel, path: Path, class_names: list[str] | None) -> Detector:
    """The adapter detection builds for a format (None: the detected one) of a loaded model."""

    def detect(format_id: str | None) -> FormatAdapter:
        if format_id is None or format_id == loaded.adapter.format_id:
            return loaded.adapter
        return detect_format(loaded.model, path, class_names, format_id=format_id)

    return detect


def import_model(
    ws: Workspace,
    path: Path,
    *,
    name: str | None = None,
    class_names: list[str] | None = None,
    input_shape: list[int] | None = None,
    optimized_from: int | None = None,
    optimization: Mapping[str, object] | None = None,
    reuse_existing: bool = True,
    staging_dir: Path | None = None,
    then: Callable[[_Tx, int], None] | None = None,
    accuracy_settings: Mapping[str, object] | None = None,
) -> ModelRecord:
    """Copy a model into the workspace and register it with its analysis.

    An identical model (same checksum, classes and settings) that is already there is
    returned instead of being copied twice. Any failure leaves nothing behind. The copy
    is staged in `staging_dir` (a new folder; default: one under the workspace's tmp/),
    and `then(tx, model_id)` writes what belongs with the model in its transaction.
    `accuracy_settings` (text or typed values by key) are checked like `configure`'s and
    stored as the user's; the analysis keeps what detection found.
    """
    loaded = load_model(path, class_names=class_names, input_shape=input_shape)
    path = model_file(Path(path))
    if class_names is not None and optimized_from is None:  # a child has its parent's names
        _check_class_count(loaded, path, class_names)
    user: dict[str, object] = {}
    effective = loaded.adapter
    if accuracy_settings:
        user = checked_user_values(_detector(loaded, path, class_names), {}, accuracy_settings)
        effective = detect_format(loaded.model, path, class_names, settings=user)
    if staging_dir is None:
        staged = ws.staging_dir()
    else:
        staged = staging_dir
        staged.mkdir(mode=0o700, parents=True)
    try:
        xml_name = "model.xml"
        target = staged / xml_name
        if loaded.source_kind == "ir" and not loaded.reshaped:
            shutil.copyfile(path, target)
            shutil.copyfile(path.with_suffix(".bin"), target.with_suffix(".bin"))
        else:
            ov.save_model(loaded.model, target, compress_to_fp16=False)
        meta = path.parent / "metadata.yaml"
        if meta.is_file():
            shutil.copyfile(meta, staged / "metadata.yaml")
        checksum = file_checksum(target, target.with_suffix(".bin"))
        if reuse_existing and optimized_from is None:
            existing = _same_model(ws, checksum, effective.class_names, user)
            if existing is not None:
                shutil.rmtree(staged, ignore_errors=True)
                return existing
        analysis = analyze_model(loaded.model, loaded.adapter, loaded.ir_version)
        analysis["size_bytes"] = target.stat().st_size + target.with_suffix(".bin").stat().st_size
        analysis["source_kind"] = loaded.source_kind
        if loaded.reshaped:
            analysis["reshaped_to"] = [[int(d) for d in p.get_shape()] for p in loaded.model.inputs]
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return ws.add_model(
        name=name or path.stem,
        format_id=effective.format_id,
        source_path=str(path.resolve()),
        staged_dir=staged,
        xml_name=xml_name,
        checksum=checksum,
        analysis=analysis,
        class_names=list(effective.class_names),
        optimized_from=optimized_from,
        optimization=optimization,
        then=then,
        accuracy_settings=user,
    )


def load_registered(record: ModelRecord) -> LoadedModel:
    """Load a model that is in the workspace, with its class names and the accuracy settings
    the user set (so every consumer predicts with them)."""
    return load_model(
        record.xml_path,
        class_names=record.class_names or None,
        settings=record.accuracy_settings or None,
    )
