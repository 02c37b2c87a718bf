"""The infer.py every deployment package carries, as text.

It runs on the target with the package's ``segtui_runtime`` and the pinned requirements,
never with segtui: it reads config.json, compiles the model with its ``runtime`` (the
configuration segtui's sweep found best, or OpenVINO's defaults; ``--hint``,
``--streams``, ``--batch`` and ``--precision`` override it, as segtui's benchmark applies
them), says which configuration at the start, and decodes exactly as segtui does.
"""

INFER_SCRIPT = '''#!/usr/bin/env python3
"""Run this package's model on images, the way segtui does.

    python infer.py IMAGE_OR_FOLDER [...] [--out results.json] [--overlay DIR]
                    [--threshold 0.5] [--device CPU] [--parent]
                    [--hint THROUGHPUT|LATENCY] [--streams N|auto] [--batch N]
                    [--precision default|f32]

Compiles the model with config.json's "runtime" (the best configuration of segtui's
sweep, or OpenVINO's defaults), each part overridden by its option, and says which at
the start. Prints one line per image and, with --out, writes every instance as JSON:
class, score, box (x1, y1, x2, y2 in image pixels) and the mask as COCO RLE.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from segtui_runtime.formats import detect_format  # noqa: E402
from segtui_runtime.predictions import decode_mask  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
#: What a package without a "runtime" in its config.json ran with: OpenVINO's defaults.
DEFAULT_RUNTIME = {"hint": "LATENCY", "streams": None, "batch": 1, "precision": "default"}
AUTO = 0  # --streams auto: the hint chooses


def image_paths(args: list[str]) -> list[Path]:
    paths: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            paths.append(path)
        else:
            sys.exit(f"infer.py: no such file or folder: {path}")
    if not paths:
        sys.exit("infer.py: no images found")
    return paths


def overlay(image: np.ndarray, instances: list, names: list[str]) -> np.ndarray:
    out = image.copy()
    rng = np.random.default_rng(0)
    colours = rng.integers(64, 256, (max(1, len(names)), 3))
    for inst in instances:
        colour = colours[inst.class_id % len(colours)].tolist()
        mask = decode_mask(inst.rle).astype(bool)
        out[mask] = (0.5 * out[mask] + 0.5 * np.array(colour)).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in inst.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        label = f"{names[inst.class_id]} {inst.score:.2f}"
        cv2.putText(out, label, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    return out


def count(text: str) -> int:
    if text == "auto":
        return AUTO
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", type=Path, help="write the instances as JSON here")
    parser.add_argument("--overlay", type=Path, help="write PNGs with the masks drawn here")
    parser.add_argument("--threshold", type=float, default=None, help="minimum score")
    parser.add_argument("--device", default=None)
    parser.add_argument("--parent", action="store_true", help="run the parent model instead")
    parser.add_argument("--hint", choices=("THROUGHPUT", "LATENCY"), help="PERFORMANCE_HINT")
    parser.add_argument("--streams", type=count, help="NUM_STREAMS, or auto (the hint's)")
    parser.add_argument("--batch", type=count, help="images per inference")
    parser.add_argument("--precision", choices=("default", "f32"), help="inference precision")
    args = parser.parse_args()
    if args.batch == AUTO:
        parser.error("--batch: give a number of images")
    return args


def chosen_runtime(config: dict, args: argparse.Namespace) -> tuple[dict, list[str]]:
    """config.json's runtime with the options given on the command line; their names."""
    runtime = {**DEFAULT_RUNTIME, "source": None, **config.get("runtime", {})}
    given = []
    for key in ("hint", "streams", "batch", "precision"):
        value = getattr(args, key)
        if value is not None:
            runtime[key] = None if value == AUTO else value
            given.append(f"--{key}")
    return runtime, given


def plural(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def runtime_text(runtime: dict) -> str:
    streams = runtime["streams"]
    parts = [
        runtime["hint"],
        "auto streams" if streams is None else plural(streams, "stream"),
        f"batch {runtime['batch']}",
    ]
    if runtime["precision"] != "default":
        parts.append(f"{runtime['precision']} precision")
    return ", ".join(parts)


def start_line(runtime: dict, given: list[str], here: str | None) -> str:
    """The configuration, where it comes from, and the CPU a sweep measured it on."""
    source = runtime["source"]
    if source is None:
        origin = ": defaults (no sweep; run segtui sweep to tune)"
    else:
        cpu = source["machine"] or "an unrecorded CPU"
        origin = (
            f" from sweep #{source['sweep_result_id']} ({source['throughput_fps']:.1f} FPS on "
            f"{cpu}, {source['measured_at']})"
        )
        if source["machine"] and here and source["machine"] != here:
            origin += f"; this machine is {here}, not the sweep's CPU: run segtui sweep to tune"
    if given:
        origin += f"; {', '.join(given)} from the command line"
    return f"runtime: {runtime_text(runtime)}{origin}"


def compile_properties(runtime: dict) -> dict[str, str]:
    """The compile properties segtui's benchmark and sweep use for this configuration."""
    properties = {"PERFORMANCE_HINT": runtime["hint"]}
    if runtime["streams"] is not None:
        properties["NUM_STREAMS"] = str(runtime["streams"])
    if runtime["precision"] == "f32":
        properties["INFERENCE_PRECISION_HINT"] = "f32"
    return properties


def with_batch(model: ov.Model, image_input: str, batch: int) -> list[bool]:
    """Reshape the image input to `batch` images, as segtui's sweep does; which outputs then
    hold one row per image (the others are shared by the batch's images)."""
    before = [p.get_partial_shape() for p in model.outputs]
    if batch == 1:
        return [False] * len(before)
    port = next(p for p in model.inputs if image_input in p.get_names())
    shape = [d.get_length() for d in port.get_partial_shape()]
    shape[0] = batch
    try:
        model.reshape({port: ov.PartialShape(shape)})
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        sys.exit(f"infer.py: this model cannot run with batch {batch} ({reason}); use --batch 1")

    def first(shape: ov.PartialShape) -> int | None:
        static = shape.rank.is_static and len(shape) > 0 and shape[0].is_static
        return shape[0].get_length() if static else None

    return [
        first(old) == 1 and first(port.get_partial_shape()) == batch
        for old, port in zip(before, model.outputs, strict=True)
    ]


def readable(paths: list[Path], adapter):
    """(path, image, inputs, meta) per image that reads; the others are skipped, said so."""
    for path in paths:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            print(f"{path}: not a readable image, skipped", file=sys.stderr)
            continue
        yield (path, image, *adapter.preprocess(image))


def batches(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def inferred(compiled, adapter, paths: list[Path], batch: int, per_image: list[bool]):
    """(path, image, outputs, meta) per readable image, in order: `batch` images per
    inference, as many inferences in flight as the compiled model asks for."""
    count = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    idle = [compiled.create_infer_request() for _ in range(count)]
    in_flight: collections.deque = collections.deque()  # (request, its images), oldest first

    def oldest():
        request, items = in_flight.popleft()
        request.wait()
        outputs = [np.array(t.data) for t in request.output_tensors]
        idle.append(request)
        return each_image(items, outputs, per_image)

    for chunk in batches(readable(paths, adapter), batch):
        if not idle:
            yield from oldest()
        padded = chunk + [chunk[-1]] * (batch - len(chunk))  # a short last batch: repeats
        inputs = {name: np.concatenate([item[2][name] for item in padded]) for name in chunk[0][2]}
        request = idle.pop()
        request.start_async(inputs)
        in_flight.append((request, chunk))
    while in_flight:
        yield from oldest()


def each_image(items: list[tuple], outputs: list[np.ndarray], per_image: list[bool]):
    for row, (path, image, _inputs, meta) in enumerate(items):
        mine = [o[row : row + 1] if own else o for o, own in zip(outputs, per_image, strict=True)]
        yield path, image, mine, meta


def main() -> int:
    args = arguments()
    config = json.loads((HERE / "config.json").read_text(encoding="utf-8"))
    entry = config["parent" if args.parent else "model"]
    if entry is None:
        sys.exit("infer.py: this package holds no parent model")
    threshold = config["score_threshold"] if args.threshold is None else args.threshold
    names = config["class_names"]
    device = args.device or config["device"]
    runtime, given = chosen_runtime(config, args)
    core = ov.Core()
    try:
        here = str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # a device this machine lacks: compiling says so below
        here = None
    print(start_line(runtime, given, here), flush=True)
    xml = HERE / entry["xml"]
    model = core.read_model(xml)
    if any(p.get_partial_shape().is_dynamic for p in model.inputs):
        shapes = entry["input_shapes"]
        model.reshape({name: ov.PartialShape(shape) for name, shape in shapes.items()})
    # The accuracy settings segtui predicted with (the user's and the detected values).
    settings = (entry.get("accuracy_settings") or {}).get("values") or None
    adapter = detect_format(model, xml, names, settings=settings)
    per_image = with_batch(model, adapter.image_input, runtime["batch"])
    compiled = core.compile_model(model, device, compile_properties(runtime))
    streams = plural(int(compiled.get_property("NUM_STREAMS")), "stream")
    requests = plural(int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")), "request")
    print(f"compiled for {device}: {streams}, {requests} in flight", flush=True)
    results = []
    for path, image, outputs, meta in inferred(
        compiled, adapter, image_paths(args.images), runtime["batch"], per_image
    ):
        instances = adapter.decode(outputs, meta, threshold)
        counts: dict[str, int] = {}
        for inst in instances:
            counts[names[inst.class_id]] = counts.get(names[inst.class_id], 0) + 1
        found = ", ".join(f"{n} {name}" for name, n in counts.items()) or "nothing"
        print(f"{path}: {len(instances)} instances ({found})")
        results.append(
            {
                "image": str(path),
                "height": int(image.shape[0]),
                "width": int(image.shape[1]),
                "instances": [
                    {**inst.to_json(), "class_name": names[inst.class_id]} for inst in instances
                ],
            }
        )
        if args.overlay:
            args.overlay.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.overlay / (path.stem + ".png")), overlay(image, instances, names))
    if args.out:
        document = {"threshold": threshold, "runtime": runtime, "images": results}
        args.out.write_text(json.dumps(document), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''
