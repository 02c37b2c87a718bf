"""The HTML report's summary: both models, how the report was made, its totals and its AP.

Every figure is tagged with the summary key it shows and its exact stored value
(`data-key`, `data-value`), the same keys as `segtui report --json` prints, so a reader
(or a test) can check the page against the stored report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segtui.core.evaluation import CocoMetricsData
from segtui.core.html_page import MISSING, ap_text, element, esc, facts, figure, fixed
from segtui.core.records import (
    DatasetImage,
    DatasetRecord,
    ModelRecord,
    ProjectRecord,
    ResultRecord,
    optimization_text,
)
from segtui.core.report import ReportData, mask_ap_drop
from segtui.core.types import ReportType

REPORT_TYPE_TITLES = {
    ReportType.PARENT: "Optimized vs parent model predictions",
    ReportType.ANNOTATIONS: "Accuracy on the validation dataset's annotations",
}
#: (key in CocoMetricsData, label): the AP figures shown, in order.
AP_FIGURES: tuple[tuple[str, str], ...] = (
    ("mask_ap", "Mask AP@[.50:.95]"),
    ("mask_ap50", "Mask AP50"),
    ("box_ap", "Box AP@[.50:.95]"),
    ("box_ap50", "Box AP50"),
)


@dataclass(frozen=True)
class ReportSources:
    """What a page is built from: the stored report and the records it names."""

    record: ResultRecord
    data: ReportData
    optimized: ProjectRecord
    parent: ProjectRecord
    optimized_model: ModelRecord
    parent_model: ModelRecord
    dataset: DatasetRecord
    #: The dataset's images, read once for the page.
    images: Sequence[DatasetImage]

    @property
    def report_type(self) -> ReportType:
        return self.data["summary"]["type"]

    @property
    def b_name(self) -> str:
        """What B is: the parent model's predictions, or the annotations."""
        return "parent" if self.report_type == ReportType.PARENT else "annotations"


def made_at(created_at: float) -> str:
    """A stored time as the page shows it: local date and time, with the UTC offset."""
    return time.strftime("%Y-%m-%d %H:%M UTC%z", time.localtime(created_at))


def model_format(model: ModelRecord) -> str:
    """The model's format as its import named it, and the kind of file it came from."""
    analysis = model.analysis or {}
    name = str(analysis.get("format") or model.format_id)
    source = analysis.get("source_kind")
    return f"{name} ({str(source).upper()})" if source else name


def _model_row(role: str, project: ProjectRecord, model: ModelRecord) -> str:
    weights = optimization_text(model.optimization) if model.is_optimized else "as imported"
    cells = [
        element("th", esc(role), {"scope": "row"}),
        element("td", f"{esc(project.name)} <span class='count'>#{project.id}</span>"),
        element("td", esc(model.name), {"class": "name"}),
        element("td", esc(model_format(model))),
        element("td", esc(weights)),
    ]
    return f"<tr>{''.join(cells)}</tr>"


