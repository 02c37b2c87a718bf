"""Inline SVG bar charts for the HTML report: groups of horizontal bars, A's and B's.

Plain SVG in the page (no script, no external font; HTML needs no xmlns, so the page
holds no URL at all): the bars' colours come from the
page's CSS (`.bar-a`, `.bar-b`), with a fill attribute as a fallback; every label is
escaped (layer type names come from the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from segtui.core.html_page import element, esc

Side = Literal["a", "b"]
#: Fallback fills (the page's CSS gives the same colours).
FILLS: dict[Side, str] = {"a": "#1f77b4", "b": "#e07b1a"}

#: The viewBox's width: about what a chart gets on a 1280 px screen (half the page), so its
#: 12 px text is drawn at about 12 px.
WIDTH = 600
LABEL_WIDTH = 110
VALUE_WIDTH = 110
BAR_HEIGHT = 14
BAR_GAP = 3
GROUP_TITLE = 18
GROUP_GAP = 8


@dataclass(frozen=True)
class Bar:
    side: Side
    label: str  # before the bar ("A at bf16")
    value: float
    text: str  # after the bar ("12.34 FPS")


@dataclass(frozen=True)
class BarGroup:
    title: str
    bars: Sequence[Bar]


def _group_height(group: BarGroup) -> int:
    return GROUP_TITLE + len(group.bars) * (BAR_HEIGHT + BAR_GAP) + GROUP_GAP


def bar_chart(title: str, groups: Sequence[BarGroup]) -> str:
    """Horizontal bars on one scale (the largest value fills the bar area), grouped."""
    largest = max((bar.value for g in groups for bar in g.bars), default=0.0)
    scale = (WIDTH - LABEL_WIDTH - VALUE_WIDTH) / largest if largest > 0 else 0.0
    height = sum(_group_height(g) for g in groups) + 4
    parts = [f"<title>{esc(title)}</title>"]
    y = 2
    for group in groups:
        parts.append(f'<text x="0" y="{y + 13}" font-weight="600">{esc(group.title)}</text>')
        y += GROUP_TITLE
        # The axis beside the bars only: a long group title runs across its place.
        bars_height = len(group.bars) * (BAR_HEIGHT + BAR_GAP)
        parts.append(
            f'<line class="axis" stroke="#d5dbe2" x1="{LABEL_WIDTH}" y1="{y - 2}" '
            f'x2="{LABEL_WIDTH}" y2="{y + bars_height}"></line>'
        )
        for bar in group.bars:
            length = max(1.0, bar.value * scale) if bar.value > 0 else 0.0
            mid = y + BAR_HEIGHT - 3
            parts.append(
                f'<text x="{LABEL_WIDTH - 6}" y="{mid}" text-anchor="end">{esc(bar.label)}</text>'
            )
            parts.append(
                f'<rect class="bar-{bar.side}" fill="{FILLS[bar.side]}" x="{LABEL_WIDTH}" '
                f'y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" rx="2"></rect>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + length + 5:.1f}" y="{mid}">{esc(bar.text)}</text>'
            )
            y += BAR_HEIGHT + BAR_GAP
        y += GROUP_GAP
    svg = element(
        "svg",
        "".join(parts),
        {
            "viewBox": f"0 0 {WIDTH} {height}",
            "role": "img",
            "aria-label": title,
        },
    )
    return element("div", f"<h3>{esc(title)}</h3>{svg}", {"class": "chart"})


def chart_legend(a_label: str, b_label: str) -> str:
    """Which colour is which side."""
    sides: tuple[tuple[Side, str], ...] = (("a", a_label), ("b", b_label))
    swatches = "".join(
        f'<span><span class="swatch" style="background:{FILLS[side]}"></span>{esc(label)}</span>'
        for side, label in sides
    )
    return element("div", swatches, {"class": "chart-legend"})
