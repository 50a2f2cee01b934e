"""Where would RA-CNN's own objective put the box? An exhaustive search over squares on the CUB test photos:

    .venv/bin/python -m bench.box_search --saved bench_out/birds_lite0/racnn-cub-lite0.pt

For a trained 2-scale RA-CNN (a <model>.pt saved by bench/birds.py, or any run or checkpoint of one), every test photo (every --every-th) is cut to each
square of an n x n grid of centres (half side --half-side of the image) and fed to scale 2. The square on
which scale 2 gives the true class the highest probability is the one the ranking loss pulls the APN
towards. It is scored against the bird box (IoU, share of its area on the bird) beside the centred square;
and per photo, the correlation over the grid of the true-class log-probability with the share on the bird
asks whether the classifier is more sure where the box lies on the bird.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from attention_models.backbones import pooled
from attention_models.crop import attention_crop
from attention_models.sampling import box_iou
from bench.birds import CUB
from bench.racnn_zoom import centre_correlation, on_object_fraction
from jobs.run.checkpoints import load_trained


def squares(centres: torch.Tensor, half: float) -> torch.Tensor:
    """centres (..., 2) -> (..., 4) x0, y0, x1, y1 squares of half side `half`."""
    return torch.cat((centres - half, centres + half), dim=-1)


@torch.no_grad()
def true_class_log_probs(model, images: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor, half: float,
                         chunk: int = 100) -> torch.Tensor:
    """images (B, C, H, W), labels (B,), centres (G, 2) original pixels -> (B, G) log p(true class) of the
    finest scale on each square, zoomed with the model's own crop."""
    c = model.config
    B = len(images)
    out = []
    for centre in centres:
        x = attention_crop(images, centre.expand(B, 2), images.new_full((B, 2), half), c.scale_sizes[1],
                           c.mask_steepness)
        logits = torch.cat([model.classifiers[1](pooled(model.backbones[1](x[i:i + chunk])))
                            for i in range(0, B, chunk)])
        out.append(logits.log_softmax(dim=1).gather(1, labels.view(-1, 1)).squeeze(1))
    return torch.stack(out, dim=1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--saved", required=True, help="a <model>.pt written by bench/birds.py (or a run, a checkpoint)")
    p.add_argument("--half-side", type=float, nargs="+", default=[0.2, 0.3], help="square half sides (fractions)")
    p.add_argument("--grid", type=int, default=5, help="n: an n x n grid of square centres")
    p.add_argument("--every", type=int, default=3, help="score every n-th test photo")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--source", default=CUB)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from jobs.data.recipes import build_recipe

    trained = load_trained(args.saved)
    model, size = trained.model, trained.model.config.image_size  # eval mode; the photos at the size it was trained on
    photos = build_recipe("cub", count=None, seed=0, split="test", source=args.source, size=size)
    batch = photos.to_batch(np.arange(0, len(photos), args.every))
    truth, labels, side = batch["boxes"][:, 0], batch["label"], float(size)
    report = {"model": trained.spec.model.name, "saved": args.saved, "photos": len(labels), "grid": args.grid}
    for frac in args.half_side:
        half = frac * side
        axis = torch.linspace(half, side - half, args.grid)
        centres = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)  # (G, 2)
        logp = true_class_log_probs(model, batch["image"], labels, centres, half)  # (B, G)
        grid_boxes = squares(centres, half)  # (G, 4)
        on_bird = on_object_fraction(grid_boxes.unsqueeze(0), truth.unsqueeze(1))  # (B, G)
        best = grid_boxes[logp.argmax(dim=1)]  # (B, 4)
        centred = squares(torch.full_like(truth[:, :2], side / 2), half)
        moves = on_bird.std(dim=1) > 0
        per_photo = [np.corrcoef(lp, ob)[0, 1] for lp, ob in zip(logp[moves].numpy(), on_bird[moves].numpy())]
        report[f"half_{frac}"] = {
            "iou_most_confident": box_iou(best, truth).mean().item(),
            "iou_centred": box_iou(centred, truth).mean().item(),
            "on_bird_most_confident": on_object_fraction(best, truth).mean().item(),
            "on_bird_centred": on_object_fraction(centred, truth).mean().item(),
            "most_confident_centre_correlation": centre_correlation(best, truth),
            "confidence_vs_on_bird_correlation_per_photo": float(np.nanmean(per_photo)),
        }
        print(json.dumps({f"half_{frac}": report[f"half_{frac}"]}), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
