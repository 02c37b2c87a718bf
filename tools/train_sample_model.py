#!/usr/bin/env python3
"""Train, export and verify segtui's bundled "shapes" Mask R-CNN sample model.

The model is a small torchvision Mask R-CNN (ResNet-18 + 96-channel FPN) trained
from scratch on synthetic scenes generated on the fly by
``tools/make_shapes_dataset.py``. It is exported to an OpenVINO IR in the Open
Model Zoo *instance-segmentation-security* layout:

* input ``image``: ``[1, 3, 256, 256]`` f32, BGR, 0..255 (normalisation is inside
  the graph);
* outputs ``labels`` ``[N]`` (0-based class index, no background), ``boxes``
  ``[N, 5]`` (x1, y1, x2, y2, score in input pixels) and ``masks``
  ``[N, 28, 28]`` (per-box mask probabilities).

Sub-commands::

    # train (checkpoints every 250 iterations to --out; --resume continues)
    python tools/train_sample_model.py train --iterations 3000 --out /work/train_out

    # or fit the run to a time slot (cosine over wall time); the shipped model:
    python tools/train_sample_model.py train --device cuda --bf16 off --batch-size 8 \
        --workers 14 --iterations 100000 --time-budget 7.5 --out /tmp/tr

    # export a checkpoint to IR, then check IR-vs-PyTorch agreement and COCO AP
    python tools/train_sample_model.py export --ckpt /work/train_out/last.pt \
        --xml sample_projects/shapes/model/shapes_maskrcnn.xml \
        --data sample_projects/shapes

    # only verify / evaluate an existing IR against a checkpoint
    python tools/train_sample_model.py verify --ckpt CKPT --xml XML --data DIR

This is a development tool, not part of the segtui runtime package; it needs
torch, torchvision, openvino, opencv, numpy and pycocotools.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_shapes_dataset import CLASS_NAMES, jpeg_roundtrip, make_scene, scene_rng

IMAGE_SIZE = 256
NUM_CLASSES = len(CLASS_NAMES) + 1  # + background
#: Seed stream of the training scenes; the shipped validation split uses 12345,
#: and numpy's SeedSequence keeps the two streams independent.
TRAIN_SEED = 20_260_001


# --------------------------------------------------------------------------- #
# Model
# --------------------------------------------------------------------------- #


def build_model() -> MaskRCNN:
    """Build the (untrained) Mask R-CNN with the sample's architecture.

    torchvision's backbone helpers default to FrozenBatchNorm2d, which is an
    identity without pretrained statistics, so the ResNet body is built with
    trainable ``nn.BatchNorm2d`` instead and wrapped in the FPN by hand.
    """
    body = resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    backbone = BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[64, 128, 256, 512],
        out_channels=96,
        extra_blocks=LastLevelMaxPool(),
    )
    anchors = AnchorGenerator(
        sizes=((16,), (32,), (64,), (128,), (384,)),
        aspect_ratios=((0.5, 1.0, 2.0),) * 5,
    )
    levels = ["0", "1", "2", "3"]
    box_roi_pool = MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2)
    # canonical_scale 112 (instead of 224) maps the small objects of 256-px
    # images to the finer FPN levels.
    mask_roi_pool = MultiScaleRoIAlign(
        levels, output_size=14, sampling_ratio=1, canonical_scale=112
    )
    return MaskRCNN(
        backbone,
        num_classes=None,  # predictors are given explicitly
        min_size=IMAGE_SIZE,
        max_size=IMAGE_SIZE,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=200,
        box_roi_pool=box_roi_pool,
        box_head=TwoMLPHead(96 * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, NUM_CLASSES),
        box_batch_size_per_image=64,
        box_score_thresh=0.05,
        box_detections_per_img=100,
        mask_roi_pool=mask_roi_pool,
        mask_head=MaskRCNNHeads(96, [64, 64, 64, 64], 1),
        mask_predictor=MaskRCNNPredictor(64, 64, NUM_CLASSES),
    )


def load_checkpoint_model(path: Path) -> MaskRCNN:
    """Build the model and load the weights of a training checkpoint (eval mode, CPU)."""
    model = build_model()
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    return model.eval()


# --------------------------------------------------------------------------- #
# Training data
# --------------------------------------------------------------------------- #


def scene_to_sample(
    image_bgr: np.ndarray, instances: list[tuple[int, np.ndarray]]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Convert a generated scene to torchvision's (image, target) format."""
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    image = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
    boxes: list[list[float]] = []
    labels: list[int] = []
    masks: list[np.ndarray] = []
    for class_id, mask in instances:
        ys, xs = np.nonzero(mask)
        # torchvision boxes are continuous [x1, y1, x2, y2]: a pixel spans [x, x+1).
        boxes.append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
        labels.append(class_id)
        masks.append(mask.astype(np.uint8))
    size = image_bgr.shape[0]
    target = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": torch.from_numpy(np.stack(masks))
        if masks
        else torch.zeros((0, size, size), dtype=torch.uint8),
    }
    return image, target


