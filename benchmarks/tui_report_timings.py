"""Opening Visualize and sorting the report table, timed in the real app (issue #12's figures).

Builds a scratch workspace with the sample's 200 images and a stored "optimized vs
parent" report whose predictions are made from the sample's annotations (B: each
shape at a high score plus low-score fragments, as a Mask R-CNN gives; A: the same,
jittered, some dropped), so that no model runs: about 670 advanced rows and 20–40
instances per image at score ≥ 0.1, as on the real sample report. The app then runs
headless (`App.run_test`, 120×36) on the report screen, and each figure is timed
from the key to the first paint that shows its result (the compositor's update
rendered to terminal text, as a real terminal would get it, in 256 colours as in
tmux unless TEXTUAL_COLOR_SYSTEM says otherwise):

- Visualize open: Enter on a row → the image and both models' masks painted, on
  rows spread over the table (each image opened for the first time), Enter pressed
  at once after the cursor got to the row, and half a second later; the first
  opening after the report screen is shown is printed on its own;
- Visualize first frame: Enter → the screen painted (before its image);
- n: the next image painted (drawn ahead while the previous one was shown);
- sort: o (next column) or r (flip) in advanced mode → the sorted table painted.

Each figure also has the process's CPU time over the same span (all threads): on a
shared machine, where wall time depends on the neighbours, it shows the work done.

    python benchmarks/tui_report_timings.py [--opens 15] [--steps 10] [--sorts 20]

To measure another tree (e.g. the code before a change), put its src first:
`PYTHONPATH=/tmp/before/src python benchmarks/tui_report_timings.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools import mask as mask_utils

import segtui
from segtui.core.predictions import ImagePrediction, Instance, encode_mask
from segtui.core.sample import sample_dir
from segtui.core.workspace import Workspace

# The stored report is built as the report tests build theirs (tests/report_builder.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from report_builder import ReportSetup, build_report

if TYPE_CHECKING:
    from segtui.ui.app import SegtuiApp

SIZE = (120, 36)
THRESHOLD = 0.1


def _instance(mask: np.ndarray, class_id: int, score: float) -> Instance | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return Instance(class_id, score, box, encode_mask(mask.astype(np.uint8)))


def _shifted(mask: np.ndarray, rng: np.random.Generator, spread: int) -> np.ndarray:
    dy, dx = (int(v) for v in rng.integers(-spread, spread + 1, 2))
    return np.roll(np.roll(mask, dy, axis=0), dx, axis=1)


def _fragment(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A part of a shape (a low-score duplicate): the mask cut by a random half-plane."""
    ys, xs = np.nonzero(mask)
    cy, cx = float(ys.mean()), float(xs.mean())
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    side = (yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle) > rng.uniform(-8, 8)
    return np.asarray(mask & side)


def _predictions(annotations: dict[str, Any]) -> tuple[list[ImagePrediction], ...]:
    """(A, B): the optimized and the parent model's predictions, made from the annotations."""
    rng = np.random.default_rng(13)
    names = {int(im["id"]): im for im in annotations["images"]}
    by_image: dict[int, list[dict[str, Any]]] = {i: [] for i in names}
    for ann in annotations["annotations"]:
        by_image[int(ann["image_id"])].append(ann)
    a_preds, b_preds = [], []
    for image_id, info in names.items():
        a: list[Instance | None] = []
        b: list[Instance | None] = []
        for ann in by_image[image_id]:
            seg = ann["segmentation"]
            mask = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
            cls = int(ann["category_id"]) - 1
            score = float(rng.uniform(0.85, 0.99))
            b.append(_instance(mask, cls, score))
            a.append(_instance(_shifted(mask, rng, 1), cls, score - float(rng.uniform(0, 0.05))))
            for _ in range(int(rng.integers(3, 8))):
                part = _fragment(mask, rng)
                # Now and then a fragment is taken for another shape.
                other = int(rng.integers(0, 6)) if rng.random() < 0.11 else cls
                low = float(rng.uniform(0.1, 0.5))
                b.append(_instance(part, other, low))
                if rng.random() < 0.85:
                    a.append(
                        _instance(_shifted(part, rng, 2), other, low + rng.uniform(-0.04, 0.04))
                    )
        size = (int(info["width"]), int(info["height"]))
        a_preds.append(ImagePrediction(info["file_name"], *size, [i for i in a if i]))
        b_preds.append(ImagePrediction(info["file_name"], *size, [i for i in b if i]))
    return a_preds, b_preds


