"""What segtui's checking archive reader costs, against the standard library's own safe extraction.

Exports the sample project (parent + INT8 child, their results; `--with-dataset` adds the
200 images) once, then alternates, round by round on the same archive:

- A: `verify_archive` + `extract_archive` (segtui import's two streaming passes: names,
  types, sizes, sha256 of every member, inflated-byte limits; then extraction re-checked);
- B: `tarfile.open(...).extractall(filter="data")` (Python's safe extraction filter:
  names and types only, no checksums, no size limits, one pass).

and prints each time and the ratio A / B (median, min, max). Also times the whole
`import_archive` into an empty workspace and the export job's core function.

    python benchmarks/archive_throughput.py [--rounds 5] [--with-dataset]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _common import default_int8_child, median_ratio, sample, scratch_workspace

from segtui.core.archive import extract_archive, verify_archive
from segtui.core.machine import machine_info
from segtui.core.project_export import ExportRequest, export_project
from segtui.core.project_import import import_archive
from segtui.core.transfer_doc import ARCHIVE_KIND, EXPORT_DOC
from segtui.core.workspace import Workspace


def _segtui_pass(archive: Path, dest: Path) -> float:
    started = time.perf_counter()
    verified = verify_archive(archive, kind=ARCHIVE_KIND, keep=(EXPORT_DOC,))
    extract_archive(verified, dest)
    return time.perf_counter() - started


def _stdlib_pass(archive: Path, dest: Path) -> float:
    started = time.perf_counter()
    dest.mkdir()
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--with-dataset", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="segtui-archive-bench-"))
    try:
        ws = scratch_workspace(str(scratch / "ws"))
        parent = sample(ws).images
        child = default_int8_child(ws, parent.id)
        archive = scratch / "sample.tar.gz"
        started = time.perf_counter()
        request = ExportRequest(
            parent.id, archive, with_children=True, with_dataset=args.with_dataset
        )
        (scratch / "work").mkdir()
        export_project(ws, request, scratch / "work")
        export_s = time.perf_counter() - started
        size = archive.stat().st_size
        print(
            f"archive: projects {parent.id}+{child.id}, {size / 1e6:.1f} MB compressed, "
            f"export {export_s:.2f} s"
        )
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(args.rounds):
            ours.append(_segtui_pass(archive, scratch / f"a{i}"))
            theirs.append(_stdlib_pass(archive, scratch / f"b{i}"))
            shutil.rmtree(scratch / f"a{i}")
            shutil.rmtree(scratch / f"b{i}")
            print(
                f"round {i + 1}: segtui verify+extract {ours[-1]:.3f} s, "
                f"tarfile extractall(filter='data') {theirs[-1]:.3f} s"
            )
        median, low, high = median_ratio(ours, theirs)
        print(f"segtui / tarfile time: x{median:.2f} median (min x{low:.2f}, max x{high:.2f})")
        with Workspace(scratch / "empty") as empty:
            started = time.perf_counter()
            import_archive(empty, archive)
            print(f"import_archive into an empty workspace: {time.perf_counter() - started:.2f} s")
        info = machine_info()
        print(
            f"on {info.name} ({info.features_text}; {platform.machine()}), "
            f"Python {sys.version.split()[0]}"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