class SceneBatches(
    torch.utils.data.Dataset[tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]]
):
    """Map-style dataset whose item ``i`` is the whole batch of iteration ``i``.

    Indexing by iteration keeps the data stream identical whether or not a run
    is resumed and however many loader workers there are.
    """

    def __init__(self, iterations: int, batch_size: int, seed: int) -> None:
        self.iterations = iterations
        self.batch_size = batch_size
        self.seed = seed

    def __len__(self) -> int:
        return self.iterations

    def __getitem__(
        self, iteration: int
    ) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        images: list[torch.Tensor] = []
        targets: list[dict[str, torch.Tensor]] = []
        for k in range(self.batch_size):
            rng = scene_rng(self.seed, iteration * self.batch_size + k)
            image, instances = make_scene(rng, IMAGE_SIZE)
            # Same JPEG artefacts as the shipped validation images.
            image, target = scene_to_sample(jpeg_roundtrip(image), instances)
            images.append(image)
            targets.append(target)
        return images, targets


def _worker_init(_worker_id: int) -> None:
    """Keep the data worker single-threaded; the trainer owns the other threads."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


def resolve_device(name: str) -> torch.device:
    """Map ``auto`` to CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether the CPU has native bf16 arithmetic (AVX512-BF16 or AMX).

    On AVX2-only CPUs PyTorch emulates bf16 and autocast makes training about
    20x slower (measured 28 s/it vs 1.4 s/it on a 2-core AMD EPYC), so bf16 is
    only worth it where the hardware supports it.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _use_bf16(mode: str, device: torch.device) -> bool:
    """Resolve ``--bf16 auto|on|off`` for ``device``."""
    if mode != "auto":
        return mode == "on"
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return cpu_has_native_bf16()


