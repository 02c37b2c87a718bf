"""Why a model's ports do not fit a format the user chose: the first condition that fails."""

from __future__ import annotations

from segtui.core.formats.base import PortInfo


def _image(port: PortInfo) -> bool:
    return port.rank == 4 and port.shape[0] == 1 and port.shape[1] == 3


def _ranks(ports: list[PortInfo]) -> str:
    return ", ".join(f"{p.name} rank {p.rank}" for p in ports) or "none"


def _yolo(inputs: list[PortInfo], outputs: list[PortInfo]) -> str:
    if len(inputs) != 1 or not _image(inputs[0]):
        return f"it has {len(inputs)} input(s); yolo-seg takes one image input [1,3,H,W]"
    if len(outputs) != 2:
        return (
            f"it has {len(outputs)} output(s); yolo-seg has two, detections "
            "[1,4+classes+32,anchors] and prototypes [1,32,H/4,W/4]"
        )
    if sorted(p.rank for p in outputs) != [3, 4]:
        return (
            f"its outputs are {_ranks(outputs)}; yolo-seg needs one of rank 3 (detections) "
            "and one of rank 4 (prototypes)"
        )
    det = next(p for p in outputs if p.rank == 3)
    proto = next(p for p in outputs if p.rank == 4)
    return (
        f"its detections output {det.describe()} has too few channels for 4 box values, "
        f"at least one class score and the {proto.shape[1]} mask coefficients of "
        f"{proto.describe()}"
    )


def _legacy(inputs: list[PortInfo], outputs: list[PortInfo]) -> str:
    if len(inputs) != 2:
        return (
            f"it has {len(inputs)} input(s); omz-maskrcnn-legacy takes two, im_data "
            "[1,3,H,W] and im_info [1,3]"
        )
    return (
        f"its outputs are {_ranks(outputs)}; omz-maskrcnn-legacy needs classes [N] and "
        "scores [N] (rank 1), boxes [N,4] (rank 2) and raw_masks [N,C,S,S] (rank 4)"
    )


def _maskrcnn(inputs: list[PortInfo], outputs: list[PortInfo], format_id: str) -> str:
    if len(inputs) != 1 or not _image(inputs[0]):
        return f"it has {len(inputs)} input(s); {format_id} takes one image input [1,3,H,W]"
    return (
        f"its outputs are {_ranks(outputs)}; {format_id} needs labels [N], boxes [N,5] "
        "with the score and masks [N,S,S] (or each with a leading batch of 1)"
    )


def mismatch(inputs: list[PortInfo], outputs: list[PortInfo], format_id: str) -> str:
    """In words, why `format_id`'s matcher refused ports `inputs` and `outputs`."""
    if format_id == "yolo-seg":
        return _yolo(inputs, outputs)
    if format_id == "omz-maskrcnn-legacy":
        return _legacy(inputs, outputs)
    return _maskrcnn(inputs, outputs, format_id)
