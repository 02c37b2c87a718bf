"""The machine named: processor, capabilities, what "default" precision resolves to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest
from tiny_models import build_omz_maskrcnn_conv

from segtui.cli import main
from segtui.core import machine
from segtui.core.inference import compile_model, runtime_precision
from segtui.core.machine import (
    MachineInfo,
    cpu_features,
    default_precision,
    features_text,
    machine_info,
    read_cpu_flags,
)
from segtui.core.types import Precision

SAPPHIRE_RAPIDS_FLAGS = [
    "fpu",
    "sse",
    "avx",
    "avx2",
    "avx512f",
    "avx512dq",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "avx_vnni",
    "amx_bf16",
    "amx_tile",
    "amx_int8",
]


def test_cpu_features_are_named_and_ordered_from_the_flags() -> None:
    features = cpu_features(SAPPHIRE_RAPIDS_FLAGS)
    assert features == (
        "AMX-BF16",
        "AMX-INT8",
        "AVX-512",
        "AVX512-BF16",
        "AVX512-VNNI",
        "AVX512-FP16",
        "AVX-VNNI",
        "AVX2",
    )
    # AVX-VNNI is said only where AVX-512's VNNI is not there.
    assert features_text(features) == "AMX BF16/INT8, AVX-512 BF16/VNNI/FP16, AVX2"
    alder_lake = cpu_features(["fpu", "avx", "avx2", "avx_vnni"])
    assert alder_lake == ("AVX-VNNI", "AVX2")
    assert features_text(alder_lake) == "AVX-VNNI, AVX2"
    assert features_text(cpu_features(["avx512f", "avx2"])) == "AVX-512, AVX2"
    assert cpu_features(["sse4_2", "neon"]) == ()


def test_cpu_flags_are_read_from_cpuinfo_x86_and_arm(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_int8\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    assert read_cpu_flags(x86) == {"fpu", "avx2", "amx_int8"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert read_cpu_flags(arm) == {"fp", "asimd", "bf16", "i8mm"}
    assert read_cpu_flags(tmp_path / "missing") == frozenset()


def test_default_precision_is_the_device_hint_else_bf16_where_it_has_bf16() -> None:
    assert default_precision(["FP32", "BF16", "INT8"]) == "bf16"
    assert default_precision(["FP32", "FP16", "INT8"]) == "f32"
    assert default_precision([]) == "f32"
    assert default_precision(["FP32", "BF16"], "f32") == "f32"  # the device says otherwise
    assert default_precision(["FP16"], "f16") == "f16"


def test_summary_and_json_round_trip() -> None:
    info = MachineInfo(
        device="CPU",
        name="Intel(R) Xeon(R) Processor",
        capabilities=("BF16", "WINOGRAD", "FP32", "INT8", "EXPORT_IMPORT"),
        cpu_features=("AMX-BF16", "AVX2"),
        default_precision="bf16",
    )
    assert info.summary == ("Intel(R) Xeon(R) Processor · AMX BF16, AVX2 · default precision bf16")
    data = info.to_json()
    assert data["capabilities"] == ["BF16", "WINOGRAD", "FP32", "INT8", "EXPORT_IMPORT"]
    assert MachineInfo.from_json(json.loads(json.dumps(data))) == info
    # A GPU has no /proc/cpuinfo flags: OpenVINO's own list, less its plumbing, says it.
    gpu = MachineInfo("GPU", "Intel(R) Arc(TM)", ("FP32", "FP16", "INT8", "EXPORT_IMPORT"))
    assert gpu.features_text == "FP32, FP16, INT8"
    assert MachineInfo.from_json({}).name == ""


def test_this_machine_as_openvino_reports_it_and_default_as_it_compiles(tmp_path: Path) -> None:
    info = machine_info("CPU")
    core = ov.Core()
    assert info.name == core.get_property("CPU", "FULL_DEVICE_NAME")
    assert list(info.capabilities) == list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    assert info.cpu_features == cpu_features(read_cpu_flags())
    # "default" resolves to what a model compiled at the default precision really runs at.
    model = core.read_model(build_omz_maskrcnn_conv(tmp_path / "m.xml", input_hw=(32, 32)))
    compiled = compile_model(model, "CPU", Precision.DEFAULT)
    assert info.default_precision == runtime_precision(compiled)
    assert ("bf16" if "BF16" in info.capabilities else "f32") == info.default_precision
    assert machine_info("CPU") is info  # asked once per process
    assert machine.cached_machine_info("CPU") is info


def test_importing_the_module_loads_no_openvino() -> None:
    code = "import sys, segtui.core.machine; print('openvino' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "False"


def test_list_devices_names_the_processor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    info = machine_info("CPU")
    ws = str(tmp_path / "ws")
    assert main(["list", "devices", "--workspace", ws]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"CPU  {info.name}"
    assert f"default precision  {info.default_precision}" in text
    assert ", ".join(info.capabilities) in text
    assert main(["list", "devices", "--workspace", ws, "--json"]) == 0
    devices = json.loads(capsys.readouterr().out)
    cpu = next(d for d in devices if d["device"] == "CPU")
    assert cpu == info.to_json()
    assert cpu["default_precision"] in ("bf16", "f32")