def lr_factor(iteration: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at ``total``."""
    if iteration < warmup:
        return (iteration + 1) / warmup
    progress = (iteration - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def time_lr_factor(iteration: int, warmup: int, elapsed_fraction: float) -> float:
    """Like :func:`lr_factor`, but the cosine follows the share of a wall-clock budget."""
    if iteration < warmup:
        return (iteration + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, elapsed_fraction))))


def train(args: argparse.Namespace) -> int:
    """Train the model, writing checkpoints to ``args.out``.

    With ``--time-budget`` the cosine schedule follows wall-clock time instead of
    iterations and training stops when the budget is spent (``--iterations`` is
    then an upper bound): this fits a run to a fixed slot, e.g. a lent GPU.
    """
    device = resolve_device(args.device)
    budget_s = args.time_budget * 60.0 if args.time_budget else None
    if budget_s is not None and args.resume:
        print("--time-budget cannot be combined with --resume", file=sys.stderr)
        return 2
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True  # fixed 256x256 batches
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    model = build_model()
    if args.init is not None:
        # Fine-tune continuation: weights only, fresh optimiser and schedule.
        model.load_state_dict(
            torch.load(args.init, map_location="cpu", weights_only=False)["model"]
        )
        print(f"initialised weights from {args.init}", flush=True)
    model.to(device)
    if device.type == "cpu":
        # channels_last speeds up the CPU convolutions (1.84 -> 1.38 s/it measured),
        # and together with bf16 autocast roughly halves the time where bf16 is native.
        model.to(memory_format=torch.channels_last)
    model.train()

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(it, args.warmup, args.iterations)
    )
    start = 0
    last_path = out / "last.pt"
    if args.resume and last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["iteration"])
        print(f"resumed from {last_path} at iteration {start}", flush=True)

    dataset = SceneBatches(args.iterations, args.batch_size, args.data_seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        sampler=range(start, args.iterations),
        batch_size=None,  # items are already batches
        num_workers=args.workers,
        worker_init_fn=_worker_init if args.workers > 0 else None,
        prefetch_factor=2 if args.workers > 0 else None,
        persistent_workers=False,
    )
    use_bf16 = _use_bf16(args.bf16, device)
    print(
        f"training on {device} (bf16 autocast: {use_bf16}) iterations {start}..{args.iterations} "
        f"batch {args.batch_size} lr {args.lr} warmup {args.warmup}"
        + (f" time budget {args.time_budget} min" if budget_s else ""),
        flush=True,
    )

    def save(iteration: int, final: bool = False) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "iteration": iteration,
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        tmp = out / "last.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, last_path)  # atomic, so a crash never leaves a torn last.pt
        if final or iteration % args.keep_every == 0 or iteration == args.iterations:
            torch.save(
                {"model": state["model"], "iteration": iteration}, out / f"ckpt_{iteration:05d}.pt"
            )

    window: dict[str, float] = {}
    window_n = 0
    t_window = time.perf_counter()
    t_start = time.perf_counter()
    iteration = start
    for iteration, (images, targets) in zip(
        range(start, args.iterations), _batches(loader), strict=False
    ):
        if budget_s is not None:
            fraction = (time.perf_counter() - t_start) / budget_s
            for group in optimizer.param_groups:
                group["lr"] = args.lr * time_lr_factor(iteration, args.warmup, fraction)
        images = [img.to(device, non_blocking=True) for img in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            losses = model(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        # From-scratch detectors occasionally spike early on; clipping keeps AdamW stable.
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        if budget_s is None:
            scheduler.step()

        for k, v in losses.items():
            window[k] = window.get(k, 0.0) + float(v.detach())
        window_n += 1
        done = iteration + 1
        if done % args.log_every == 0 or done == args.iterations:
            now = time.perf_counter()
            s_per_it = (now - t_window) / window_n
            eta = (
                budget_s - (now - t_start)
                if budget_s is not None
                else s_per_it * (args.iterations - done)
            )
            parts = " ".join(
                f"{k.replace('loss_', '')}={v / window_n:.3f}" for k, v in window.items()
            )
            total = sum(window.values()) / window_n
            print(
                f"it {done}/{args.iterations} loss={total:.3f} {parts} "
                f"lr={optimizer.param_groups[0]['lr']:.2e} "
                f"{s_per_it:.3f}s/it elapsed={(now - t_start) / 60:.1f}min eta={eta / 60:.1f}min",
                flush=True,
            )
            window, window_n, t_window = {}, 0, now
        if budget_s is not None and time.perf_counter() - t_start >= budget_s:
            print(f"time budget of {args.time_budget} min spent", flush=True)
            save(done, final=True)
            break
        if done % args.save_every == 0 or done == args.iterations:
            save(done)
    print(
        f"finished at iteration {iteration + 1}, wall {(time.perf_counter() - t_start) / 60:.1f} min",
        flush=True,
    )
    return 0


def _batches(loader: torch.utils.data.DataLoader[Any]) -> Iterator[Any]:
    """Iterate a loader (a function so the training loop reads linearly)."""
    yield from loader


# --------------------------------------------------------------------------- #
# Export
# --------------------------------------------------------------------------- #


class OmzMaskRCNN(nn.Module):
    """Wrap a torchvision Mask R-CNN in the OMZ instance-segmentation interface.

    ``model.transform.postprocess`` is skipped on purpose: OMZ models return
    28x28 per-box masks, and pasting them into the image is the consumer's job.
    """

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``image``: [1, 3, H, W] BGR 0..255 -> (labels [N], boxes [N, 5], masks [N, 28, 28])."""
        rgb = image[:, [2, 1, 0], :, :] / 255.0
        original_h, original_w = rgb.shape[-2], rgb.shape[-1]
        image_list, _ = self.model.transform([rgb[0]])
        features = self.model.backbone(image_list.tensors)
        proposals, _ = self.model.rpn(image_list, features)
        detections, _ = self.model.roi_heads(features, proposals, image_list.image_sizes)
        det = detections[0]
        resized_h, resized_w = image_list.image_sizes[0]
        # Map boxes from the transform's (possibly resized) frame back to input pixels.
        scale = torch.tensor(
            [
                original_w / resized_w,
                original_h / resized_h,
                original_w / resized_w,
                original_h / resized_h,
            ],
            dtype=det["boxes"].dtype,
        )
        boxes = det["boxes"] * scale
        boxes = torch.cat([boxes, det["scores"].unsqueeze(1)], dim=1)
        masks = det["masks"][:, 0]  # eval-mode roi_heads: [N, 1, 28, 28] probabilities
        labels = det["labels"] - 1  # OMZ labels exclude background
        return labels, boxes, masks


def export_ir(model: MaskRCNN, xml: Path) -> None:
    """Convert ``model`` to an OMZ-layout OpenVINO IR at ``xml`` (+ .bin, FP16 weights)."""
    import openvino as ov

    wrapper = OmzMaskRCNN(model.eval()).eval()
    example = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        ov_model = ov.convert_model(
            wrapper, example_input=example, input=[1, 3, IMAGE_SIZE, IMAGE_SIZE]
        )
    ov_model.inputs[0].get_tensor().set_names({"image"})
    for output, name in zip(ov_model.outputs, ("labels", "boxes", "masks"), strict=True):
        output.get_tensor().set_names({name})
    # OMZ models carry no model_info; the extra labels are harmless metadata
    # that Model API style consumers can use.
    ov_model.set_rt_info("MaskRCNN", ["model_info", "model_type"])
    ov_model.set_rt_info(" ".join(CLASS_NAMES), ["model_info", "labels"])
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(xml), compress_to_fp16=True)


