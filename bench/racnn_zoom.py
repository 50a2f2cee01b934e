"""RA-CNN on the `zoom` recipe: does the zoomed scale win, and does its box find the digit?

    .venv/bin/python -m bench.racnn_zoom --minutes 10 --out bench_out/racnn_zoom
    .venv/bin/python -m bench.racnn_zoom --minutes 0 --train-count 64 --test-count 32 --out bench_out/smoke/racnn_zoom  # smoke run: one epoch

Trains `racnn-zoom` through the service's training loop (jobs.run.loop.fit, in-process, one CPU thread) on a
dataset directory of --train-count / --test-count `zoom` canvases written under --out/data/, its run under
--out/runs/, with RA-CNN's schedule expressed in the job spec: --apn-init steps of APN initialisation on the
strongest feature response (optim.attention_init_steps), then classifier and APN phases of --alternate-every
steps each in turn (optim.alternate_every), the APN's learning rate --apn-lr-scale times the classifiers'
(optim.lr_scales: {apn: ...}, its parameter group). Training ends at the first epoch end past --minutes.
What the bench's former loop did and the spec cannot say: phases of unequal length (400 classifier steps
after the init, then 100 classifier / 20 APN steps per round); here both phases last --alternate-every steps
(the loop counts the init steps in the alternation, so an --apn-init that is a multiple of 2 x
--alternate-every lets the classifiers go first, as they did).
Then it reports on the test split, on the last epoch's model: top-1 accuracy per scale and fused, and the
mean IoU of the scale-2 box with the digit's true box against the whole image and a centred box of the same
size. Writes results.json and boxes.png (true box green, learned scale-2 box red) under --out.

The helpers (`evaluate`, `draw_boxes` and the box measures) serve bench/birds.py too.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attention_models.sampling import box_iou
from bench.runs import EPOCH_CEILING, Keeper, OutOfTime, bench_spec, dataset
from jobs.data.store import read_split
from jobs.run.loop import fit


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
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget (ends at an epoch end)")
    p.add_argument("--train-count", type=int, default=8000)
    p.add_argument("--test-count", type=int, default=1000)
    p.add_argument("--pieces", type=int, default=None, help="clutter fragments (recipe default 24)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--model", default="racnn-zoom")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--apn-lr-scale", type=float, default=0.1,
                   help="the APN's learning rate over --lr (ranking steps: small, see attention_models/racnn.py)")
    p.add_argument("--apn-init", type=int, default=100, help="APN initialisation steps")
    p.add_argument("--alternate-every", type=int, default=50, help="steps of each classifier / APN phase")
    p.add_argument("--out", type=Path, default=Path("bench_out/racnn_zoom"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    opts = {} if args.pieces is None else {"pieces": args.pieces}
    data = dataset(args.out / "data" / f"zoom-train{args.train_count}-test{args.test_count}-seed{args.seed}", "zoom",
                   {"train": args.train_count, "test": args.test_count}, seed=args.seed, **opts)
    spec = bench_spec(
        args.model, args.out / "runs", model={"name": args.model}, data={"path": data, "max_val_samples": 200},
        optim={"lr": args.lr, "lr_scales": {"apn": args.apn_lr_scale}, "attention_init_steps": args.apn_init,
               "alternate_every": args.alternate_every, "batch_size": 32, "epochs": EPOCH_CEILING, "seed": args.seed},
    )  # fmt: skip
    keeper = Keeper(spec, minutes=args.minutes, on_epoch=lambda m, _: print(
        f"[{keeper.seconds:6.0f}s] epoch {m['epoch']} step {m['step']} train_loss {m['train_loss']:.4f} "
        f"val_accuracy {m['val_accuracy']:.3f}", flush=True))
    with contextlib.suppress(OutOfTime):
        fit(spec, keeper)
    test_set = read_split(data, "test")
    result, boxes, truth = evaluate(keeper.model(), test_set)
    run = {"steps": keeper.state["step"], "train_images_per_s": keeper.state["metrics"]["images_per_s"],
           "seconds": keeper.seconds, "run": keeper.layout.root}
    report = {"model": args.model, "recipe": {"name": "zoom", **opts}, "optim": dataclasses.asdict(spec.optim),
              **run, **result}
    print(json.dumps(report, indent=1))
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    draw_boxes(
        args.out / "boxes.png", test_set, boxes, truth,
        title=f"{args.model}: true box green, scale-2 box red (acc s1 {result['accuracy_scale1']:.2f}, "
        f"s2 {result['accuracy_scale2']:.2f}; IoU {result['iou_scale2']:.3f} vs whole {result['iou_whole_image']:.3f})",
    )


if __name__ == "__main__":
    main()
