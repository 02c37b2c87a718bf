"""Stored benchmarks with a time split (hand-made numbers), beside the older ones without."""

from __future__ import annotations

from test_ui_performance import CHILD_RT, PARENT_RT, bench

from segtui.core.runtime_graph import RuntimeProfile, StandaloneQuantizerJson, TimeCategory

#: Milliseconds per category: the child spends most of its time outside quantized compute.
CHILD_SPLIT = {
    TimeCategory.QUANTIZED_COMPUTE: 8.0,
    TimeCategory.FLOAT_COMPUTE: 0.5,
    TimeCategory.GEOMETRY: 5.0,
    TimeCategory.STANDALONE_QUANTIZERS: 1.0,
    TimeCategory.LAYOUT: 1.5,
    TimeCategory.OTHER: 4.0,
}
PARENT_SPLIT = {
    TimeCategory.QUANTIZED_COMPUTE: 0.0,
    TimeCategory.FLOAT_COMPUTE: 28.0,
    TimeCategory.GEOMETRY: 5.0,
    TimeCategory.STANDALONE_QUANTIZERS: 0.0,
    TimeCategory.LAYOUT: 3.0,
    TimeCategory.OTHER: 4.0,
}
FLATTEN_FQ = "box_head/flatten/fq_output_0"
IDLE_FQ = "mask_head/add/fq_output_0"
CHILD_QUANTIZERS = [
    StandaloneQuantizerJson(
        name=FLATTEN_FQ,
        original=[FLATTEN_FQ],
        ms=0.8,
        share=0.04,
        output_precision="I8",
        feeds_int8=True,
        feeds=["box_head/fc6"],
    ),
    StandaloneQuantizerJson(
        name=IDLE_FQ,
        original=[IDLE_FQ],
        ms=0.2,
        share=0.01,
        output_precision="U8",
        feeds_int8=False,
        feeds=[],
    ),
]


def with_split(
    runtime: RuntimeProfile,
    split: dict[TimeCategory, float],
    quantizers: list[StandaloneQuantizerJson],
) -> RuntimeProfile:
    total = sum(split.values())
    return runtime | RuntimeProfile(
        total_ms=total,
        time_split_ms={str(k): v for k, v in split.items()},
        time_split_share={str(k): round(v / total, 4) for k, v in split.items()},
        standalone_quantizers=quantizers,
    )


CHILD_SPLIT_RT = with_split(CHILD_RT, CHILD_SPLIT, CHILD_QUANTIZERS)
PARENT_SPLIT_RT = with_split(PARENT_RT, PARENT_SPLIT, [])


def child_run(split: bool = True) -> dict[str, object]:
    """The child at bf16 (default): with the split, or as stored before it existed."""
    return bench("bf16", 11.08, 90.0, "default", CHILD_SPLIT_RT if split else CHILD_RT)


def parent_run(split: bool = True) -> dict[str, object]:
    """The parent at f32: with the split, or as stored before it existed."""
    return bench("f32", 4.0, 250.0, "f32", PARENT_SPLIT_RT if split else PARENT_RT)
