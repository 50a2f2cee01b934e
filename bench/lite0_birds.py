"""EfficientNet-Lite0's shipped ImageNet weights on the CUB test photos, with no training at all:

    .venv/bin/python -m bench.lite0_birds --sizes 128 224

For each input size: the fraction of photos whose ImageNet top-1 class is a bird (a wrong port of the
weights would give ~5 %, the share of bird classes), and whether the features know where the bird is: the
square (half side --half-side of the image) on the strongest channel-mean response, as RA-CNN's APN
initialisation picks it, against a centred square of the same size (IoU with the bird box, and the
correlation of the square's centre with the bird's).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from attention_models.efficientnet_lite import EfficientNetLite0, lite0_weights_path
from attention_models.sampling import box_iou
from bench.birds import CUB
from bench.racnn_zoom import centre_correlation

IMAGENET_BIRDS = set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))


def peak_square(energy: torch.Tensor, half: float, side: float) -> torch.Tensor:
    """energy (B, h, w) over a side x side image -> (B, 4) the square of half side `half` (pixels) whose
    window holds the most energy (windows inside the map, stride one cell), clamped inside the image."""
    B, h, w = energy.shape
    k = max(1, min(h, round(2 * half * h / side)))
    window = F.avg_pool2d(energy.unsqueeze(1), k, stride=1).squeeze(1)  # (B, h-k+1, w-k+1)
    peak, cols = window.flatten(1).argmax(dim=1), window.shape[2]
    cx = ((peak % cols).float() + k / 2) * side / w
    cy = (torch.div(peak, cols, rounding_mode="floor").float() + k / 2) * side / h
    centre = torch.stack((cx, cy), dim=1).clamp(half, side - half)  # (B, 2)
    return torch.cat((centre - half, centre + half), dim=1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 224], help="network input sides")
    p.add_argument("--half-side", type=float, default=0.3, help="square half side, fraction of the image")
    p.add_argument("--every", type=int, default=3, help="score every n-th test photo")
    p.add_argument("--source", default=CUB)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from jobs.data.recipes import build_recipe

    photos = build_recipe("cub", count=None, seed=0, split="test", source=args.source, size=128)
    batch = photos.to_batch(np.arange(0, len(photos), args.every))
    truth = batch["boxes"][:, 0]  # (N, 4) pixels of the 128 px photos
    net = EfficientNetLite0(lite0_weights_path(), classifier=True).eval()
    half = args.half_side * 128
    centred = truth.new_tensor([64 - half, 64 - half, 64 + half, 64 + half]).expand(len(truth), 4)
    print(f"{len(truth)} CUB test photos; centred square IoU {box_iou(centred, truth).mean():.3f}")
    for size in args.sizes:
        with torch.no_grad():
            x = F.interpolate(batch["image"], size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            features = net(x)  # (N, 1280, h, w)
            top = net._fc(features.mean(dim=(2, 3))).argmax(dim=1)
        square = peak_square(features.mean(dim=1), args.half_side * size, size) * (128 / size)
        birds = np.mean([int(c) in IMAGENET_BIRDS for c in top])
        print(f"{size} px: ImageNet bird class {100 * birds:.1f} %; strongest-response square IoU "
              f"{box_iou(square, truth).mean():.3f}, centre correlation {centre_correlation(square, truth)}")


if __name__ == "__main__":
    main()
