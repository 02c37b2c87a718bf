"""A model's accuracy settings as a value: detected and user values merged, checked
against the model, versioned, written as YAML and read back.

Nothing here opens the workspace: a `Detector` gives the model's adapter as detection
builds it (for a format the user chose, or the detected one), so import can check the
values given on its command line before anything is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import yaml

from segtui.core.accuracy_fields import FIELDS, Origin, field_for
from segtui.core.errors import SegtuiError, UnsupportedModelError
from segtui.core.formats import NMS_FORMATS, SETTING_KEYS, FormatAdapter, adapter_values, keys_for
from segtui.core.setting_fields import SettingError

#: The model's adapter as detection builds it for a format id (None: the detected format);
#: raises UnsupportedModelError when the model's outputs do not fit that format.
Detector = Callable[[str | None], FormatAdapter]

#: How the formats that have a key are named in a refusal ("applies to YOLO-seg models only").
_FAMILY_NAMES = {"yolo-seg": "YOLO-seg"}


class AccuracySettingsJson(TypedDict):
    """`AccuracySettings` as JSON (`configure --json`, results that record their settings)."""

    version: str
    format_id: str
    values: dict[str, object]
    origins: dict[str, str]


def settings_version(values: Mapping[str, object]) -> str:
    """12 hex digits of sha256 over the canonical JSON of `values`."""
    canonical = json.dumps(dict(values), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:12]


@dataclass(frozen=True)
class AccuracySettings:
    """The effective value of every key that applies to the model's format, and its origin."""

    format_id: str
    values: Mapping[str, object]
    origins: Mapping[str, Origin]
    #: What detection gives for each key (the value a reset returns to).
    detected: Mapping[str, object] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """12 hex digits that change whenever an effective value changes."""
        return settings_version(self.values)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.values)

    def user_values(self) -> dict[str, object]:
        """Only the keys set by the user (what the workspace stores)."""
        return {k: v for k, v in self.values.items() if self.origins[k] == Origin.USER}

    def to_json(self) -> AccuracySettingsJson:
        return {
            "version": self.version,
            "format_id": self.format_id,
            "values": dict(self.values),
            "origins": {k: str(v) for k, v in self.origins.items()},
        }

    def to_yaml(self, title: str = "") -> str:
        """The settings file: the user's values as keys, detected ones as comments.

        `configure --from-file` reads it back to the same settings; removing the `# ` of
        a detected line sets that value.
        """
        lines = [
            f"# segtui accuracy settings{f' of {title}' if title else ''}: "
            f"format {self.format_id}, version {self.version}",
            "# Keys are the values you set; detected values are comments (remove '# ' to set one).",
        ]
        for key, value in self.values.items():
            text = f"{key}: {yaml_value(value)}"
            lines.append(text if self.origins[key] == Origin.USER else f"# {text}")
        return "\n".join(lines) + "\n"


def yaml_value(value: object) -> str:
    """One value in YAML's flow style on one line (quoted where YAML needs it)."""
    # A one-item flow list, unwrapped: scalars and lists alike come out on one line.
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=1_000_000)
    return text.strip()[1:-1]


def build_settings(detected: Mapping[str, object], user: Mapping[str, object]) -> AccuracySettings:
    """Detected values (every key of the format; "format" the detected one) with the
    user's over them."""
    values = {k: user.get(k, v) for k, v in detected.items()}
    origins = {k: Origin.USER if k in user else Origin.DETECTED for k in detected}
    return AccuracySettings(str(values["format"]), values, origins, dict(detected))


def _adapter_for(detect: Detector, format_id: object) -> tuple[FormatAdapter, FormatAdapter]:
    """(the detected adapter, the adapter of the format in effect)."""
    base = detect(None)
    if format_id is None or format_id == base.format_id:
        return base, base
    return base, detect(str(format_id))


