"""The accuracy settings' fields: each key's label, help, allowed values and parsing.

A value arrives as text (the command line's `--set key=value`, a form field) or typed
(a YAML file); `AccuracyField.check` turns either into the one JSON form the workspace
stores: str, float, int, bool, [f, f, f] or [str, ...]. Checks that need the model (the
class count, which keys its format has, a format override) are in `accuracy_values`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from segtui.core.formats import MAX_DETECTIONS, RESIZE_TYPES, SETTING_KEYS, SUPPORTED_FORMATS
from segtui.core.setting_fields import SettingError


class Origin(StrEnum):
    """Where a setting's value comes from."""

    DETECTED = "detected"  # read from the graph / metadata by format detection
    USER = "user"  # set by the user (configure, import flags, the TUI form)


#: How a value is entered: "channels" is one number per input channel (one for all three).
AccuracyKind = Literal["choice", "float", "int", "bool", "channels", "names"]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclass(frozen=True)
class AccuracyField:
    """One accuracy setting: like `core.settings`' fields, with a per-channel kind."""

    key: str
    kind: AccuracyKind
    label: str
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    @property
    def name(self) -> str:
        """The key (the settings schemas' fields call it `name`)."""
        return self.key

    def range_text(self) -> str:
        """The allowed values in words, e.g. 'above 0 and below 1' or 'RGB or BGR'."""
        if self.kind == "choice":
            return " or ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.minimum is None or self.maximum is None:
            return ""
        low, high = _number_text(self.minimum), _number_text(self.maximum)
        lower = f"above {low}" if self.exclusive_minimum else f"at least {low}"
        upper = f"below {high}" if self.exclusive_maximum else f"at most {high}"
        if not (self.exclusive_minimum or self.exclusive_maximum):
            return f"{low}–{high}"
        return f"{lower} and {upper}"

    def _refuse(self, message: str) -> SettingError:
        use = self.range_text()
        return SettingError(self.key, f"{self.key}: {message}", f"Use {use}." if use else "")

    def _number(self, value: object) -> float:
        """A number in range (text parsed), or a SettingError saying what is wrong."""
        if isinstance(value, str):
            text = value.strip()
            try:
                value = float(text)
            except ValueError:
                raise self._refuse(f"{text!r} is not a number.") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._refuse(f"{value!r} is not a number.")
        number = float(value)
        if not math.isfinite(number):
            raise self._refuse(f"{value} is not a finite number.")
        if self.kind == "int" and not number.is_integer():
            raise self._refuse(f"{_number_text(number)} is not a whole number.")
        low, high = self.minimum, self.maximum
        too_low = low is not None and (number <= low if self.exclusive_minimum else number < low)
        too_high = high is not None and (
            number >= high if self.exclusive_maximum else number > high
        )
        if too_low or too_high:
            raise self._refuse(f"{_number_text(number)} is out of range.")
        return number

    def _channels(self, value: object) -> list[float]:
        if isinstance(value, str):
            parts = [p for p in value.replace(",", " ").strip("[]() ").split() if p]
            items: list[Any] = parts
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            items = [value]
        if len(items) == 1:
            items *= 3
        if len(items) != 3:
            shown = ", ".join(str(v) for v in items)
            raise self._refuse(
                f"needs 3 values, one per input channel, or one for all three "
                f"(got {len(items)}: {shown})."
            )
        return [self._number(v) for v in items]

    def _names(self, value: object) -> list[str]:
        if isinstance(value, str):
            names = [part.strip() for part in value.split(",")]
        elif isinstance(value, list | tuple):
            names = [str(v).strip() if isinstance(v, str | int | float) else "" for v in value]
        else:
            raise self._refuse(f"{value!r} is not a list of names.")
        if not names or any(not n for n in names):
            raise self._refuse("every class needs a name (an empty one was given).")
        return names

    def check(self, value: object) -> object:
        """`value` (text or typed) as the stored JSON value, or a SettingError naming the key."""
        if value is None:
            raise self._refuse("needs a value.")
        if self.kind == "choice":
            text = str(value).strip()
            by_lower = {c.lower(): c for c in self.choices}
            if text.lower() not in by_lower:
                raise self._refuse(f"{text!r} is not one of: {', '.join(self.choices)}.")
            return by_lower[text.lower()]
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in _TRUE + _FALSE:
                raise self._refuse(f"{value!r} is not true or false.")
            return text in _TRUE
        if self.kind == "float":
            return self._number(value)
        if self.kind == "int":
            return int(self._number(value))
        if self.kind == "channels":
            return self._channels(value)
        return self._names(value)

    def parse(self, text: str) -> object:
        """What a user typed (a form field, `--set key=TEXT`) as the stored value."""
        return self.check(text)

    def problem(self, value: object) -> str | None:
        """What is wrong with `value` (text or typed) for this key, or None."""
        try:
            self.check(value)
        except SettingError as exc:
            return exc.message
        return None

    def format(self, value: object) -> str:
        """The text a form field or `--set` takes for a stored value (parse reads it back)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float | int):
            return _number_text(float(value))
        if isinstance(value, list | tuple):
            return ",".join(self.format(v) if not isinstance(v, str) else v for v in value)
        return str(value)


_FIELDS: tuple[AccuracyField, ...] = (
    AccuracyField(
        "format",
        "choice",
        "Format",
        "how the outputs are decoded (detected from the graph; another one the outputs fit)",
        choices=tuple(fid for fid, _ in SUPPORTED_FORMATS),
    ),
    AccuracyField(
        "channel_order",
        "choice",
        "Channel order",
        "the colour order the model takes (OpenCV reads BGR)",
        choices=("RGB", "BGR"),
    ),
    AccuracyField(
        "mean",
        "channels",
        "Mean",
        "subtracted per channel after the resize: input = (pixel - mean) / scale",
        minimum=-255.0,
        maximum=255.0,
    ),
    AccuracyField(
        "scale",
        "channels",
        "Scale",
        "divides per channel after the mean (255 for models that take 0..1 input)",
        minimum=0.0,
        maximum=65535.0,
        exclusive_minimum=True,
    ),
    AccuracyField(
        "resize",
        "choice",
        "Resize",
        "standard stretches; the others keep the aspect ratio and pad (letterbox: Ultralytics')",
        choices=RESIZE_TYPES,
    ),
    AccuracyField(
        "pad_value",
        "float",
        "Pad value",
        "the padding's pixel value when the resize keeps the aspect ratio",
        minimum=0.0,
        maximum=255.0,
    ),
    AccuracyField(
        "score_threshold",
        "float",
        "Score threshold",
        "the lowest score a prediction keeps, whatever an operation asks (0: theirs)",
        minimum=0.0,
        maximum=1.0,
    ),
    AccuracyField(
        "mask_threshold",
        "float",
        "Mask threshold",
        "a mask pixel is on above this probability",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        exclusive_maximum=True,
    ),
    AccuracyField(
        "nms_iou",
        "float",
        "NMS IoU",
        "boxes overlapping a better one more than this are suppressed",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    AccuracyField(
        "class_aware_nms",
        "bool",
        "Class-aware NMS",
        "suppress only within a class (false: across classes)",
    ),
    AccuracyField(
        "max_detections",
        "int",
        "Max detections",
        "the most predictions an image keeps (the best ones)",
        minimum=1.0,
        maximum=float(MAX_DETECTIONS),
    ),
    AccuracyField(
        "class_names",
        "names",
        "Class names",
        "one name per class, in class-id order (comma-separated)",
    ),
)

FIELDS: dict[str, AccuracyField] = {f.key: f for f in _FIELDS}
assert tuple(FIELDS) == SETTING_KEYS  # one order for the form, the table and the file


def field_for(key: str) -> AccuracyField:
    """The field of a key; a SettingError names the known keys for any other."""
    found = FIELDS.get(key)
    if found is None:
        raise SettingError(
            key, f"Unknown accuracy setting {key!r}.", f"Known: {', '.join(SETTING_KEYS)}."
        )
    return found
