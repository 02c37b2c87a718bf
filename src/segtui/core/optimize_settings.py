"""The settings of an INT8 optimization, with every default and range from the OPTIMIZE schema."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum

from segtui.core.records import JsonObject
from segtui.core.settings import OPTIMIZE, checked
from segtui.core.types import DropType, Method, Preset


@dataclass(frozen=True)
class OptimizeSettings:
    """What the user chose on the Optimize page (or on the command line)."""

    method: Method = OPTIMIZE.method.default
    preset: Preset = OPTIMIZE.preset.default
    subset_percent: float = OPTIMIZE.subset_percent.default
    fast_bias_correction: bool = OPTIMIZE.fast_bias_correction.default
    auto_ignore: bool = OPTIMIZE.auto_ignore.default
    ignore_names: tuple[str, ...] = OPTIMIZE.ignore_names.default
    ignore_types: tuple[str, ...] = OPTIMIZE.ignore_types.default
    #: Bypass the quantizers that run as layers of their own and feed no INT8 compute
    #: (core.standalone_fq).
    drop_standalone_quantizers: bool = OPTIMIZE.drop_standalone_quantizers.default
    #: Pool with one ROIAlign over the padded pyramid instead of OMZ's
    #: ExperimentalDetectronROIFeatureExtractor (core.roi_rewrite).
    rewrite_roi_extractors: bool = OPTIMIZE.rewrite_roi_extractors.default
    #: Points of mask AP (absolute: 0.5 is 0.005 in AP units) or per cent (relative).
    max_drop: float = OPTIMIZE.max_drop.default
    drop_type: DropType = OPTIMIZE.drop_type.default
    validation_images: int = OPTIMIZE.validation_images.default

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> OptimizeSettings:
        """Settings from values by field name, checked and converted by the schema.

        Names the settings do not have are left out (a job's parameters may hold more);
        a value the schema refuses raises a SettingError that names the field.
        """
        known = {f.name for f in fields(cls)}
        return cls(**checked(OPTIMIZE, {k: v for k, v in values.items() if k in known}))

    @property
    def accuracy_aware(self) -> bool:
        return self.method == Method.ACCURACY_AWARE

    def validate(self) -> None:
        """Raise a SettingError naming every value the OPTIMIZE schema refuses."""
        OPTIMIZE.validate(self.values())

    def subset_count(self, image_count: int) -> int:
        """Images used for calibration: the percentage of the dataset, at least one."""
        # Rounded first: 250 × 64.4 % is 161.00000000000003 in floating point, not 162 images.
        exact = round(image_count * self.subset_percent / 100, 6)
        return max(1, min(image_count, math.ceil(exact)))

    def values(self) -> dict[str, object]:
        """The settings by field name, as they are (enums, tuples)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> JsonObject:
        """The settings as a job's JSON parameters (enums as their strings, tuples as lists)."""
        return {name: _json_value(value) for name, value in asdict(self).items()}


def _json_value(value: object) -> object:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = ["OptimizeSettings"]
