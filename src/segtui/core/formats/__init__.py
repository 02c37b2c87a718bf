"""Instance-segmentation model formats: detect one from the graph, preprocess, decode.

Every format decodes to the same `Instance` list (class id, score, box and
COCO-RLE mask in original-image pixels), so nothing downstream knows which
exporter produced a model. Detection (`detect`) looks at ranks and shapes first,
then at `rt_info["model_info"]` (Model API / OTX / Ultralytics) and a
`metadata.yaml` beside the IR (Ultralytics, both in `metadata`); tensor names only
break ties. Each format family has its module (`omz`, `omz_legacy`, `yolo`) on
the shared `base`, `preprocessing`, `masks` and `nms`.
"""

from segtui.core.formats.base import (
    MAX_DETECTIONS,
    AdapterConfig,
    AdapterSettings,
    FormatAdapter,
    PortInfo,
)
from segtui.core.formats.detect import SUPPORTED_FORMATS, detect_format
from segtui.core.formats.masks import MASK_THRESHOLD, map_to_original
from segtui.core.formats.metadata import (
    COCO_CLASSES,
    ExportMetadata,
    ModelInfo,
    read_metadata_yaml,
    read_model_info,
)
from segtui.core.formats.nms import nms
from segtui.core.formats.omz import MaskRcnnSettings, ModelApiMaskRcnnAdapter, OmzMaskRcnnAdapter
from segtui.core.formats.omz_legacy import LegacyMaskRcnnSettings, OmzMaskRcnnLegacyAdapter
from segtui.core.formats.overrides import (
    NMS_FORMATS,
    SETTING_KEYS,
    adapter_values,
    keys_for,
    with_values,
)
from segtui.core.formats.paste import paste_reference
from segtui.core.formats.preprocessing import (
    RESIZE_TYPES,
    Box,
    FloatArray,
    ImageSettings,
    ImageSettingsJson,
    PreprocessMeta,
    ResizeType,
    image_to_tensor,
    resize_image,
)
from segtui.core.formats.yolo import YoloCandidates, YoloSegAdapter, YoloSettings

__all__ = [
    "COCO_CLASSES",
    "MASK_THRESHOLD",
    "MAX_DETECTIONS",
    "NMS_FORMATS",
    "RESIZE_TYPES",
    "SETTING_KEYS",
    "SUPPORTED_FORMATS",
    "AdapterConfig",
    "AdapterSettings",
    "Box",
    "ExportMetadata",
    "FloatArray",
    "FormatAdapter",
    "ImageSettings",
    "ImageSettingsJson",
    "LegacyMaskRcnnSettings",
    "MaskRcnnSettings",
    "ModelApiMaskRcnnAdapter",
    "ModelInfo",
    "OmzMaskRcnnAdapter",
    "OmzMaskRcnnLegacyAdapter",
    "PortInfo",
    "PreprocessMeta",
    "ResizeType",
    "YoloCandidates",
    "YoloSegAdapter",
    "YoloSettings",
    "adapter_values",
    "detect_format",
    "image_to_tensor",
    "keys_for",
    "map_to_original",
    "nms",
    "paste_reference",
    "read_metadata_yaml",
    "read_model_info",
    "resize_image",
    "with_values",
]