# --------------------------------------------------------------------------- #
# Verification and evaluation
# --------------------------------------------------------------------------- #


def paste_mask(prob: np.ndarray, box: np.ndarray, height: int, width: int) -> np.ndarray:
    """Paste a 28x28 mask probability map into its box on a full-size canvas, threshold 0.5.

    The Detectron / torchvision / OMZ Accuracy Checker convention (`segm_postprocess`),
    which segtui's decoding follows too: the map padded by one zero cell, the box expanded
    by (S+2)/S about its centre and truncated to integers, the padded map resized
    bilinearly to that integer box (both ends included) and kept where > 0.5.
    """
    padded = np.pad(prob.astype(np.float32), ((1, 1), (1, 1)), "constant", constant_values=0)
    scale = padded.shape[0] / (padded.shape[0] - 2.0)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w_half, h_half = (x2 - x1) * 0.5 * scale, (y2 - y1) * 0.5 * scale
    x_c, y_c = (x2 + x1) * 0.5, (y2 + y1) * 0.5
    ex0, ey0, ex1, ey1 = (int(v) for v in (x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half))
    w, h = max(ex1 - ex0 + 1, 1), max(ey1 - ey0 + 1, 1)
    x0, y0 = min(max(ex0, 0), width), min(max(ey0, 0), height)
    xe, ye = min(max(ex1 + 1, 0), width), min(max(ey1 + 1, 0), height)
    resized = cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    canvas = np.zeros((height, width), np.uint8)
    canvas[y0:ye, x0:xe] = resized[y0 - ey0 : ye - ey0, x0 - ex0 : xe - ex0]
    return canvas


