"""The machine behind a device: the processor's name, its capabilities, what "default" precision is.

OpenVINO is asked once per device and process (FULL_DEVICE_NAME, OPTIMIZATION_CAPABILITIES
and the device's default INFERENCE_PRECISION_HINT); on a CPU the /proc/cpuinfo flags add
what OpenVINO's list leaves out (AMX, VNNI, AVX-512, AVX2). OpenVINO is imported on the
first call, never at import: the TUI asks from a worker thread and its start path stays light.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

CPUINFO = Path("/proc/cpuinfo")

#: /proc/cpuinfo flags that say how fast INT8, bf16 and f32 can run, with the names shown.
CPU_FLAGS: tuple[tuple[str, str], ...] = (
    ("amx_bf16", "AMX-BF16"),
    ("amx_int8", "AMX-INT8"),
    ("amx_fp16", "AMX-FP16"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX512-BF16"),
    ("avx512_vnni", "AVX512-VNNI"),
    ("avx512_fp16", "AVX512-FP16"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx2", "AVX2"),
)
#: OpenVINO capabilities that say nothing about speed or precision, left out of the short text.
_PLUMBING_CAPABILITIES = frozenset({"EXPORT_IMPORT", "WINOGRAD", "BIN"})


class MachineJson(TypedDict):
    """`MachineInfo` as JSON (`segtui list devices --json`, every stored benchmark)."""

    device: str
    name: str
    #: OpenVINO's OPTIMIZATION_CAPABILITIES, as it lists them ("FP32", "BF16", "INT8", ...).
    capabilities: list[str]
    #: Instruction-set features from /proc/cpuinfo ("AMX-BF16", "AVX512-VNNI", "AVX2", ...).
    cpu_features: list[str]
    #: What `--precision default` runs at on this device ("bf16", "f32", "f16").
    default_precision: str


@dataclass(frozen=True)
class MachineInfo:
    """A device as OpenVINO and the processor describe it."""

    device: str
    name: str
    capabilities: tuple[str, ...] = ()
    cpu_features: tuple[str, ...] = ()
    default_precision: str = "f32"

    @property
    def features_text(self) -> str:
        """'AMX BF16/INT8, AVX-512 BF16/VNNI/FP16, AVX2' (OpenVINO's list where no flags are read)."""
        if self.cpu_features:
            return features_text(self.cpu_features)
        return ", ".join(c for c in self.capabilities if c not in _PLUMBING_CAPABILITIES)

    @property
    def summary(self) -> str:
        """'Intel(R) Xeon(R) Processor · AMX BF16/INT8, AVX2 · default precision bf16'."""
        parts = [self.name, self.features_text, f"default precision {self.default_precision}"]
        return " · ".join(part for part in parts if part)

    def to_json(self) -> MachineJson:
        return MachineJson(
            device=self.device,
            name=self.name,
            capabilities=list(self.capabilities),
            cpu_features=list(self.cpu_features),
            default_precision=self.default_precision,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> MachineInfo:
        """From a stored benchmark's `machine` (missing keys read as unknown)."""

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()

        return cls(
            device=str(data.get("device", "")),
            name=str(data.get("name", "")),
            capabilities=strings("capabilities"),
            cpu_features=strings("cpu_features"),
            default_precision=str(data.get("default_precision", "")),
        )


def cpu_features(flags: Iterable[str]) -> tuple[str, ...]:
    """The features of CPU_FLAGS present among `flags` (from /proc/cpuinfo), in CPU_FLAGS' order."""
    present = set(flags)
    return tuple(name for flag, name in CPU_FLAGS if flag in present)


def features_text(features: Sequence[str]) -> str:
    """Features grouped by family: 'AMX BF16/INT8, AVX-512 BF16/VNNI/FP16, AVX2'."""
    have = set(features)
    amx = [f.removeprefix("AMX-") for f in features if f.startswith("AMX-")]
    avx512 = [f.removeprefix("AVX512-") for f in features if f.startswith("AVX512-")]
    parts = [f"AMX {'/'.join(amx)}"] if amx else []
    if "AVX-512" in have or avx512:
        parts.append(" ".join(["AVX-512", "/".join(avx512)]).strip())
    if "AVX-VNNI" in have and "AVX512-VNNI" not in have:
        parts.append("AVX-VNNI")
    if "AVX2" in have:
        parts.append("AVX2")
    return ", ".join(parts)


def read_cpu_flags(path: Path = CPUINFO) -> frozenset[str]:
    """The first processor's flags in /proc/cpuinfo (empty where there is no such file)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.split())
    return frozenset()


def default_precision(capabilities: Iterable[str], hinted: str | None = None) -> str:
    """What "default" resolves to: the device's own precision hint, else bf16 where it has BF16."""
    if hinted:
        return hinted
    return "bf16" if "BF16" in set(capabilities) else "f32"


def _type_name(value: object) -> str | None:
    name = getattr(value, "get_type_name", None)
    text = str(name()) if callable(name) else str(value or "")
    return None if text in ("", "undefined", "dynamic") else text


def _ask_openvino(device: str) -> MachineInfo:
    from segtui.core.models import ov_core  # OpenVINO loads here, on the first question

    core = ov_core()

    def prop(name: str) -> object:
        try:
            return core.get_property(device, name)
        except Exception:  # a plugin that lacks the property, or a device that is gone
            return None

    raw_caps = prop("OPTIMIZATION_CAPABILITIES")
    capabilities = tuple(str(c) for c in raw_caps) if isinstance(raw_caps, list | tuple) else ()
    is_cpu = device.split(".")[0].upper() == "CPU"
    return MachineInfo(
        device=device,
        name=str(prop("FULL_DEVICE_NAME") or device),
        capabilities=capabilities,
        cpu_features=cpu_features(read_cpu_flags()) if is_cpu else (),
        default_precision=default_precision(
            capabilities, _type_name(prop("INFERENCE_PRECISION_HINT"))
        ),
    )


_cache: dict[str, MachineInfo] = {}
_lock = threading.Lock()


def machine_info(device: str = "CPU") -> MachineInfo:
    """The device's name, capabilities and default precision: asked once per process."""
    with _lock:
        if device not in _cache:
            _cache[device] = _ask_openvino(device)
        return _cache[device]


def cached_machine_info(device: str = "CPU") -> MachineInfo | None:
    """The device's info if it was asked already (never loads OpenVINO)."""
    with _lock:
        return _cache.get(device)


def machines() -> list[MachineInfo]:
    """Every device OpenVINO can use here, described."""
    from segtui.core.projects import available_devices

    return [machine_info(device) for device in available_devices()]


__all__ = [
    "MachineInfo",
    "MachineJson",
    "cached_machine_info",
    "cpu_features",
    "default_precision",
    "features_text",
    "machine_info",
    "machines",
    "read_cpu_flags",
]