def models_card(src: ReportSources) -> str:
    """Both models: project, model, format, how it was made; the precision both ran at."""
    summary = src.data["summary"]
    head = "".join(f"<th>{label}</th>" for label in ("", "Project", "Model", "Format", "Weights"))
    rows = _model_row("A · optimized", src.optimized, src.optimized_model)
    parent_role = "B · parent" if src.report_type == ReportType.PARENT else "Parent"
    rows += _model_row(parent_role, src.parent, src.parent_model)
    ran, requested = summary["precision"], summary["requested_precision"]
    precision = figure("precision", ran, ran)
    # Not "f32 (asked f32)": what was asked is only spelled out where it is not what ran.
    asked = (
        " (" + figure("requested_precision", requested, "as asked") + ")"
        if requested == ran
        else " (asked " + figure("requested_precision", requested, requested) + ")"
    )
    b_text = (
        "B is the parent model's predictions."
        if src.report_type == ReportType.PARENT
        else f"B is the annotations of {esc(src.dataset.name)}; both models are scored on them."
    )
    note = (
        f"<p class='note'>Both models ran at {precision}{asked} on "
        f"{figure('device', summary['device'], summary['device'])}. {b_text}</p>"
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return element("div", f"<h3>Models</h3>{table}{note}", {"class": "card wide"})


def settings_card(src: ReportSources) -> str:
    summary = src.data["summary"]
    rows = [
        ("Report type", figure("type", str(summary["type"]), REPORT_TYPE_TITLES[src.report_type])),
        (
            "Score threshold",
            "≥ " + figure("threshold", summary["threshold"], f"{summary['threshold']:g}"),
        ),
        ("Match IoU", "≥ " + figure("iou", summary["iou"], f"{summary['iou']:g}")),
        ("Dataset", f"{esc(src.dataset.name)} ({len(src.images)} images)"),
        (
            "Inference time",
            figure(
                "inference_seconds",
                summary["inference_seconds"],
                f"{fixed(summary['inference_seconds'], 1)} s (both models)",
            ),
        ),
        ("Made", esc(made_at(src.record.created_at)) + f" · report #{src.record.id}"),
    ]
    return element("div", "<h3>How it was made</h3>" + facts(rows), {"class": "card"})


def totals_card(src: ReportSources) -> str:
    totals = src.data["summary"]["totals"]
    rows = [
        ("A (optimized) instances", "a"),
        (f"B ({src.b_name}) instances", "b"),
        ("Matches", "matches"),
        ("Images", "images"),
        ("Images where A ≠ B", "images_differ"),
        ("Images without instances", "images_without_instances"),
    ]
    counts: Mapping[str, object] = totals
    shown = [
        (label, figure(f"totals.{key}", _number(counts, key), str(counts.get(key, MISSING))))
        for label, key in rows
    ]
    return element("div", "<h3>Totals</h3>" + facts(shown), {"class": "card"})


def _number(values: Mapping[str, object], key: str) -> float | None:
    """A stored figure (JSON: a number, or null where there is none)."""
    value = values.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ap_figure(prefix: str, metrics: CocoMetricsData, key: str) -> str:
    value = _number(metrics, key)
    return figure(f"{prefix}.{key}", value, ap_text(value))


def _drop_html(key: str, points: float) -> str:
    return element(
        "span",
        esc(f"{points:.2f} points"),
        {"class": "big", "data-key": key, "data-value": repr(points)},
    )


def ap_card(src: ReportSources) -> str:
    """AP of A against B, or each model's AP on the annotations and the drops."""
    summary = src.data["summary"]
    if src.report_type == ReportType.PARENT:
        rows = [(label, _ap_figure("a_vs_b", summary["a_vs_b"], key)) for key, label in AP_FIGURES]
        drop = _drop_html("mask_ap_drop", mask_ap_drop(summary))
        rows.append(("Mask AP drop (from a perfect 1)", drop))
        title = "AP of A against B (the parent's predictions)"
        return element("div", f"<h3>{esc(title)}</h3>" + facts(rows), {"class": "card"})
    head = "<tr><th></th><th class='num'>Parent</th><th class='num'>A · optimized</th></tr>"
    body = []
    for key, label in AP_FIGURES:
        cells = [element("th", esc(label), {"scope": "row"})]
        for side, metrics in (("parent", summary["parent"]), ("optimized", summary["optimized"])):
            cells.append(element("td", _ap_figure(side, metrics, key), {"class": "num"}))
        body.append(f"<tr>{''.join(cells)}</tr>")
    drops = facts(
        [
            ("Mask AP drop", _drop_html("mask_ap_drop", summary["mask_ap_drop"])),
            ("Box AP drop", _drop_html("box_ap_drop", summary["box_ap_drop"])),
        ]
    )
    table = f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
    return element("div", f"<h3>AP on the annotations</h3>{table}{drops}", {"class": "card"})


def summary_html(src: ReportSources) -> str:
    """The summary section's cards."""
    cards: Sequence[str] = (models_card(src), ap_card(src), totals_card(src), settings_card(src))
    return element("div", "".join(cards), {"class": "cards"})