def build_workspace(ws: Workspace, tmp: Path) -> tuple[int, int]:
    """The sample's images, a parent/child pair of stand-in models and a stored report."""
    root = sample_dir()
    classes = (root / "classes.txt").read_text().split()
    annotations = json.loads((root / "annotations" / "instances_val.json").read_text())
    setup = ReportSetup(
        name="shapes",
        model_name="shapes",
        dataset_name="shapes images",
        classes=classes,
        threshold=THRESHOLD,
        iou=0.5,
        precision="i8",
        inference_seconds=1.0,
        method="default",
    )
    a, b = _predictions(annotations)
    _, child, result = build_report(ws, root / "images", tmp, setup, (a, b))
    return child.id, len(result.data["advanced"])


class Painted:
    """Paint times of the app (with the process's CPU time), and which watched conditions held."""

    def __init__(self, app: SegtuiApp) -> None:
        self.times: list[tuple[float, float, tuple[bool, ...]]] = []
        self.conditions: tuple[Callable[[], bool], ...] = ()
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            # Headless apps skip writing to the terminal; do that work here, as a terminal would.
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                render(app.console)
            if renderable is not None:
                held = tuple(condition() for condition in self.conditions)
                self.times.append((time.perf_counter(), time.process_time(), held))
            original(screen, renderable)

        app._display = display  # type: ignore[method-assign]

    def start(self, *conditions: Callable[[], bool]) -> tuple[float, float]:
        """Watch `conditions` at each paint from now; (perf_counter, process_time) now."""
        self.times.clear()
        self.conditions = conditions
        return time.perf_counter(), time.process_time()

    async def until(self, which: int, start: tuple[float, float]) -> tuple[float, float]:
        """(ms, CPU ms) from `start` to the first paint where watched condition `which` held."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for at, cpu, held in self.times:
                if held[which] and at >= start[0]:
                    return (at - start[0]) * 1000, (cpu - start[1]) * 1000
            await asyncio.sleep(0.001)
        names = [getattr(c, "__qualname__", "?") for c in self.conditions]
        raise SystemExit(f"timed out waiting for a paint where {names[which]} held")


async def _press(app: SegtuiApp, key: str) -> None:
    from textual import events

    app.post_message(events.Key(key, None))
    await asyncio.sleep(0)


def _drawn(app: SegtuiApp, image: str) -> Callable[[], bool]:
    """The Visualize screen shows `image`, drawn as it asks (not a placeholder)."""

    def check() -> bool:
        screen: Any = app.screen
        shown = getattr(screen, "shown", None)
        if shown is not None:  # this tree's Visualize
            return bool(shown.request.name == image and shown.request == screen.wanted)
        prepared = getattr(screen, "prepared", None)  # before issue #12
        return getattr(screen, "last", None) is not None and getattr(prepared, "name", "") == image

    return check


def _visualize_shown(app: SegtuiApp) -> Callable[[], bool]:
    return lambda: type(app.screen).__name__ == "VisualizeScreen"


async def _open(
    app: SegtuiApp, painted: Painted, row: int, rest: float
) -> tuple[float, float, float]:
    """(first frame ms, drawn ms, drawn CPU ms) of Enter on table row `row`, pressed `rest`
    seconds after the cursor got there."""
    from segtui.ui.screens.report import ReportScreen

    report = app.screen
    assert isinstance(report, ReportScreen)
    report.table.move_cursor(row=row)
    image = report.row_images[report.table.row_keys[row]]
    await asyncio.sleep(rest)
    start = painted.start(_visualize_shown(app), _drawn(app, image))
    await _press(app, "enter")
    frame, _ = await painted.until(0, start)
    drawn, cpu = await painted.until(1, start)
    return frame, drawn, cpu


async def _back(app: SegtuiApp, report: Any) -> None:
    await _press(app, "escape")
    while app.screen is not report:
        await asyncio.sleep(0.01)
    # The report handles its return (its cursor to the image shown last), the user reads.
    await asyncio.sleep(0.5)


async def _step(app: SegtuiApp, painted: Painted) -> tuple[float, float]:
    """(ms, CPU ms) of n: the next image painted."""
    screen: Any = app.screen
    images, current = screen.images, screen.image_name
    following = images[(images.index(current) + 1) % len(images)]
    await asyncio.sleep(0.5)  # the user looks; the next image is drawn ahead meanwhile
    start = painted.start(_drawn(app, following))
    await _press(app, "n")
    return await painted.until(0, start)


def _key(action: str) -> str:
    """The report screen's key for `action` (the keys changed with issue #12: o/r, then s/S)."""
    from segtui.ui.screens.report import ReportScreen

    for binding in ReportScreen.BINDINGS:
        if not isinstance(binding, tuple) and binding.action == action:
            return binding.key.split(",")[0]
    raise SystemExit(f"the report screen has no key for {action}")


#: A sort's whole cost: the process's CPU time over this long after the key (work the
#: table does once idle, after the paint, delays the next key all the same).
SORT_WINDOW_S = 0.4