def coco_results(
    image_id: int, labels: np.ndarray, boxes: np.ndarray, masks: np.ndarray, height: int, width: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Turn OMZ outputs of one image into COCO bbox and segm result lists."""
    from pycocotools import mask as mask_utils

    bbox_res: list[dict[str, Any]] = []
    segm_res: list[dict[str, Any]] = []
    for label, box, prob in zip(labels, boxes, masks, strict=True):
        score = float(box[4])
        category_id = int(label) + 1
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        bbox_res.append(
            {
                "image_id": image_id,
                "category_id": category_id,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": score,
            }
        )
        rle = mask_utils.encode(np.asfortranarray(paste_mask(prob, box, height, width)))
        rle["counts"] = rle["counts"].decode("ascii")
        # No 'bbox' key: pycocotools then derives area from the mask itself.
        segm_res.append(
            {"image_id": image_id, "category_id": category_id, "segmentation": rle, "score": score}
        )
    return bbox_res, segm_res


def coco_eval(gt: Any, results: list[dict[str, Any]], iou_type: str) -> tuple[float, float]:
    """Run COCOeval and return (AP@[.5:.95], AP50)."""
    import contextlib
    import io

    from pycocotools.cocoeval import COCOeval

    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [N, 4] and [M, 4] x1y1x2y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def verify(ckpt: Path, xml: Path, data: Path, threshold: float = 0.5) -> dict[str, Any]:
    """Compare IR and PyTorch outputs on the validation images and evaluate both with COCO AP.

    Agreement: for every image, the detections with score > ``threshold`` of the
    PyTorch wrapper and of the IR are matched one to one (same label, best IoU);
    unmatched detections on either side count as mismatches, and the largest
    absolute box-coordinate difference over matched pairs is reported.
    """
    import openvino as ov
    from pycocotools.coco import COCO

    model = load_checkpoint_model(ckpt)
    wrapper = OmzMaskRCNN(model).eval()
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ann_path = data / "annotations" / "instances_val.json"
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_path))

    results: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
        "ir": ([], []),
        "torch": ([], []),
    }
    matched = 0
    mismatches: list[str] = []
    max_box_diff = 0.0
    max_score_diff = 0.0
    det_count = 0
    t_ir = 0.0
    for image_id in sorted(gt.getImgIds()):
        info = gt.loadImgs(image_id)[0]
        bgr = cv2.imread(str(data / "images" / info["file_name"]), cv2.IMREAD_COLOR)
        tensor = np.ascontiguousarray(bgr.transpose(2, 0, 1)[None].astype(np.float32))
        t0 = time.perf_counter()
        out = compiled(tensor)
        t_ir += time.perf_counter() - t0
        ir = (
            np.asarray(out["labels"]).astype(np.int64),
            np.asarray(out["boxes"], np.float32),
            np.asarray(out["masks"], np.float32),
        )
        with torch.no_grad():
            pt_labels, pt_boxes, pt_masks = wrapper(torch.from_numpy(tensor))
        pt = (pt_labels.numpy().astype(np.int64), pt_boxes.numpy(), pt_masks.numpy())
        for key, (labels, boxes, masks) in (("ir", ir), ("torch", pt)):
            b, s = coco_results(image_id, labels, boxes, masks, info["height"], info["width"])
            results[key][0].extend(b)
            results[key][1].extend(s)

        # One-to-one matching of confident detections.
        keep_pt = np.nonzero(pt[1][:, 4] > threshold)[0]
        keep_ir = np.nonzero(ir[1][:, 4] > threshold)[0]
        det_count += len(keep_pt)
        used: set[int] = set()
        if len(keep_pt) and len(keep_ir):
            ious = _box_iou(pt[1][keep_pt], ir[1][keep_ir])
        else:
            ious = np.zeros((len(keep_pt), len(keep_ir)))
        for i, pi in enumerate(keep_pt):
            order = np.argsort(-ious[i]) if ious.shape[1] else []
            hit = None
            for j in order:
                if int(j) not in used and ir[0][keep_ir[j]] == pt[0][pi] and ious[i, j] > 0.5:
                    hit = int(j)
                    break
            if hit is None:
                mismatches.append(
                    f"image {image_id}: torch det {pt[1][pi].round(1).tolist()} label {pt[0][pi]} not in IR"
                )
                continue
            used.add(hit)
            matched += 1
            diff = np.abs(pt[1][pi] - ir[1][keep_ir[hit]])
            max_box_diff = max(max_box_diff, float(diff[:4].max()))
            max_score_diff = max(max_score_diff, float(diff[4]))
        for j, ij in enumerate(keep_ir):
            if j not in used:
                mismatches.append(
                    f"image {image_id}: IR det {ir[1][ij].round(1).tolist()} label {ir[0][ij]} not in torch"
                )

    report: dict[str, Any] = {"images": len(gt.getImgIds()), "threshold": threshold}
    for key in ("ir", "torch"):
        box_ap, box_ap50 = coco_eval(gt, results[key][0], "bbox")
        mask_ap, mask_ap50 = coco_eval(gt, results[key][1], "segm")
        report[key] = {
            "box_ap": round(box_ap, 4),
            "box_ap50": round(box_ap50, 4),
            "mask_ap": round(mask_ap, 4),
            "mask_ap50": round(mask_ap50, 4),
        }
    report["agreement"] = {
        "torch_detections_above_threshold": det_count,
        "matched": matched,
        "mismatches": len(mismatches),
        "mismatch_details": mismatches[:20],
        "max_box_diff_px": round(max_box_diff, 4),
        "max_score_diff": round(max_score_diff, 5),
    }
    report["ir_latency_ms_mean"] = round(1000.0 * t_ir / max(1, len(gt.getImgIds())), 2)
    size = xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    report["ir_size_mb"] = round(size / 1e6, 2)
    return report


def export_omz_ir(model: MaskRCNN, xml: Path, counts: str = "omz") -> None:
    """Convert ``model`` to an IR laid out as OMZ's security models (ExperimentalDetectron tail)."""
    from omz_structure import OMZ_COUNTS, build_omz_model, save_omz_model, trained_counts

    tail = OMZ_COUNTS if counts == "omz" else trained_counts(model)
    ov_model = build_omz_model(model.eval(), IMAGE_SIZE, IMAGE_SIZE, tail)
    save_omz_model(ov_model, xml, list(CLASS_NAMES))


def export_cmd(args: argparse.Namespace) -> int:
    """``export`` sub-command: checkpoint -> IR, then verify unless --no-verify."""
    torch.set_num_threads(args.threads)
    model = load_checkpoint_model(args.ckpt)
    t0 = time.perf_counter()
    if args.structure == "omz":
        export_omz_ir(model, args.xml, args.counts)
    else:
        export_ir(model, args.xml)
    print(f"exported {args.xml} in {time.perf_counter() - t0:.1f}s", flush=True)
    if args.no_verify:
        return 0
    return verify_cmd(args)


def recover_cmd(args: argparse.Namespace) -> int:
    """``recover`` sub-command: a checkpoint from a torchvision-structured sample IR's weights."""
    from ir_weights import load_ir_weights

    try:
        model = load_ir_weights(build_model(), args.xml)
    except ValueError as exc:
        print(
            f"{args.xml} is not a torchvision-structured IR of the sample's architecture: {exc}. "
            "Give the IR `export --structure torchvision` wrote (sample_projects/"
            "shapes-torchvision/model/shapes_maskrcnn_torchvision.xml).",
            file=sys.stderr,
        )
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "recovered_from": str(args.xml)}, args.out)
    print(f"wrote {args.out} from {args.xml}", flush=True)
    return 0


