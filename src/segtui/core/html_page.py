"""The building blocks of segtui's HTML pages: escaping, elements, figures, the page frame.

A page is one self-contained file: its CSS and JavaScript are inlined from
`html_assets/`, its images are data: URIs, and a Content-Security-Policy meta tag lets
the browser load nothing else (no network, even if a string slipped through). Every
string that comes from data (project, model, image and class names) goes through
`esc`: names are user input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources

#: What the page may load: its own inline style and script, and data: images. Nothing else.
CONTENT_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
#: Shown where a figure is missing (None, or COCO's -1 for "no ground truth").
MISSING = "–"


def esc(value: object) -> str:
    """`value` as HTML text or an attribute value (quotes escaped too)."""
    return escape(str(value), quote=True)


def attributes(values: Mapping[str, object | None]) -> str:
    """' name="value"' for each attribute that is not None (True: the bare name)."""
    parts = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def element(tag: str, inner: str = "", attrs: Mapping[str, object | None] | None = None) -> str:
    """`<tag attrs>inner</tag>`; `inner` is HTML already (escape text with `esc` first)."""
    return f"<{tag}{attributes(attrs or {})}>{inner}</{tag}>"


def void_element(tag: str, attrs: Mapping[str, object | None]) -> str:
    """An element without content or end tag (`<img>`, `<input>`)."""
    return f"<{tag}{attributes(attrs)}>"


def fixed(value: float | int | None, digits: int = 4) -> str:
    """A figure with `digits` decimals; MISSING for None and NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def ap_text(value: float | None) -> str:
    """An AP with 4 decimals; MISSING also for COCO's -1 ('no ground truth to score')."""
    return MISSING if value is not None and value < 0 else fixed(value)


def raw_value(value: object) -> str:
    """A figure as a data-value attribute holds it: the stored number exactly ('' for none)."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def figure(key: str, value: float | int | str | None, text: str) -> str:
    """A figure's text, tagged with the summary key it shows and its exact stored value."""
    return element("span", esc(text), {"data-key": key, "data-value": raw_value(value)})


def facts(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list: (label text, value HTML)."""
    inner = "".join(f"<dt>{esc(label)}</dt><dd>{value}</dd>" for label, value in rows)
    return element("dl", inner, {"class": "facts"})


@dataclass(frozen=True)
class Column:
    """A table column: its label, and whether its cells are numbers (right-aligned, sorted as such)."""

    label: str
    numeric: bool = False


def header_row(columns: Sequence[Column], *, sortable: bool) -> str:
    """The head of a table; a sortable one's headers are buttons (keyboard: Enter or Space)."""
    cells = []
    for column in columns:
        label = esc(column.label)
        # Chromium does not paint a button in a table header repeated on each printed page:
        # print shows a plain copy of the label instead.
        inner = (
            f'<button type="button">{label}<span class="arrow" aria-hidden="true"></span></button>'
            f'<span class="print-label" aria-hidden="true">{label}</span>'
            if sortable
            else label
        )
        cells.append(
            element(
                "th",
                inner,
                {
                    "scope": "col",
                    "class": "num" if column.numeric else None,
                    "data-type": "num" if column.numeric else "text",
                    "aria-sort": "none" if sortable else None,
                },
            )
        )
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def number_cell(value: float | int | None, text: str) -> str:
    """A right-aligned cell that sorts by `value` (data-v; empty: 'n/a', sorted last)."""
    return element("td", esc(text), {"class": "num", "data-v": raw_value(value)})


def text_cell(text: str, css_class: str | None = None) -> str:
    return element("td", esc(text), {"class": css_class})


def asset(name: str) -> str:
    """One of the page's static files (CSS, JavaScript), shipped in the package."""
    return resources.files("segtui.core").joinpath("html_assets", name).read_text("utf-8")


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor id, its heading and its HTML."""

    id: str
    title: str
    html: str


def page(title: str, header: str, sections: Sequence[Section], footer: str) -> str:
    """The whole document: head with the inline CSS and policy, the sections, the inline script."""
    script = asset("report.js")
    # An inline script ends at the first "</script": the shipped file must not hold one.
    assert "</script" not in script.lower()
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        element("section", f"<h2>{esc(s.title)}</h2>{s.html}", {"id": s.id}) for s in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CONTENT_POLICY)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        '<meta name="generator" content="segtui">'
        f"<title>{esc(title)}</title><style>{asset('report.css')}</style></head>\n"
        f'<body><header class="page">{header}'
        f'<nav class="sections" aria-label="Sections">{nav}</nav></header>\n'
        f"<main>{body}</main>\n"
        f'<footer class="page">{footer}</footer>\n'
        f"<script>{script}</script></body></html>\n"
    )
