"""A model's accuracy settings: its pre- and post-processing, seen and edited.

Detection reads them from the graph and its metadata (format, colour order, mean and
scale, resize, thresholds, class names); the user may set any of them (`configure`,
import flags, the TUI's model tab). The workspace stores only the user's values
(`models.accuracy_settings`); `models.load_registered` applies them, so every
consumer predicts with them. A model's `score_threshold` is a floor: decode keeps a
prediction when its score reaches both that and the operation's own threshold
(predict's, report's, deploy's...), so an operation's higher threshold filters further.

The fields are in `accuracy_fields`, the value and its checks in `accuracy_values`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping
from pathlib import Path

import openvino as ov

from segtui.core.accuracy_fields import FIELDS, AccuracyField, AccuracyKind, Origin, field_for
from segtui.core.accuracy_values import (
    AccuracySettings,
    AccuracySettingsJson,
    Detector,
    build_settings,
    checked_user_values,
    merge_changes,
    read_settings_file,
    settings_from,
    settings_version,
)
from segtui.core.formats import SETTING_KEYS, FormatAdapter, detect_format, keys_for
from segtui.core.models import load_model
from segtui.core.predictions import Instance
from segtui.core.records import ModelRecord
from segtui.core.workspace import Workspace

__all__ = [
    "FIELDS",
    "SETTING_KEYS",
    "AccuracyField",
    "AccuracyKind",
    "AccuracySettings",
    "AccuracySettingsJson",
    "Origin",
    "build_settings",
    "check_changes",
    "configure_model",
    "field_for",
    "keys_for",
    "model_settings",
    "read_settings_file",
    "record_settings",
    "settings_preview",
    "settings_version",
]

#: Adapters detection built, by (model file, checksum, class names, format): reading a
#: model again for every keystroke of the TUI's form would take ~0.1 s each.
_ADAPTERS: OrderedDict[tuple[str, str, tuple[str, ...], str | None], FormatAdapter] = OrderedDict()
_CACHED = 16
#: The TUI asks from a worker thread while its screen asks from the event loop.
_ADAPTERS_LOCK = threading.Lock()


def _base_class_names(record: ModelRecord) -> list[str]:
    """The class names the model was imported with (the analysis keeps detection's view)."""
    names = record.analysis.get("settings", {}).get("class_names")
    return list(names) if names else list(record.class_names)


def _detector(record: ModelRecord, graph: ov.Model | None = None) -> Detector:
    """Detection on a registered model, for its own format or one the user chose; on
    `graph` when the caller has loaded it already (else its files are read)."""
    names = _base_class_names(record)

    def detect(format_id: str | None) -> FormatAdapter:
        key = (str(record.xml_path), record.checksum, tuple(names), format_id)
        with _ADAPTERS_LOCK:
            cached = _ADAPTERS.get(key)
            if cached is not None:
                _ADAPTERS.move_to_end(key)
                return cached
        if graph is None:
            loaded = load_model(record.xml_path, class_names=names or None)
            model, adapter = loaded.model, loaded.adapter
        else:
            model, adapter = graph, detect_format(graph, record.xml_path, names or None)
        if format_id is not None and format_id != adapter.format_id:
            adapter = detect_format(model, record.xml_path, names or None, format_id=format_id)
        with _ADAPTERS_LOCK:
            _ADAPTERS[key] = adapter
            while len(_ADAPTERS) > _CACHED:
                _ADAPTERS.popitem(last=False)
        return adapter

    return detect


def record_settings(record: ModelRecord, graph: ov.Model | None = None) -> AccuracySettings:
    """The accuracy settings of a model record (detected values and the user's).

    `graph`: the model as `models.load_registered` gave it, so it is not read again.
    """
    return settings_from(_detector(record, graph), record.accuracy_settings)


def model_settings(ws: Workspace, model_id: int) -> AccuracySettings:
    """The accuracy settings of a registered model: detected values and the user's."""
    return record_settings(ws.model(model_id))


def check_changes(
    ws: Workspace,
    model_id: int,
    changes: Mapping[str, object],
    reset: Collection[str] = (),
) -> dict[str, str]:
    """A problem per refused key of `changes` (and `reset`); {} when all are fine. Writes nothing."""
    record = ws.model(model_id)
    _, problems = merge_changes(_detector(record), record.accuracy_settings, changes, reset)
    return problems


def configure_model(
    ws: Workspace,
    model_id: int,
    changes: Mapping[str, object],
    *,
    reset: Collection[str] = (),
) -> AccuracySettings:
    """Check and store the user's values (`reset`: keys back to detected); the new settings.

    Values may be text (parsed by each key's field) or typed. A refusal (SettingError
    naming every refused key, its value and why) stores nothing.
    """
    record = ws.model(model_id)
    detect = _detector(record)
    user = checked_user_values(detect, record.accuracy_settings, changes, reset)
    settings = settings_from(detect, user)
    class_names = settings.values["class_names"]
    assert isinstance(class_names, list)
    ws.set_model_accuracy_settings(
        model_id,
        settings.user_values(),
        format_id=settings.format_id,
        class_names=[str(n) for n in class_names],
    )
    return settings


#: The model the preview last compiled: the settings change pre- and post-processing
#: only, so each redraw of the form's preview reuses it.
_PREVIEW: dict[tuple[str, str], tuple[ov.Model, ov.CompiledModel]] = {}
_PREVIEW_LOCK = threading.Lock()


def _preview_model(record: ModelRecord) -> tuple[ov.Model, ov.CompiledModel]:
    from segtui.core.inference import compile_model
    from segtui.core.types import Precision

    key = (str(record.xml_path), record.checksum)
    if key not in _PREVIEW:
        _PREVIEW.clear()
        loaded = load_model(record.xml_path, class_names=_base_class_names(record) or None)
        _PREVIEW[key] = (loaded.model, compile_model(loaded.model, "CPU", Precision.F32))
    return _PREVIEW[key]


def settings_preview(
    ws: Workspace,
    model_id: int,
    changes: Mapping[str, object],
    image: Path,
    *,
    reset: Collection[str] = (),
    score_threshold: float = 0.05,
) -> list[Instance]:
    """One image predicted on CPU with the would-be settings (nothing stored), best first.

    Refused changes raise like `configure_model`; `{}` gives the current prediction.
    """
    from segtui.core.datasets import load_image

    record = ws.model(model_id)
    user = checked_user_values(_detector(record), record.accuracy_settings, changes, reset)
    pixels = load_image(image)
    with _PREVIEW_LOCK:  # one compiled model: its implicit infer request is not shared
        model, compiled = _preview_model(record)
        names = _base_class_names(record) or None
        adapter = detect_format(model, record.xml_path, names, settings=user or None)
        inputs, meta = adapter.preprocess(pixels)
        result = compiled(inputs)
        outputs = [result[port] for port in compiled.outputs]
    return adapter.decode(outputs, meta, score_threshold)
