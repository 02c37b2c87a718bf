"""What segtui's checking archive reader costs, against the standard library's own safe extraction.

Exports the sample project (parent + INT8 child, their results; `--with-dataset` adds the
200 images) once, then alternates, round by round on the same archive:

- A: `verify_archive` + `extract_archive` with the default limits, the path `segtui import`
  takes for an archive of up to ArchiveLimits.max_buffered_bytes (256 MiB) uncompressed:
  one read (names, types, sizes, sha256 of every member, inflated-byte limits) that keeps
  the verified members in memory, then extraction writes them (O_EXCL, fsync per file);
- S: the same with `max_buffered_bytes=1`, the path of a larger archive: two streaming
  passes, the second reading, inflating and checking the file again as it writes;
- B: `tarfile.open(...).extractall(filter="data")` (Python's safe extraction filter:
  names and types only, no checksums, no size limits, no fsync, one pass).

and prints each time and the ratios A / B and S / B (median, min, max). Then the peak RSS
of a fresh process doing A, then S (after its imports, and at the end; Linux's VmHWM), and
the times of the whole `import_archive` into an empty workspace and of the export.

    python benchmarks/archive_throughput.py [--rounds 5] [--with-dataset]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _common import default_int8_child, median_ratio, sample, scratch_workspace

from segtui.core.archive import ArchiveLimits, extract_archive, verify_archive
from segtui.core.machine import machine_info
from segtui.core.project_export import ExportRequest, export_project
from segtui.core.project_import import import_archive
from segtui.core.transfer_doc import ARCHIVE_KIND, EXPORT_DOC
from segtui.core.workspace import Workspace

BUFFERED = ArchiveLimits()  # the default: the sample's 36 MB is well under 256 MiB
STREAMING = ArchiveLimits(max_buffered_bytes=1)
#: Run in a fresh interpreter that imports only the archive modules (segtui's others would
#: set its peak): its peak RSS after the imports, then after verify + extract. VmHWM, not
#: ru_maxrss: Linux carries ru_maxrss over from the forking parent (this script, ~800 MiB).
_RSS_CHILD = """
import sys
from pathlib import Path
from segtui.core.archive import ArchiveLimits, extract_archive, verify_archive
def peak_kib():
    with open("/proc/self/status") as status:
        return next(line.split()[1] for line in status if line.startswith("VmHWM:"))
archive, dest, kind, doc, buffered = sys.argv[1:]
before = peak_kib()
limits = ArchiveLimits(max_buffered_bytes=int(buffered))
verified = verify_archive(Path(archive), kind=kind, keep=(doc,), limits=limits)
extract_archive(verified, Path(dest), limits=limits)
print(before, peak_kib())
"""


def _segtui_pass(archive: Path, dest: Path, limits: ArchiveLimits = BUFFERED) -> float:
    started = time.perf_counter()
    verified = verify_archive(archive, kind=ARCHIVE_KIND, keep=(EXPORT_DOC,), limits=limits)
    extract_archive(verified, dest, limits=limits)
    return time.perf_counter() - started


def _peak_rss_mib(archive: Path, dest: Path, limits: ArchiveLimits) -> tuple[float, float]:
    """A fresh process's peak RSS (MiB) after importing segtui's archive modules, and at the end."""
    argv = [sys.executable, "-c", _RSS_CHILD, str(archive), str(dest), ARCHIVE_KIND, EXPORT_DOC]
    done = subprocess.run([*argv, str(limits.max_buffered_bytes)], capture_output=True, check=True)
    shutil.rmtree(dest)
    before, after = (int(kib) / 1024 for kib in done.stdout.split())
    return before, after


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
        with tarfile.open(archive, "r:gz") as tar:
            inflated = sum(info.size for info in tar.getmembers())
        print(f"members: {inflated / 2**20:.1f} MiB uncompressed")
        ours: list[float] = []
        streamed: list[float] = []
        theirs: list[float] = []
        for i in range(args.rounds):
            ours.append(_segtui_pass(archive, scratch / f"a{i}"))
            streamed.append(_segtui_pass(archive, scratch / f"s{i}", STREAMING))
            theirs.append(_stdlib_pass(archive, scratch / f"b{i}"))
            for name in "asb":
                shutil.rmtree(scratch / f"{name}{i}")
            print(
                f"round {i + 1}: segtui verify+extract buffered {ours[-1]:.3f} s, "
                f"streamed twice {streamed[-1]:.3f} s, "
                f"tarfile extractall(filter='data') {theirs[-1]:.3f} s"
            )
        for label, times in (("buffered", ours), ("streamed twice", streamed)):
            median, low, high = median_ratio(times, theirs)
            print(
                f"segtui {label} / tarfile time: x{median:.2f} median "
                f"(min x{low:.2f}, max x{high:.2f})"
            )
        for label, limits in (("buffered", BUFFERED), ("streamed twice", STREAMING)):
            before, peak = _peak_rss_mib(archive, scratch / "rss", limits)
            print(
                f"peak RSS, {label}: {peak:.0f} MiB ({before:.0f} MiB after the imports, "
                f"+{peak - before:.0f} MiB for verify+extract)"
            )
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