def settings_from(detect: Detector, user: Mapping[str, object]) -> AccuracySettings:
    """The settings of a model whose detection is `detect`, with stored user values."""
    base, adapter = _adapter_for(detect, user.get("format"))
    detected = adapter_values(adapter)
    detected["format"] = base.format_id
    return build_settings(detected, {k: v for k, v in user.items() if k in detected})


def _not_applicable(key: str, format_id: str) -> str:
    families = [_FAMILY_NAMES.get(f, f) for f in NMS_FORMATS]
    return (
        f"{key} applies to {' and '.join(families)} models only "
        f"(this model's format is {format_id})."
    )


def merge_changes(
    detect: Detector,
    current: Mapping[str, object],
    changes: Mapping[str, object],
    reset: Collection[str] = (),
) -> tuple[dict[str, object], dict[str, str]]:
    """The user values after `reset` and `changes`, and a problem per refused key ({} if
    none). Values may be text (parsed by the key's field) or typed (YAML)."""
    problems: dict[str, str] = {}
    user = {k: v for k, v in current.items() if k not in reset}
    for key in [*reset, *changes]:
        if key not in FIELDS:
            problems[key] = f"Unknown accuracy setting {key!r} (known: {', '.join(SETTING_KEYS)})."
    for key, value in changes.items():
        if key in FIELDS:
            try:
                user[key] = field_for(key).check(value)
            except SettingError as exc:
                problems[key] = exc.message
    try:
        _, adapter = _adapter_for(detect, user.get("format"))
    except UnsupportedModelError as exc:
        problems["format"] = f"format: {exc.message}"
        adapter = detect(None)
    applicable = keys_for(adapter.format_id)
    for key in user:
        if key in FIELDS and key not in applicable and key not in problems:
            problems[key] = _not_applicable(key, adapter.format_id)
    names = user.get("class_names")
    if isinstance(names, list) and "class_names" not in problems:
        count = len(adapter.class_names)
        if len(names) != count:
            problems["class_names"] = (
                f"class_names: {len(names)} names given, but the model has {count} classes."
            )
    return user, problems


def refusal(problems: Mapping[str, str]) -> SettingError:
    """One error naming every refused key, with the allowed values of each."""
    first = next(iter(problems))
    hints = [
        f"{key}: {FIELDS[key].range_text()}"
        for key in problems
        if key in FIELDS and FIELDS[key].range_text() and key != "format"
    ]
    hint = f"Allowed: {'; '.join(hints)}." if hints else "Nothing was changed."
    return SettingError(first, " ".join(problems.values()), hint)


def checked_user_values(
    detect: Detector,
    current: Mapping[str, object],
    changes: Mapping[str, object],
    reset: Collection[str] = (),
) -> dict[str, object]:
    """The new user values, or a SettingError naming every refused key."""
    user, problems = merge_changes(detect, current, changes, reset)
    if problems:
        raise refusal(problems)
    return user


_FILE_HINT = "Write one `key: value` per line (see README, 'Accuracy settings')."


def read_settings_file(path: Path) -> dict[str, object]:
    """The `key: value` pairs of a YAML (or JSON) settings file; comments only is {}."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SegtuiError(f"No settings file {path}.", "Check the path.") from None
    except IsADirectoryError:
        raise SegtuiError(f"{path} is a folder, not a settings file.", _FILE_HINT) from None
    except UnicodeDecodeError:
        raise SegtuiError(f"{path} is not a text file (not UTF-8).", _FILE_HINT) from None
    except OSError as exc:
        raise SegtuiError(f"Cannot read {path}: {exc.strerror or exc}.", "") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise SegtuiError(f"{path} is not valid YAML{where}: {problem}.", _FILE_HINT) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SegtuiError(
            f"{path} holds a {type(data).__name__}, not a mapping of settings.", _FILE_HINT
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise SegtuiError(f"{path}: the key {bad[0]!r} is not a setting name.", _FILE_HINT)
    return {str(k): v for k, v in data.items()}
