"""Key → repaint of F1 help while a real benchmark job runs (issue #10's responsiveness figure).

A benchmark job (a child process, as in the TUI) measures a tiny conv model for
`--duration` seconds while the app runs headless (`App.run_test`) on the project's
Performance page, which follows that job. First the app runs `--idle` seconds without
keys, and the CPU it uses to follow the job is measured (process CPU time over wall
time: event loop and threads). Then each of `--presses` F1 presses is timed from the
key to the first paint of the help screen: the compositor's update rendered to terminal
text, as a real terminal would get it. Prints p50 / p95 / max and the CPU share, and
the event loop thread's own CPU time per press, and (Linux) its time waiting for a core
in the run queue: what is left of the wall time is waiting for the GIL or for I/O.

    python benchmarks/ui_responsiveness.py [--presses 20] [--duration 120] [--page performance]

The job runs below the app's priority as `segtui` starts it (`give_way_to_the_tui`);
`--job-nice 0` runs it at the app's priority (how it was before that).

To measure another tree (e.g. the code before a change), put its src first:
`PYTHONPATH=/tmp/before/src python benchmarks/ui_responsiveness.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from segtui.core.priority import JOB_NICE_ENV
from segtui.core.projects import create_project_from_paths
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp, give_way_to_the_tui
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
) -> tuple[list[float], list[float], list[float], float]:
    """Per press (ms): F1 latency, loop thread CPU, its run-queue wait; the app's idle CPU share."""
    app = SegtuiApp(ws, register_sample=False)
    app.freeze_when_loaded = True  # as `segtui` runs it
    painted: list[tuple[float, float, float]] = []  # wall, loop CPU, run-queue wait at the paint
    original = app._display

    def display(screen: Screen[object], renderable: RenderableType | None) -> None:
        # Headless apps skip writing to the terminal; do that work here, as a terminal would.
        render = getattr(renderable, "render_segments", None)
        if render is not None:
            render(app.console)
        if isinstance(screen, HelpScreen) and renderable is not None and not painted:
            painted.append((time.perf_counter(), time.thread_time(), _run_queue_wait()))
        original(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    latencies: list[float] = []
    loop_cpu: list[float] = []
    queued: list[float] = []
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
            start, start_cpu, start_queued = (
                time.perf_counter(),
                time.thread_time(),
                _run_queue_wait(),
            )
            await pilot.press("f1")
            while not painted:
                await asyncio.sleep(0.001)
            loop_cpu.append((painted[0][1] - start_cpu) * 1000)
            queued.append((painted[0][2] - start_queued) * 1000)
            latencies.append((painted[0][0] - start) * 1000)
            if verbose:
                print(
                    f"  {latencies[-1]:7.1f} ms: loop CPU {loop_cpu[-1]:5.1f} ms, "
                    f"waiting for a core {queued[-1]:5.1f} ms"
                )
            await pilot.press("escape")
            while isinstance(app.screen, HelpScreen):
                await asyncio.sleep(0.005)
    return latencies, loop_cpu, queued, cpu_share


def _run_queue_wait() -> float:
    """Seconds this thread has waited for a core so far (Linux schedstat; 0 elsewhere)."""
    try:
        fields = Path("/proc/thread-self/schedstat").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) / 1e9


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


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
        "--job-nice", type=int, help="the job's niceness (default: as segtui sets it)"
    )
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds without keys, to measure the app's CPU"
    )
    args = parser.parse_args()
    if args.job_nice is not None:
        os.environ[JOB_NICE_ENV] = str(args.job_nice)
    give_way_to_the_tui()
    print(f"segtui from {Path(segtui.__file__).parent}, jobs at nice {os.environ[JOB_NICE_ENV]}")
    with tempfile.TemporaryDirectory(prefix="segtui-ui-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        project_id = _project(ws, Path(tmp))
        params = {"duration_s": args.duration, "per_layer": False, "precision": "f32"}
        job = None if args.no_job else jobs.submit(ws, JobKind.BENCHMARK, project_id, params)
        try:
            if job is not None:
                _wait_measuring(ws, job.id)
            latencies, loop_cpu, queued, cpu_share = asyncio.run(
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
    print(
        f"F1 key → help painted, {len(latencies)} presses on the {args.page} page, "
        f"{'no job' if args.no_job else 'a benchmark job running'}: "
        f"p50 {statistics.median(latencies):.1f} ms, p95 {_p95(latencies):.1f} ms, "
        f"max {ordered[-1]:.1f} ms"
    )
    print(
        f"the event loop's own CPU per press: p50 {statistics.median(loop_cpu):.1f} ms, "
        f"p95 {_p95(loop_cpu):.1f} ms; waiting for a core: p50 {statistics.median(queued):.1f}"
        f" ms, p95 {_p95(queued):.1f} ms"
    )
    print(
        f"the app's own CPU while it follows the page, no keys: {cpu_share * 100:.1f} % of a core"
    )
    if not still:
        print("warning: the benchmark job ended before the last press; use a longer --duration")


if __name__ == "__main__":
    main()
