"""A stored accuracy report as one self-contained HTML page, to open in any browser.

The page holds the summary (both models, precision, thresholds, totals, AP), the
sortable basic and advanced tables with an "only images where A ≠ B" filter, the
images where the two models disagree most drawn side by side, and the comparison of
the two projects' stored benchmarks. Nothing is measured or predicted again: it is
built from the stored report, its stored predictions and the stored benchmarks.
Everything is inside the file (inline CSS and script, data: images); the page's
Content-Security-Policy lets a browser load nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from segtui import __version__
from segtui.core.accuracy import coco_image_id
from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import category_mapping, load_annotations
from segtui.core.html_images import MAX_IMAGES, images_html
from segtui.core.html_page import Section, esc, page
from segtui.core.html_performance import performance_html
from segtui.core.html_summary import REPORT_TYPE_TITLES, ReportSources, made_at, summary_html
from segtui.core.html_tables import tables_html
from segtui.core.predictions import ImagePrediction
from segtui.core.progress import ProgressCallback, no_progress
from segtui.core.records import ResultRecord
from segtui.core.report import (
    ReportImages,
    annotations_as_predictions,
    report_data,
    report_predictions,
)
from segtui.core.safe_files import make_output_folder, write_output_text
from segtui.core.types import ReportType, ResultKind
from segtui.core.workspace import Workspace

#: The workspace's folder for pages written from the TUI.
HTML_FOLDER = "reports-html"
#: What reading a damaged stored file raises (JSON of another shape raises any of these).
DAMAGED = (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError)


@dataclass(frozen=True)
class HtmlReport:
    """A built page and what it holds."""

    html: str
    result_id: int
    images_shown: int
    images_differ: int
    image_bytes: int
    #: Why no image is drawn (the page says so too), or None.
    images_problem: str | None = None


@dataclass(frozen=True)
class WrittenHtmlReport:
    """A page written to a file."""

    path: Path
    size_bytes: int
    result_id: int
    images_shown: int
    images_differ: int
    images_problem: str | None = None

    def describe(self) -> str:
        """'report.html (1.2 MiB, 24 of 57 images where A ≠ B)', or why no image is in it."""
        if self.images_problem is not None:
            return f"{self.path} ({size_text(self.size_bytes)}; no image: {self.images_problem})"
        return (
            f"{self.path} ({size_text(self.size_bytes)}, {self.images_shown} of "
            f"{self.images_differ} images where A ≠ B)"
        )


def size_text(size_bytes: int) -> str:
    if size_bytes >= 1024 * 1024:
        return f"{size_bytes / (1024 * 1024):.1f} MiB"
    return f"{size_bytes / 1024:.0f} KiB"


def latest_report(ws: Workspace, project_id: int) -> ResultRecord:
    """The project's newest stored report of either type, or a SegtuiError that says how to make one."""
    stored = [r for t in ReportType for r in ws.results(project_id, ResultKind(f"report:{t}"))]
    if not stored:
        project = ws.project(project_id)
        raise SegtuiError(
            f"Project {project.id} ({project.name}) has no stored accuracy report.",
            f"Create one first: `segtui report {project.id}` (without --stored).",
        )
    return max(stored, key=lambda r: (r.created_at, r.id))


def read_sources(ws: Workspace, result_id: int) -> ReportSources:
    """The stored report `result_id` and the projects, models and dataset it names."""
    record = ws.result(result_id)
    data = report_data(record)
    summary = data["summary"]
    optimized = ws.project(int(summary.get("project_id", record.project_id)))
    # The project's own parent first: reports stored by segtui 0.1.0 before this was fixed carry the
    # optimized project's id as "parent_project_id" (the parent model's predictions ran on it).
    parent_id = optimized.parent_id or summary.get("parent_project_id")
    if parent_id is None:
        raise SegtuiError(f"Report {record.id} names no parent project.", "Create it again.")
    parent = ws.project(int(parent_id))
    dataset = ws.dataset(optimized.dataset_id)
    return ReportSources(
        record=record,
        data=data,
        optimized=optimized,
        parent=parent,
        optimized_model=ws.model(optimized.model_id),
        parent_model=ws.model(parent.model_id),
        dataset=dataset,
        images=ws.dataset_images(dataset.id),
    )


def _truth(src: ReportSources) -> dict[str, ImagePrediction]:
    """An annotations report's B: the dataset's annotations by image, in prediction form."""
    if src.dataset.annotations is None:
        raise SegtuiError(f"Dataset {src.dataset.name!r} no longer has its annotations.")
    truth = load_annotations(src.dataset.annotations)
    images = [(im.path, coco_image_id(im)) for im in src.images]
    classes = list(src.optimized_model.class_names)
    categories = category_mapping(classes, src.dataset.analysis)
    return {p.image: p for p in annotations_as_predictions(truth, images, categories, len(classes))}


