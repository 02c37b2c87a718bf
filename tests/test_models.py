"""Model import and analysis, and every bad model input ending in a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import workspace_files
from onnx import TensorProto, helper
from tiny_models import (
    build_classifier,
    build_dynamic,
    build_omz_maskrcnn,
    build_omz_maskrcnn_conv,
    build_omz_maskrcnn_legacy,
    build_yolo_seg,
)

from segtui.core.errors import ModelImportError, UnsupportedModelError
from segtui.core.import_checks import InputShapeError, read_class_names
from segtui.core.models import import_model, load_model
from segtui.core.workspace import Workspace


def test_ir_import_copies_files_with_checksum_and_analysis(
    workspace: Workspace, tmp_path: Path
) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml", input_hw=(64, 96), labels=["cat", "dog"])
    record = import_model(workspace, xml)
    assert record.xml_path.is_file() and record.xml_path.with_suffix(".bin").is_file()
    assert record.xml_path.parent.parent == workspace.root / "models"
    assert len(record.checksum) == 64
    assert record.format_id == "omz-maskrcnn"
    assert record.class_names == ["cat", "dog"]
    a = record.analysis
    assert a["inputs"] == [{"name": "image", "shape": [1, 3, 64, 96], "type": "f32"}]
    assert [o["name"] for o in a["outputs"]] == ["labels", "boxes", "masks"]
    assert a["input_size"] == [64, 96] and a["size_bytes"] > 0 and a["opset"] >= 1
    # Importing the same file again returns the same model rather than a copy.
    assert import_model(workspace, xml).id == record.id
    assert len(workspace.models()) == 1


def test_gflops_and_parameters_are_computed_from_the_graph(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = import_model(
        workspace, build_omz_maskrcnn_conv(tmp_path / "c" / "model.xml", input_hw=(64, 64))
    )
    # conv1 3->8 3x3 s2 on 64x64 -> 32x32; conv2 8->8 3x3 s2 -> 16x16; matmul 1x8 @ 8x4; mask conv 8->4 1x1 on 16x16.
    flops = (
        2 * (8 * 32 * 32 * 3 * 9) + 2 * (8 * 16 * 16 * 8 * 9) + 2 * (4 * 8) + 2 * (4 * 16 * 16 * 8)
    )
    assert record.analysis["gflops"] == pytest.approx(flops / 1e9, abs=1e-4)
    weights = 8 * 3 * 9 + 8 * 8 * 9 + 8 * 4 + 4 * 8
    assert record.analysis["params_m"] * 1e6 == pytest.approx(weights, abs=100)
    assert record.analysis["weight_precisions"].get("f32", 0) > 0.9


def _onnx_omz(path: Path) -> Path:
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    zero = helper.make_node("ReduceSum", ["image"], ["sum"], keepdims=0)
    zmul = helper.make_node("Mul", ["sum", "zero_c"], ["z"])
    nodes = [zero, zmul]
    consts = [helper.make_tensor("zero_c", TensorProto.FLOAT, [], [0.0])]
    outs = []
    for name, shape, values in (
        ("labels", [2], [0.0, 1.0]),
        ("boxes", [2, 5], [2, 2, 10, 10, 0.9, 12, 12, 30, 30, 0.8]),
        ("masks", [2, 14, 14], [1.0] * (2 * 14 * 14)),
    ):
        consts.append(helper.make_tensor(f"{name}_c", TensorProto.FLOAT, shape, values))
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, "omz", [image], outs, initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def test_onnx_is_converted_to_ir_on_import(workspace: Workspace, tmp_path: Path) -> None:
    record = import_model(workspace, _onnx_omz(tmp_path / "m.onnx"))
    assert record.analysis["source_kind"] == "onnx"
    assert record.xml_path.suffix == ".xml" and record.xml_path.with_suffix(".bin").is_file()
    assert record.format_id == "omz-maskrcnn"


def test_truncated_bin_is_refused_and_nothing_is_left(workspace: Workspace, tmp_path: Path) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    bin_path = xml.with_suffix(".bin")
    bin_path.write_bytes(bin_path.read_bytes()[:-100])
    with pytest.raises(ModelImportError, match="truncated") as info:
        import_model(workspace, xml)
    assert "bytes" in info.value.message and info.value.hint
    assert workspace.models() == [] and workspace_files(workspace) == []


def test_xml_that_is_not_an_ir_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    bogus = tmp_path / "pom.xml"
    bogus.write_text("<project><modelVersion>4.0.0</modelVersion></project>")
    with pytest.raises(ModelImportError, match="not an OpenVINO IR"):
        import_model(workspace, bogus)
    garbage = tmp_path / "x.xml"
    garbage.write_bytes(b"\x00\x01 not xml")
    with pytest.raises(ModelImportError, match="not valid XML"):
        import_model(workspace, garbage)
    assert workspace.models() == [] and workspace_files(workspace) == []


def test_mismatched_xml_and_bin_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    small = build_omz_maskrcnn(tmp_path / "a" / "model.xml", input_hw=(32, 32), mask_size=14)
    large = build_omz_maskrcnn(tmp_path / "b" / "model.xml", input_hw=(32, 32), mask_size=28)
    shutil.copyfile(large.with_suffix(".bin"), small.with_suffix(".bin"))
    with pytest.raises(ModelImportError, match="does not belong to"):
        import_model(workspace, small)
    assert workspace.models() == [] and workspace_files(workspace) == []


def test_missing_bin_and_wrong_file_types(tmp_path: Path) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    xml.with_suffix(".bin").unlink()
    with pytest.raises(ModelImportError, match="missing"):
        load_model(xml)
    other = tmp_path / "weights.pt"
    other.write_bytes(b"1234")
    with pytest.raises(ModelImportError, match="unknown model file type"):
        load_model(other)
    with pytest.raises(ModelImportError, match="No such file"):
        load_model(tmp_path / "nope.xml")


def test_classifier_is_refused_naming_its_inputs_and_outputs(
    workspace: Workspace, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        import_model(workspace, build_classifier(tmp_path / "cls" / "model.xml"))
    text = str(info.value)
    assert "inputs image[1,3,224,224] f32" in text and "outputs prob[1,1000] f32" in text
    assert all(
        fmt in text
        for fmt in ("omz-maskrcnn", "omz-maskrcnn-legacy", "yolo-seg", "model-api-maskrcnn")
    )
    assert workspace.models() == [] and workspace_files(workspace) == []


def test_dynamic_model_is_refused_unless_given_a_shape(
    workspace: Workspace, tmp_path: Path
) -> None:
    xml = build_dynamic(tmp_path / "dyn" / "model.xml")
    with pytest.raises(UnsupportedModelError, match="dynamic") as info:
        import_model(workspace, xml)
    assert "--input-shape" in str(info.value)
    record = import_model(workspace, xml, input_shape=[1, 3, 48, 64])
    assert record.analysis["inputs"][0]["shape"] == [1, 3, 48, 64]
    assert record.analysis["reshaped_to"] == [[1, 3, 48, 64]]
    # The stored IR is the reshaped one.
    assert load_model(record.xml_path).adapter.input_size == (48, 64)


def test_unicode_path_imports(workspace: Workspace, tmp_path: Path) -> None:
    xml = build_omz_maskrcnn(tmp_path / "модель ü" / "model.xml")
    assert import_model(workspace, xml).format_id == "omz-maskrcnn"
    assert np.isfinite(workspace.models()[0].analysis["gflops"])


def test_an_input_shape_equal_to_the_models_is_no_reshape(
    workspace: Workspace, tmp_path: Path
) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml", input_hw=(48, 64))
    first = import_model(workspace, xml)
    assert import_model(workspace, xml, input_shape=[1, 3, 48, 64]).id == first.id
    assert "reshaped_to" not in first.analysis
    bigger = import_model(workspace, xml, input_shape=[1, 3, 64, 96])
    assert bigger.id != first.id and bigger.analysis["reshaped_to"] == [[1, 3, 64, 96]]
    assert len(workspace.models()) == 2


def test_a_bad_input_shape_names_the_models_input_and_leaves_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    dynamic = build_dynamic(tmp_path / "dyn" / "model.xml")
    for shape, says in (
        ([0, 0], "0,0 has 2 dimension(s)"),
        ([-1, 3, 64, 64], "-1 as N"),
        ([1, 3, 64, 9000], "9,000 as W: at most 8192"),
        ([1, 2, 64, 64], "2 channel(s): the image input takes 3"),
    ):
        with pytest.raises(InputShapeError) as info:
            import_model(workspace, dynamic, input_shape=shape)
        assert says in info.value.message and "[1,3,?,?]" in info.value.message
        assert info.value.hint.startswith("Give 1,3,H,W")
    conv = build_omz_maskrcnn_conv(tmp_path / "c" / "model.xml", input_hw=(64, 64))
    with pytest.raises(InputShapeError) as info:
        import_model(workspace, conv, input_shape=[1, 3, 96, 96])
    # OpenVINO's reason and layer, without its source file and check expression.
    assert "layer Reshape_" in info.value.message and "incompatible" in info.value.message
    assert ".cpp" not in info.value.message and ".hpp" not in info.value.message
    assert workspace.models() == [] and workspace_files(workspace) == []


def test_class_names_must_match_the_classes_the_model_predicts(
    workspace: Workspace, tmp_path: Path
) -> None:
    yolo = build_yolo_seg(tmp_path / "y" / "model.xml", num_classes=2)
    with pytest.raises(ModelImportError, match="scores 2 classes") as info:
        import_model(workspace, yolo, class_names=["a", "b", "c"])
    assert "3 class names were given" in info.value.message and "Give 2 names" in info.value.hint
    legacy = build_omz_maskrcnn_legacy(tmp_path / "l" / "model.xml", num_classes=3)
    with pytest.raises(ModelImportError, match="3 classes besides the background"):
        import_model(workspace, legacy, class_names=["a"])
    assert workspace.models() == [] and workspace_files(workspace) == []
    assert import_model(workspace, yolo, class_names=["x", "y"]).class_names == ["x", "y"]


def test_the_same_files_with_other_class_names_are_another_model(
    workspace: Workspace, tmp_path: Path
) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml", labels=["cat", "dog"])
    plain = import_model(workspace, xml)
    renamed = import_model(workspace, xml, class_names=["chat", "chien"])
    assert renamed.id != plain.id and renamed.class_names == ["chat", "chien"]
    assert import_model(workspace, xml, class_names=["chat", "chien"]).id == renamed.id
    assert import_model(workspace, xml, class_names=["cat", "dog"]).id == plain.id


def test_class_name_files_are_read_strictly(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_bytes("\ufeffperson\r\n\r\n  bicycle  \r\ncafé\n".encode())
    assert read_class_names(good) == ["person", "bicycle", "café"]
    for raw, says in (
        (b"", "holds no names"),
        (b"a\x00b\n", "binary data"),
        (b"\xff\xfe\n", "not UTF-8 text (byte 0xff at offset 0)"),
        (b"a\nb\na\n", "names the class 'a' twice (lines 1 and 3)"),
        (b"a\n" + b"x" * 300 + b"\n", "Line 2 of"),
    ):
        bad = tmp_path / "bad.txt"
        bad.write_bytes(raw)
        with pytest.raises(ModelImportError) as info:
            read_class_names(bad)
        assert says in info.value.message, (raw[:20], info.value.message)
