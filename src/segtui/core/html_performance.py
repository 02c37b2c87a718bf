"""The HTML report's performance part: the two projects' stored benchmarks, compared.

Read through `performance.compare_projects` (what `segtui compare` prints), nothing
measured again. Runs are paired like with like: A's run asked for f32 with B's run
asked for f32, default with default, each labelled with the precision it actually ran
at. The per-layer split is the comparison's own (`time_split` by category and
`layer_deltas` by layer type, from A's and B's best runs' profiles), shown where those
runs have a profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segtui.core.benchmark import StoredBenchmark
from segtui.core.errors import SegtuiError
from segtui.core.html_charts import Bar, BarGroup, bar_chart, chart_legend
from segtui.core.html_page import (
    MISSING,
    Column,
    element,
    esc,
    fixed,
    header_row,
    number_cell,
    text_cell,
)
from segtui.core.machine import MachineInfo
from segtui.core.performance import Comparison, LayerDelta, SplitRow, compare_projects
from segtui.core.records import ProjectRecord
from segtui.core.workspace import Workspace

#: The precisions a benchmark is asked for, in the order the pairs are shown.
REQUESTED_ORDER = ("f32", "default")
#: The layer types charted: the slowest ones (in A or B).
CHARTED_LAYER_TYPES = 10
LAYER_TABLE_ID = "layers-table"


@dataclass(frozen=True)
class RunPair:
    """A's and B's newest runs asked for the same precision (None: not measured)."""

    requested: str
    a: StoredBenchmark | None
    b: StoredBenchmark | None

    @property
    def throughput_ratio(self) -> float | None:
        """A / B throughput."""
        if self.a is None or self.b is None or self.b["throughput_fps"] <= 0:
            return None
        return self.a["throughput_fps"] / self.b["throughput_fps"]

    @property
    def latency_ratio(self) -> float | None:
        """B / A median latency: how many times faster A answers."""
        if self.a is None or self.b is None or self.a["latency_median_ms"] <= 0:
            return None
        return self.b["latency_median_ms"] / self.a["latency_median_ms"]


def requested(run: StoredBenchmark) -> str:
    """The precision a run was asked for (runs stored before it was kept: the one it ran at)."""
    return str(run.get("requested_precision") or run["precision"])


def _by_requested(runs: Mapping[str, StoredBenchmark]) -> dict[str, StoredBenchmark]:
    newest: dict[str, StoredBenchmark] = {}
    for run in sorted(runs.values(), key=lambda r: r["result_id"]):
        newest[requested(run)] = run
    return newest


def run_pairs(comparison: Comparison) -> list[RunPair]:
    """One pair per precision asked on either side: f32, default, then any other."""
    a = _by_requested(comparison["a"]["runs"])
    b = _by_requested(comparison["b"]["runs"])
    asked = set(a) | set(b)
    order = [p for p in REQUESTED_ORDER if p in asked] + sorted(asked - set(REQUESTED_ORDER))
    return [RunPair(p, a.get(p), b.get(p)) for p in order]


def _ran_at(run: StoredBenchmark | None) -> str:
    return "not measured" if run is None else str(run["precision"])


def _figure(run: StoredBenchmark | None, key: str) -> float | None:
    if run is None:
        return None
    value = run.get(key)
    return float(value) if isinstance(value, int | float) else None


def _ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}×"


def pairs_table(pairs: Sequence[RunPair]) -> str:
    """Throughput and latency of A and B per precision asked, with the ratios."""
    columns = [
        Column("Asked"),
        Column("A ran at"),
        Column("B ran at"),
        Column("A FPS", numeric=True),
        Column("B FPS", numeric=True),
        Column("A / B FPS", numeric=True),
        Column("A median ms", numeric=True),
        Column("B median ms", numeric=True),
        Column("A avg ms", numeric=True),
        Column("B avg ms", numeric=True),
        Column("B / A median ms", numeric=True),
    ]
    rows = []
    for pair in pairs:
        cells = [text_cell(pair.requested), text_cell(_ran_at(pair.a)), text_cell(_ran_at(pair.b))]
        for key, digits in (
            ("throughput_fps", 2),
            ("latency_median_ms", 2),
            ("latency_avg_ms", 2),
        ):
            for run in (pair.a, pair.b):
                value = _figure(run, key)
                cells.append(number_cell(value, fixed(value, digits)))
            if key == "throughput_fps":
                cells.append(number_cell(pair.throughput_ratio, _ratio(pair.throughput_ratio)))
        cells.append(number_cell(pair.latency_ratio, _ratio(pair.latency_ratio)))
        rows.append(element("tr", "".join(cells), {"data-requested": pair.requested}))
    table = header_row(columns, sortable=False) + f"<tbody>{''.join(rows)}</tbody>"
    return element("div", element("table", table, {"id": "pairs-table"}), {"class": "table-wrap"})


def _pair_bars(pairs: Sequence[RunPair], key: str, unit: str) -> list[BarGroup]:
    groups = []
    for pair in pairs:
        bars = []
        for side, run in (("a", pair.a), ("b", pair.b)):
            value = _figure(run, key)
            if run is not None and value is not None:
                label = f"{side.upper()} at {run['precision']}"
                bars.append(Bar("a" if side == "a" else "b", label, value, f"{value:.2f} {unit}"))
        groups.append(BarGroup(f"asked {pair.requested}", bars))
    return groups


def _machine_note(comparison: Comparison) -> str:
    machines = {
        side: MachineInfo.from_json(run["machine"]).summary if run.get("machine") else ""
        for side, run in (("A", comparison["a_best"]), ("B", comparison["b_best"]))
    }
    if machines["A"] and machines["A"] == machines["B"]:
        return f"Both measured on {esc(machines['A'])}."
    if not machines["A"] and not machines["B"]:
        return ""
    return " ".join(
        f"{side} measured on {esc(machine or 'a processor not recorded')}."
        for side, machine in machines.items()
    )


def layers_html(
    deltas: Sequence[LayerDelta], a_best: StoredBenchmark, b_best: StoredBenchmark
) -> str:
    """Time per layer type in A's and B's best runs: a chart of the slowest, and the table."""
    if not deltas:
        return (
            "<p class='note'>No per-layer split: the best runs have no per-layer profile "
            "(benchmark with the per-layer profile on to see where the time goes).</p>"
        )
    about = (
        f"A's best run (at {esc(a_best['precision'])}) against B's best run "
        f"(at {esc(b_best['precision'])}), ms per inference."
    )
    slowest = sorted(deltas, key=lambda d: -max(d["a_ms"], d["b_ms"]))[:CHARTED_LAYER_TYPES]
    groups = [
        BarGroup(
            d["layer_type"],
            [
                Bar("a", "A", d["a_ms"], f"{d['a_ms']:.2f} ms"),
                Bar("b", "B", d["b_ms"], f"{d['b_ms']:.2f} ms"),
            ],
        )
        for d in slowest
    ]
    columns = [
        Column("Layer type"),
        Column("A ms", numeric=True),
        Column("B ms", numeric=True),
        Column("Δ ms (A − B)", numeric=True),
        Column("B / A ms", numeric=True),
    ]
    rows = []
    for n, d in enumerate(deltas):
        speedup = d["b_ms"] / d["a_ms"] if d["a_ms"] > 0 and d["b_ms"] > 0 else None
        cells = [
            text_cell(d["layer_type"]),
            number_cell(d["a_ms"], f"{d['a_ms']:.3f}"),
            number_cell(d["b_ms"], f"{d['b_ms']:.3f}"),
            number_cell(d["delta_ms"], f"{d['delta_ms']:+.3f}"),
            number_cell(speedup, _ratio(speedup)),
        ]
        rows.append(element("tr", "".join(cells), {"data-i": n}))
    table = element(
        "table",
        header_row(columns, sortable=True) + f"<tbody>{''.join(rows)}</tbody>",
        {"id": LAYER_TABLE_ID, "class": "sortable"},
    )
    chart = bar_chart(f"Slowest layer types (top {len(slowest)})", groups)
    listing = (
        "<div><h3>Every layer type</h3>" + element("div", table, {"class": "table-wrap"}) + "</div>"
    )
    return f"<p class='note'>{about}</p><div class='perf-grid'>{chart}{listing}</div>"


def split_html(rows: Sequence[SplitRow]) -> str:
    """The time split of A's and B's best runs by category (core.time_split); '' without."""
    if not rows:
        return ""
    columns = [
        Column("Category"),
        Column("A ms", numeric=True),
        Column("A share", numeric=True),
        Column("B ms", numeric=True),
        Column("B share", numeric=True),
    ]
    body = "".join(
        element(
            "tr",
            text_cell(r["category"])
            + number_cell(r["a_ms"], f"{r['a_ms']:.3f}")
            + number_cell(r["a_share"], f"{r['a_share'] * 100:.1f} %")
            + number_cell(r["b_ms"], f"{r['b_ms']:.3f}")
            + number_cell(r["b_share"], f"{r['b_share'] * 100:.1f} %"),
        )
        for r in rows
    )
    table = header_row(columns, sortable=False) + f"<tbody>{body}</tbody>"
    return element("div", element("table", table, {"id": "split-table"}), {"class": "table-wrap"})


def comparison_html(comparison: Comparison) -> str:
    """The pairs table, the throughput and latency charts, the per-layer split."""
    pairs = run_pairs(comparison)
    a, b = comparison["a"], comparison["b"]
    intro = (
        f"<p class='note'>A: {esc(a['name'])} (#{a['project_id']}) · B: {esc(b['name'])} "
        f"(#{b['project_id']}). Each row pairs the runs asked for the same precision; "
        f"the precision each actually ran at is beside it. Both ratios say how many times "
        f"faster A is. {_machine_note(comparison)}</p>"
    )
    legend = chart_legend(f"A · {a['name']}", f"B · {b['name']}")
    charts = (
        "<div class='perf-grid'>"
        + bar_chart(
            "Throughput (FPS, higher is better)", _pair_bars(pairs, "throughput_fps", "FPS")
        )
        + bar_chart(
            "Median latency (ms, lower is better)", _pair_bars(pairs, "latency_median_ms", "ms")
        )
        + "</div>"
    )
    layers = (
        "<h3>Where the time goes</h3>"
        + split_html(comparison["time_split"])
        + layers_html(comparison["layer_deltas"], comparison["a_best"], comparison["b_best"])
    )
    return intro + pairs_table(pairs) + legend + charts + layers


def performance_html(ws: Workspace, a: ProjectRecord, b: ProjectRecord) -> str:
    """The comparison of A's and B's stored benchmarks, or why there is none yet."""
    try:
        comparison = compare_projects(ws, a.id, b.id)
    except SegtuiError as exc:
        return f"<p class='note'>{esc(exc.message)} {esc(exc.hint)}</p>"
    return comparison_html(comparison)
