"""RA-CNN on the `zoom` recipe: does the zoomed scale win, and does its box find the digit?

    .venv/bin/python -m bench.racnn_zoom --minutes 10 --out bench_out/racnn_zoom

Trains `racnn-zoom` with the paper's schedule (classifier warm-up, APN initialisation on the strongest
feature response, then alternating classifier / APN phases) for a bounded time on one CPU thread, then
reports on the test split: top-1 accuracy per scale and fused, and the mean IoU of the scale-2 box with the
digit's true box against the whole image and a centred box of the same size. Writes results.json and
boxes.png (true box green, learned scale-2 box red) under --out.

The helpers (`Schedule`, `train`, `evaluate`, `draw_boxes`) serve bench/birds.py too.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attention_models import create_model
from attention_models.sampling import box_iou
from jobs.data.augment import augment


@dataclass
class Schedule:
    """RA-CNN's alternating schedule in steps (a model without phases trains all parameters jointly):
    warm-up classifiers, APN init, then classifiers (first round longer) and APN steps in turn."""

    warmup_steps: int = 0  # classifier steps before the APN init (0: from scratch, random features localise ink)
    apn_init_steps: int = 100  # APN regression onto the highest-response square
    first_classifier_steps: int = 400  # classifiers after the init, before any ranking step
    classifier_steps: int = 100  # per later round
    apn_steps: int = 20  # per round
    batch_size: int = 32
    lr: float = 1e-3
    apn_lr: float = 1e-4  # ranking steps: small, see attention_models/racnn.py
    hflip: bool = False  # mirror training images at random (jobs/data/augment.py)
    max_shift: int = 0  # shift training images by up to this many pixels
    min_crop: float = 1.0  # zoom training images onto random windows of at least this side fraction
    apn_init_lr: float | None = None  # APN initialisation learning rate (None: lr)


def train(model, train_set, schedule: Schedule, seconds: float, log=print, seed: int = 0) -> dict:
    """Train until `seconds` have passed (the warm-up, init and first classifier phase are not cut short).
    Returns step count, training images per second and seconds."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    groups = model.parameter_groups()
    opts = {k: torch.optim.Adam(v, lr=schedule.apn_lr if k == "apn" else schedule.lr) for k, v in groups.items()}
    init_lr = schedule.lr if schedule.apn_init_lr is None else schedule.apn_init_lr
    init_opt = torch.optim.Adam(groups["apn"], lr=init_lr) if "apn" in groups else None
    start, steps, images = time.monotonic(), 0, 0
    model.train()

    def step(group: str, phase: str | None, init: bool = False) -> dict[str, float]:
        nonlocal steps, images
        batch = train_set.to_batch(rng.integers(0, len(train_set), schedule.batch_size))
        batch = augment(batch, generator, schedule.hflip, schedule.max_shift, schedule.min_crop)
        out = model(batch["image"])
        if init:
            terms = model.apn_init_losses(out, batch)
        elif phase is None:
            terms = model.losses(out, batch)
        else:
            terms = model.losses(out, batch, phase=phase)
        loss = sum(terms.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {steps}: {({k: v.item() for k, v in terms.items()})}")
        model.zero_grad(set_to_none=True)
        loss.backward()
        (init_opt if init else opts[group]).step()
        steps += 1
        images += len(batch["label"])
        return {k: round(v.item(), 4) for k, v in terms.items()}

    def elapsed() -> float:
        return time.monotonic() - start

    if not model.phases():
        while elapsed() < seconds:
            terms = step("all", None)
            if steps % 100 == 0:
                log(f"[{elapsed():6.0f}s] step {steps} {terms}")
    else:
        terms: dict = {}
        for _ in range(schedule.warmup_steps):
            terms = step("classifiers", "classifiers")
        log(f"[{elapsed():6.0f}s] warm-up done {terms}")
        for _ in range(schedule.apn_init_steps):
            terms = step("apn", "apn", init=True)
        log(f"[{elapsed():6.0f}s] APN init done {terms}")
        rounds = 0
        while rounds == 0 or elapsed() < seconds:
            for _ in range(schedule.first_classifier_steps if rounds == 0 else schedule.classifier_steps):
                cls_terms = step("classifiers", "classifiers")
            for _ in range(schedule.apn_steps):
                apn_terms = step("apn", "apn")
            rounds += 1
            log(f"[{elapsed():6.0f}s] round {rounds} {cls_terms} {apn_terms if schedule.apn_steps else ''}")
    return {"steps": steps, "train_images_per_s": images / elapsed(), "seconds": elapsed()}


def on_object_fraction(box: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """box, truth (..., 4) x0, y0, x1, y1 -> (...) the fraction of box's area inside truth."""
    inter = (torch.minimum(box[..., 2:], truth[..., 2:]) - torch.maximum(box[..., :2], truth[..., :2])).clamp(min=0)
    return inter.prod(-1) / (box[..., 2:] - box[..., :2]).clamp(min=1e-9).prod(-1)


def centre_inside(box: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """box, truth (..., 4) -> (...) bool: box's centre lies inside truth."""
    c = (box[..., :2] + box[..., 2:]) / 2
    return ((c >= truth[..., :2]) & (c <= truth[..., 2:])).all(dim=-1)


def centre_correlation(box: torch.Tensor, truth: torch.Tensor) -> list[float | None]:
    """box, truth (N, 4) -> [x, y] correlation over the N images of the box's centre with the object's;
    None where the box never moves (scale 1, the whole image). Does the box follow the object?"""
    c, tc = (box[:, :2] + box[:, 2:]) / 2, (truth[:, :2] + truth[:, 2:]) / 2
    return [round(float(np.corrcoef(c[:, i], tc[:, i])[0, 1]), 3) if c[:, i].std() > 0 else None for i in (0, 1)]


class CentredProposal(nn.Module):
    """Wraps an RA-CNN APN: the same box size, moved to the centre of its input. Evaluating with it asks
    whether *where* the learned box looks matters to the finer scale, or only that it zooms."""

    def __init__(self, apn: nn.Module):
        super().__init__()
        self.apn = apn

    def forward(self, features: torch.Tensor, side: int) -> torch.Tensor:
        box = self.apn(features, side)  # (B, 3) t_x, t_y, t_l
        return torch.cat((box.new_full((box.shape[0], 2), side / 2), box[:, 2:]), dim=1)


def feature_peak_box(model, out, image_shape: tuple[int, int]) -> torch.Tensor | None:
    """RA-CNN's APN-initialisation target at scale 1 (the square on the strongest feature response) in
    original-image pixels, (B, 4); None for a model without one. Do the features know where the object is?"""
    if not hasattr(model, "apn_init_targets") or model.config.num_scales < 2:
        return None
    H, W = image_shape
    side = model.config.scale_sizes[0]
    t = model.apn_init_targets(out)[:, 0]  # (B, 3) pixels of scale 1's input
    scale = t.new_tensor([W / side, H / side])
    return torch.cat(((t[:, :2] - t[:, 2:]) * scale, (t[:, :2] + t[:, 2:]) * scale), dim=1)


def _score(model, test_set, chunk: int) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Test-set means of model.metrics, boxes (N, T, 4), first true boxes (N, 4), feature-peak boxes (N, 4)."""
    sums: dict[str, float] = {}
    boxes, truth, peaks = [], [], []
    for i in range(0, len(test_set), chunk):
        b = test_set.to_batch(np.arange(i, min(i + chunk, len(test_set))))
        out = model(b["image"])
        for k, v in model.metrics(out, b).items():
            sums[k] = sums.get(k, 0.0) + v * len(b["label"])
        boxes.append(out.attention.boxes[:, :, 0])
        truth.append(b["boxes"][:, 0])
        peaks.append(feature_peak_box(model, out, b["image"].shape[2:]))
    peak = torch.cat(peaks) if peaks[0] is not None else None
    return {k: v / len(test_set) for k, v in sums.items()}, torch.cat(boxes), torch.cat(truth), peak


@torch.no_grad()
def evaluate(model, test_set, chunk: int = 100) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The model's own metrics over the test set (accuracy fused and per scale or level, IoU of each box
    with the first true box), plus the IoU of the whole image and of a box of the same size as each learned
    box but centred in the image, and (RA-CNN) the accuracies with every APN box moved to the centre.
    Returns (results, boxes (N, T, 4), true boxes (N, 4))."""
    model.eval()
    result, boxes, truth, peak = _score(model, test_set, chunk)
    apns = getattr(model, "apns", None)
    if apns is not None and len(apns):
        model.apns = nn.ModuleList(CentredProposal(a) for a in apns)
        centred_run = _score(model, test_set, chunk)[0]
        model.apns = apns
        result.update({f"{k}_centred_boxes": v for k, v in centred_run.items() if k.startswith("accuracy")})
    model.train()
    H, W = test_set.image_shape[:2]
    valid = ~truth.isnan().any(dim=1)
    result["iou_whole_image"] = box_iou(truth.new_tensor([0.0, 0.0, W, H]), truth[valid]).mean().item()
    size = boxes[..., 2:] - boxes[..., :2]  # (N, T, 2)
    centre = truth.new_tensor([W / 2, H / 2])
    centred = torch.cat((centre - size / 2, centre + size / 2), dim=-1)  # (N, T, 4)
    for t in range(boxes.shape[1]):
        result[f"iou_centred_same_size{t + 1}"] = box_iou(centred[valid, t], truth[valid]).mean().item()
        result[f"box{t + 1}_side_fraction"] = (size[valid, t] / truth.new_tensor([W, H])).mean().item()
        # IoU punishes a box that zooms onto a part of the object (the head, say) as much as one beside it;
        # these two ask only whether the box lies on the object, for the learned and the centred box.
        # Does the box follow the object, or sit at a fixed place? Mean offset of its centre from the object's
        # centre (x, y pixels) and the correlation of the two over the test images.
        c, tc = (boxes[valid, t, :2] + boxes[valid, t, 2:]) / 2, (truth[valid, :2] + truth[valid, 2:]) / 2
        result[f"centre_offset{t + 1}"] = [round(v, 2) for v in (c - tc).mean(dim=0).tolist()]
        result[f"centre_correlation{t + 1}"] = centre_correlation(boxes[valid, t], truth[valid])
        for name, b in (("", boxes[valid, t]), ("_centred", centred[valid, t])):
            result[f"on_object{name}{t + 1}"] = on_object_fraction(b, truth[valid]).mean().item()
            result[f"centre_in_object{name}{t + 1}"] = centre_inside(b, truth[valid]).float().mean().item()
    if peak is not None:  # the feature-peak square against the centred square of the same size
        p_size = peak[valid, 2:] - peak[valid, :2]
        p_centred = torch.cat((centre - p_size / 2, centre + p_size / 2), dim=-1)
        result["iou_feature_peak"] = box_iou(peak[valid], truth[valid]).mean().item()
        result["iou_feature_peak_centred"] = box_iou(p_centred, truth[valid]).mean().item()
        result["feature_peak_centre_correlation"] = centre_correlation(peak[valid], truth[valid])
    result["test_images"] = len(test_set)
    return result, boxes, truth


def draw_boxes(
    path: Path, test_set, boxes: torch.Tensor, truth: torch.Tensor, count: int = 12, title: str = "", first: int = 1
) -> None:
    """A grid of test images with the true box (green) and the learned boxes boxes[:, first:] (red, orange, ...).
    first=1 skips RA-CNN's scale-1 box, which is the whole image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cols = 6
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows))
    colours = ["red", "orange", "magenta", "cyan"]
    for k, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if k >= min(count, len(test_set)):
            continue
        img = test_set.images[k]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        x0, y0, x1, y1 = truth[k].tolist()
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.5))
        for t in range(first, boxes.shape[1]):
            bx = boxes[k, t].tolist()
            ax.add_patch(Rectangle((bx[0], bx[1]), bx[2] - bx[0], bx[3] - bx[1], fill=False, color=colours[(t - first) % 4], lw=1.5))
        ax.set_title(test_set.class_names[test_set.labels[k]][:18], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    p.add_argument("--train-count", type=int, default=8000)
    p.add_argument("--test-count", type=int, default=1000)
    p.add_argument("--pieces", type=int, default=None, help="clutter fragments (recipe default 24)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--model", default="racnn-zoom")
    p.add_argument("--out", type=Path, default=Path("bench_out/racnn_zoom"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    from jobs.data.recipes import build_recipe

    opts = {} if args.pieces is None else {"pieces": args.pieces}
    train_set = build_recipe("zoom", count=args.train_count, seed=args.seed, **opts)
    test_set = build_recipe("zoom", count=args.test_count, seed=args.seed, split="test", **opts)
    model = create_model(args.model)
    schedule = Schedule()
    run = train(model, train_set, schedule, args.minutes * 60)
    result, boxes, truth = evaluate(model, test_set)
    report = {"model": args.model, "recipe": {"name": "zoom", **opts}, "schedule": asdict(schedule), **run, **result}
    print(json.dumps(report, indent=1))
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    draw_boxes(
        args.out / "boxes.png", test_set, boxes, truth,
        title=f"{args.model}: true box green, scale-2 box red (acc s1 {result['accuracy_scale1']:.2f}, "
        f"s2 {result['accuracy_scale2']:.2f}; IoU {result['iou_scale2']:.3f} vs whole {result['iou_whole_image']:.3f})",
    )


if __name__ == "__main__":
    main()