def report_images(ws: Workspace, src: ReportSources) -> ReportImages:
    """The report's stored predictions (and annotations), and its images' paths, for drawing."""
    try:
        optimized, parent = report_predictions(ws, src.record.id)
    except DAMAGED as exc:
        raise SegtuiError(
            f"The stored predictions of report {src.record.id} cannot be read ({exc}).",
            "Create the report again.",
        ) from exc
    try:
        truth = _truth(src) if src.report_type == ReportType.ANNOTATIONS else None
    except DAMAGED as exc:
        raise SegtuiError(
            f"The annotations of dataset {src.dataset.name!r} cannot be read ({exc}).",
            "Import the dataset again.",
        ) from exc
    summary = src.data["summary"]
    return ReportImages(
        optimized={p.image: p for p in optimized},
        parent={p.image: p for p in parent},
        paths={im.path: image_path(src.dataset, im) for im in src.images},
        class_names=list(src.optimized_model.class_names),
        threshold=float(summary["threshold"]),
        iou=float(summary["iou"]),
        truth=truth,
    )


def _header(src: ReportSources) -> str:
    return (
        f"<h1>Accuracy report · {esc(src.optimized.name)}</h1>"
        f"<p>{esc(REPORT_TYPE_TITLES[src.report_type])} · A: {esc(src.optimized.name)} "
        f"(#{src.optimized.id}) · B: {esc(src.b_name)}"
        + (f" ({esc(src.parent.name)}, #{src.parent.id})" if src.b_name == "parent" else "")
        + f" · made {esc(made_at(src.record.created_at))}</p>"
    )


def build_html_report(
    ws: Workspace,
    result_id: int,
    *,
    max_images: int = MAX_IMAGES,
    progress: ProgressCallback = no_progress,
) -> HtmlReport:
    """The page of the stored report `result_id`."""
    src = read_sources(ws, result_id)
    data = src.data
    problem: str | None = None
    try:
        images = report_images(ws, src)
    except SegtuiError as exc:
        # The summary, tables and benchmarks are in the database: the page is still worth having.
        problem = exc.message
        images_section, image_bytes = f"<p class='note'>{esc(exc.message)} {esc(exc.hint)}</p>", 0
    else:
        images_section, image_bytes = images_html(
            images,
            data["basic"],
            limit=max_images,
            progress=lambda f, stage: progress(0.9 * f, stage),
        )
    progress(0.9, "Comparing the benchmarks")
    # The decision first (AP, speed), then the evidence; the long tables last (on paper too).
    sections = [
        Section("summary", "Summary", summary_html(src)),
        Section("performance", "Performance", performance_html(ws, src.optimized, src.parent)),
        Section("images", "Images where A ≠ B", images_section),
        Section("tables", "Tables", tables_html(data["basic"], data["advanced"], src.b_name)),
    ]
    footer = (
        f"Made by segtui {esc(__version__)} from report #{src.record.id} of project "
        f"#{src.optimized.id}. Self-contained: this file loads nothing from anywhere."
    )
    html = page(f"Accuracy report · {src.optimized.name}", _header(src), sections, footer)
    differ = sum(row["differs"] for row in data["basic"])
    shown = 0 if problem else min(differ, max(0, max_images))
    progress(1.0, "Done")
    return HtmlReport(html, src.record.id, shown, differ, image_bytes, problem)


def write_html_report(
    ws: Workspace,
    result_id: int,
    out: Path,
    *,
    max_images: int = MAX_IMAGES,
    progress: ProgressCallback = no_progress,
) -> WrittenHtmlReport:
    """Build the page of report `result_id` and write it to `out` (its folder made if needed)."""
    report = build_html_report(ws, result_id, max_images=max_images, progress=progress)
    make_output_folder(out.parent)
    encoded = report.html.encode("utf-8")
    write_output_text(out, report.html)
    return WrittenHtmlReport(
        out,
        len(encoded),
        report.result_id,
        report.images_shown,
        report.images_differ,
        report.images_problem,
    )


def slug(name: str) -> str:
    """A file-name-safe form of a project name: 'Mask R-CNN INT8' -> 'mask-r-cnn-int8'."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:60].strip("-") or "project"


def html_report_path(ws: Workspace, project_id: int, result_id: int) -> Path:
    """Where the TUI writes a report's page: <workspace>/reports-html/<slug>-report-<id>.html."""
    project = ws.project(project_id)
    return ws.root / HTML_FOLDER / f"{slug(project.name)}-report-{result_id}.html"