async def _sort(app: SegtuiApp, painted: Painted, key: str) -> tuple[float, float, float]:
    """(ms to the sorted table painted, CPU ms to it, CPU ms over SORT_WINDOW_S)."""
    screen: Any = app.screen
    before = screen.table.sorted_by
    await asyncio.sleep(0.3)
    start = painted.start(lambda: screen.table.sorted_by != before)
    await _press(app, key)
    wall, cpu = await painted.until(0, start)
    await asyncio.sleep(max(0.0, start[0] + SORT_WINDOW_S - time.perf_counter()))
    return wall, cpu, (time.process_time() - start[1]) * 1000


def _figures(name: str, values: list[tuple[float, float]]) -> str:
    def stats(numbers: list[float]) -> str:
        ordered = sorted(numbers)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return f"median {statistics.median(numbers):.0f} ms, p95 {p95:.0f} ms"

    wall, cpu = [v[0] for v in values], [v[1] for v in values]
    return f"{name}: {stats(wall)} (CPU {stats(cpu)}; {len(values)} runs)"


async def _opens(
    app: SegtuiApp, painted: Painted, report: Any, count: int, rest: float, seed: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """First frames and drawn images of `count` openings, each on an image not opened yet."""
    frames, drawn = [], []
    rows = report.table.row_count
    for n in range(count):
        frame, full, cpu = await _open(app, painted, (n * 37 + seed) % rows, rest)
        frames.append((frame, 0.0))
        drawn.append((full, cpu))
        await _back(app, report)
    return frames, drawn


async def measure(ws: Workspace, project_id: int, opens: int, steps: int, sorts: int) -> None:
    from segtui.ui.app import SegtuiApp
    from segtui.ui.screens.report import ReportScreen

    app = SegtuiApp(ws, register_sample=False)
    painted = Painted(app)
    async with app.run_test(size=SIZE) as pilot:
        report = ReportScreen(project_id)
        await app.push_screen(report)
        for _ in range(600):
            await pilot.pause(0.05)
            if report.data is not None and report.table.row_count:
                break
        await pilot.pause(2.0)  # the user reads the table
        first_frame, first, first_cpu = await _open(app, painted, 12, 0.5)
        await _back(app, report)
        # Enter a frame after the cursor got to the row (the table repainted), or half a
        # second after: the image under a resting cursor is drawn ahead.
        frames, at_once = await _opens(app, painted, report, opens, 0.05, 5)
        _, rested = await _opens(app, painted, report, opens, 0.5, 23)
        await _open(app, painted, 0, 0.5)
        stepped = [await _step(app, painted) for _ in range(steps)]
        await _back(app, report)
        await pilot.press("t")  # advanced mode: one row per image and class
        await pilot.pause(0.5)
        advanced = report.table.row_count
        times, totals = [], []
        for n in range(sorts):
            flip = n % 3 == 2 and report.table.sorted_by is not None
            wall, cpu, total = await _sort(
                app, painted, _key("reverse_sort" if flip else "cycle_sort")
            )
            if report.table.sorted_by is not None:  # the report's own order: not a sort
                times.append((wall, cpu))
                totals.append((total, total))
        colors = app.console.color_system
    print(f"terminal colours: {colors}; {SIZE[0]}×{SIZE[1]}")
    print(
        f"Visualize, first opening: {first:.0f} ms (CPU {first_cpu:.0f} ms), first frame {first_frame:.0f} ms"
    )
    print(_figures("Visualize first frame, Enter → screen painted", frames).split(" (CPU")[0])
    print(
        _figures("Visualize open, Enter 50 ms after the cursor got to the row → painted", at_once)
    )
    print(_figures("Visualize open, Enter after 0.5 s on the row → painted", rested))
    print(_figures("Visualize n → next image painted", stepped))
    print(_figures(f"Sort of {advanced} advanced rows, key → sorted table painted", times))
    whole = _figures(f"Sort, CPU in the {SORT_WINDOW_S:g} s after the key", totals)
    print(whole.split(" (CPU")[0] + f" ({len(totals)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--opens", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sorts", type=int, default=20)
    args = parser.parse_args()
    # Before Textual is imported: it reads the colour system once.
    os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", "256")
    print(f"segtui from {Path(segtui.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="segtui-report-bench-") as tmp:
        started = time.perf_counter()
        ws = Workspace(Path(tmp) / "ws")
        project_id, rows = build_workspace(ws, Path(tmp))
        took = time.perf_counter() - started
        print(f"workspace with a stored report ({rows} advanced rows) in {took:.1f} s")
        try:
            asyncio.run(measure(ws, project_id, args.opens, args.steps, args.sorts))
        finally:
            ws.close()


if __name__ == "__main__":
    main()
