"""The quantization preset each model format calls for, and why: shown before an optimization.

The OPTIMIZE schema's preset default stays the one default; a format differs from it only
where it is known to quantize better otherwise. Ultralytics' own INT8 export of a YOLO-seg
model uses NNCF's Mixed preset (symmetric weights, asymmetric activations): its activations
follow SiLU, which is not symmetric around 0. Measured on the bundled YOLOv8n-seg (f32 mask
AP 0.5590, 200 images): Performance with the DFL quantized (segtui before) 0.5532, Mixed
with it quantized 0.5543, Performance with the DFL in float 0.5552, Mixed with it in float
(now the default) 0.5570 — Ultralytics' own INT8 export 0.5559.
The front ends resolve the preset where the model's format is known (the Optimize page's
form, `segtui optimize`), so a job's parameters and the stored record hold the one used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from segtui.core.settings import OPTIMIZE
from segtui.core.types import Preset

#: How each preset reads in a sentence.
PRESET_NAMES: Mapping[Preset, str] = {Preset.PERFORMANCE: "Performance", Preset.MIXED: "Mixed"}

#: The formats whose preset is not the schema's default, and why.
FORMAT_PRESETS: Mapping[str, tuple[Preset, str]] = {
    "yolo-seg": (
        Preset.MIXED,
        "Ultralytics' own INT8 export uses it for YOLO-seg (asymmetric activations: "
        "SiLU outputs are not centred on 0)",
    ),
}

#: How the formats read in a reason (no adapter is imported here: the TUI starts without
#: OpenVINO).
FORMAT_LABELS: Mapping[str, str] = {
    "omz-maskrcnn": "OMZ Mask R-CNN",
    "omz-maskrcnn-legacy": "OMZ Mask R-CNN",
    "model-api-maskrcnn": "Model API Mask R-CNN",
    "yolo-seg": "YOLO-seg",
}


class PresetSource(StrEnum):
    """Who chose the preset."""

    FORMAT = "format"
    USER = "user"


class PresetChoiceJson(TypedDict):
    """A preset choice as `segtui optimize --json` prints it."""

    preset: str
    source: str
    reason: str


@dataclass(frozen=True)
class PresetChoice:
    """The preset an optimization uses, who chose it, and the line that says why."""

    preset: Preset
    source: PresetSource
    reason: str

    def to_json(self) -> PresetChoiceJson:
        return {"preset": self.preset.value, "source": self.source.value, "reason": self.reason}


def format_preset(format_id: str) -> PresetChoice:
    """The preset for a model of `format_id`: its own where it has one, else the schema's."""
    own = FORMAT_PRESETS.get(format_id)
    if own is not None:
        preset, why = own
        return PresetChoice(preset, PresetSource.FORMAT, f"{PRESET_NAMES[preset]}: {why}")
    preset = OPTIMIZE.preset.default
    label = FORMAT_LABELS.get(format_id, "this format")
    return PresetChoice(
        preset, PresetSource.FORMAT, f"{PRESET_NAMES[preset]}: segtui's default for {label}"
    )


def resolve_preset(format_id: str, asked: Preset | None) -> PresetChoice:
    """The user's preset when they chose one (`asked`), else the format's."""
    default = format_preset(format_id)
    if asked is None:
        return default
    if asked == default.preset:
        reason = f"{PRESET_NAMES[asked]}: your choice (also this format's preset)"
    else:
        reason = (
            f"{PRESET_NAMES[asked]}: your choice "
            f"(this format's preset is {PRESET_NAMES[default.preset]})"
        )
    return PresetChoice(asked, PresetSource.USER, reason)


def presets_help() -> str:
    """The formats' presets in a few words, for the command line's help."""
    own = [f"{PRESET_NAMES[p].lower()} for {f}" for f, (p, _) in FORMAT_PRESETS.items()]
    return ", ".join([*own, f"else {OPTIMIZE.preset.default_text}"])


__all__ = [
    "FORMAT_PRESETS",
    "PRESET_NAMES",
    "PresetChoice",
    "PresetChoiceJson",
    "PresetSource",
    "format_preset",
    "presets_help",
    "resolve_preset",
]