def verify_cmd(args: argparse.Namespace) -> int:
    """``verify`` sub-command: print (and optionally save) the agreement/AP report."""
    torch.set_num_threads(args.threads)
    report = verify(args.ckpt, args.xml, args.data)
    text = json.dumps(report, indent=2)
    print(text, flush=True)
    if args.report is not None:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="train from scratch (or --resume / --init)")
    p_train.add_argument("--iterations", type=int, default=3000)
    p_train.add_argument("--batch-size", type=int, default=4)
    p_train.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate")
    p_train.add_argument("--weight-decay", type=float, default=0.01)
    p_train.add_argument("--warmup", type=int, default=300, help="linear warm-up iterations")
    p_train.add_argument("--clip", type=float, default=10.0, help="gradient norm clip")
    p_train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p_train.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    p_train.add_argument(
        "--bf16", choices=("auto", "on", "off"), default="auto", help="bf16 autocast"
    )
    p_train.add_argument("--workers", type=int, default=1, help="scene-generation worker processes")
    p_train.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p_train.add_argument(
        "--data-seed", type=int, default=TRAIN_SEED, help="training scene stream seed"
    )
    p_train.add_argument("--out", type=Path, default=Path("/work/train_out"))
    p_train.add_argument("--save-every", type=int, default=250)
    p_train.add_argument(
        "--keep-every", type=int, default=500, help="also keep ckpt_NNNNN.pt this often"
    )
    p_train.add_argument("--log-every", type=int, default=10)
    p_train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p_train.add_argument("--init", type=Path, help="start from these weights with a fresh schedule")
    p_train.add_argument(
        "--time-budget",
        type=float,
        metavar="MIN",
        help="train for this many minutes: cosine over wall time, --iterations an upper bound",
    )
    p_train.set_defaults(func=train)

    for name, func, help_text in (
        ("export", export_cmd, "export a checkpoint to OMZ-layout IR and verify it"),
        ("verify", verify_cmd, "compare an IR with its checkpoint and evaluate both"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--ckpt", type=Path, required=True)
        p.add_argument(
            "--xml", type=Path, default=Path("sample_projects/shapes/model/shapes_maskrcnn.xml")
        )
        p.add_argument("--data", type=Path, default=Path("sample_projects/shapes"))
        p.add_argument("--report", type=Path, help="also write the JSON report here")
        p.add_argument("--threads", type=int, default=2)
        if name == "export":
            p.add_argument("--no-verify", action="store_true")
            p.add_argument(
                "--structure",
                choices=("omz", "torchvision"),
                default="omz",
                help="detection tail: OMZ's ExperimentalDetectron operations (the shipped "
                "sample) or torchvision's own ops",
            )
            p.add_argument(
                "--counts",
                choices=("omz", "trained"),
                default="omz",
                help="omz structure: OMZ security models' proposal counts (1000 pre/post NMS, "
                "1000 ROIs) or the torchvision model's own test-time counts",
            )
        p.set_defaults(func=func)

    p_recover = sub.add_parser(
        "recover", help="rebuild a checkpoint from a torchvision-structured sample IR"
    )
    p_recover.add_argument("--xml", type=Path, required=True)
    p_recover.add_argument("--out", type=Path, required=True)
    p_recover.set_defaults(func=recover_cmd)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
