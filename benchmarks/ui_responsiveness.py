"""Key → repaint of F1 help while a real benchmark job runs (issue #10's responsiveness figure).

A benchmark job (a child process, as in the TUI) measures a tiny conv model for
`--duration` seconds while the app runs headless (`App.run_test`) on the project's
Performance page, which follows that job. First the app runs `--idle` seconds without
keys, and the CPU it uses to follow the job is measured (process CPU time over wall
time: event loop and threads). Then each of `--presses` F1 presses is timed from the
key to the first paint of the help screen: the compositor's update rendered to terminal
text, as a real terminal would get it. Prints p50 / p95 / max and the CPU share.

    python benchmarks/ui_responsiveness.py [--presses 20] [--duration 120] [--page performance]

To measure another tree (e.g. the code before a change), put its src first:
`PYTHONPATH=/tmp/before/src python benchmarks/ui_responsiveness.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import RenderableType
from textual.screen import Screen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tiny_models import build_omz_maskrcnn_conv

import segtui
from segtui.core import jobs
from segtui.core.projects import create_project_from_paths
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.help import HelpScreen

SIZE = (120, 36)


def _project(ws: Workspace, folder: Path) -> int:
    """A 256×256 conv model (enough compute to keep the cores busy) over 8 images."""
    model = build_omz_maskrcnn_conv(folder / "model" / "model.xml", input_hw=(256, 256))
    rng = np.random.default_rng(0)
    for n in range(8):
        image = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
        (folder / "images").mkdir(exist_ok=True)
        cv2.imwrite(str(folder / "images" / f"{n}.png"), image)
    project = create_project_from_paths(
        ws, model_path=model, dataset_path=folder / "images", name="Responsiveness"
    )
    return project.id


def _wait_measuring(ws: Workspace, job_id: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ws.job(job_id)
        if job.stage.startswith("Measuring"):
            return
        if not job.state.active:
            raise SystemExit(f"the benchmark job ended early: {job.state} {job.error}")
        time.sleep(0.1)
    raise SystemExit("the benchmark job did not start measuring in time")


async def _measure(
    ws: Workspace,
    project_id: int,
    presses: int,
    *,
    page: str,
    idle_s: float,
    verbose: bool = False,
) -> tuple[list[float], float]:
    """F1 latencies (ms), and the app's CPU use (share of a core) over `idle_s` without keys."""
    app = SegtuiApp(ws, register_sample=False)
    painted: list[float] = []
    original = app._display

    def display(screen: Screen[object], renderable: RenderableType | None) -> None:
        # Headless apps skip writing to the terminal; do that work here, as a terminal would.
        render = getattr(renderable, "render_segments", None)
        if render is not None:
            render(app.console)
        if isinstance(screen, HelpScreen) and renderable is not None and not painted:
            painted.append(time.perf_counter())
        original(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    latencies: list[float] = []
    rng = random.Random(0)
    async with app.run_test(size=SIZE) as pilot:
        if page != "start":
            app.show_project(project_id)
            await pilot.pause(0.5)
        if page == "performance":
            await pilot.press("b")  # the Performance page follows the running benchmark
        await pilot.pause(1.0)
        # What following the job costs the app (event loop and threads) when nobody types.
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(idle_s)
        cpu_share = (time.process_time() - cpu) / (time.monotonic() - wall)
        for _ in range(presses):
            # Spread the presses over the pollers' phases.
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            painted.clear()
            start = time.perf_counter()
            await pilot.press("f1")
            while not painted:
                await asyncio.sleep(0.001)
            latencies.append((painted[0] - start) * 1000)
            if verbose:
                print(f"  {latencies[-1]:7.1f} ms")
            await pilot.press("escape")
            while isinstance(app.screen, HelpScreen):
                await asyncio.sleep(0.005)
    return latencies, cpu_share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="benchmark job seconds")
    parser.add_argument("--verbose", action="store_true", help="print each press")
    parser.add_argument(
        "--page",
        choices=("start", "project", "performance"),
        default="performance",
        help="the screen under the help screen",
    )
    parser.add_argument("--no-job", action="store_true", help="no benchmark job (a baseline)")
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds without keys, to measure the app's CPU"
    )
    args = parser.parse_args()
    print(f"segtui from {Path(segtui.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="segtui-ui-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        project_id = _project(ws, Path(tmp))
        params = {"duration_s": args.duration, "per_layer": False, "precision": "f32"}
        job = None if args.no_job else jobs.submit(ws, JobKind.BENCHMARK, project_id, params)
        try:
            if job is not None:
                _wait_measuring(ws, job.id)
            latencies, cpu_share = asyncio.run(
                _measure(
                    ws,
                    project_id,
                    args.presses,
                    page=args.page,
                    idle_s=args.idle,
                    verbose=args.verbose,
                )
            )
            still = job is None or ws.job(job.id).state == JobState.RUNNING
        finally:
            if job is not None:
                jobs.cancel(ws, job.id)
            ws.close()
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"F1 key → help painted, {len(latencies)} presses on the {args.page} page, "
        f"{'no job' if args.no_job else 'a benchmark job running'}: "
        f"p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"
    )
    print(
        f"the app's own CPU while it follows the page, no keys: {cpu_share * 100:.1f} % of a core"
    )
    if not still:
        print("warning: the benchmark job ended before the last press; use a longer --duration")


if __name__ == "__main__":
    main()
