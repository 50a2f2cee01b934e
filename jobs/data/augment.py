"""Batched training-time augmentation: random mirror and random shift, moving the boxes with the pixels.

Fine-grained classifiers trained from scratch on a few images per class (CUB: 30) overfit, and the
birds' poses give them a shortcut: most face one way and sit near the centre. Mirroring and shifting
remove both, so a classifier (and an attention net fed by its features) has to find the object.

Both act on a model batch ("image" (B, C, H, W), "boxes" (B, M, 4) x0, y0, x1, y1 in pixels, NaN-padded)
as whole-batch tensor operations, never a loop over samples. Labels are untouched, so a mirror is refused
for batches with a "sequence" (digits read left to right would be read backwards).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_hflip(batch: dict[str, Tensor], generator: torch.Generator, p: float = 0.5) -> dict[str, Tensor]:
    """Mirror each sample left-right with probability p; boxes follow (x0' = W - x1, x1' = W - x0).

    Returns a new batch dict (the input's tensors are not modified)."""
    if "sequence" in batch:
        raise ValueError("augment.hflip: refused for sequence labels (digits read left to right would reverse)")
    images = batch["image"]
    B, C, H, W = images.shape
    flip = torch.rand(B, generator=generator) < p  # (B,)
    flip = flip.to(images.device)
    out = dict(batch)
    out["image"] = torch.where(flip.view(B, 1, 1, 1), images.flip(-1), images)
    if "boxes" in batch:
        boxes = batch["boxes"]  # (B, M, 4)
        mirrored = torch.stack((W - boxes[..., 2], boxes[..., 1], W - boxes[..., 0], boxes[..., 3]), dim=-1)
        out["boxes"] = torch.where(flip.view(B, 1, 1), mirrored, boxes)
    return out


def random_shift(batch: dict[str, Tensor], generator: torch.Generator, max_shift: int) -> dict[str, Tensor]:
    """Translate each sample by whole pixels drawn uniformly from [-max_shift, max_shift] in x and y,
    filling with zeros; boxes move with the pixels and are clipped to the image (a box pushed wholly out
    becomes NaN, as a missing box is).

    Nearest-neighbour sampling at whole-pixel offsets copies pixels exactly (no blur)."""
    if max_shift < 0:
        raise ValueError(f"augment.max_shift: must be >= 0, got {max_shift}")
    if max_shift == 0:
        return batch
    images = batch["image"]
    B, C, H, W = images.shape
    shift = torch.randint(-max_shift, max_shift + 1, (B, 2), generator=generator).to(images)  # (B, 2) dx, dy px
    # Output pixel (x, y) reads input (x - dx, y - dy); in normalised coordinates a pixel is 2/W wide.
    theta = images.new_zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = 1.0, 1.0
    theta[:, 0, 2], theta[:, 1, 2] = -2 * shift[:, 0] / W, -2 * shift[:, 1] / H
    grid = F.affine_grid(theta, (B, C, H, W), align_corners=False)  # (B, H, W, 2)
    out = dict(batch)
    out["image"] = F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if "boxes" in batch:
        out["boxes"] = _clip(batch["boxes"] + shift.repeat(1, 2).unsqueeze(1), W, H)
    return out


def random_crop(batch: dict[str, Tensor], generator: torch.Generator, min_side: float) -> dict[str, Tensor]:
    """Cut from each sample a window of side fraction f ~ U[min_side, 1] of the image's (aspect kept) at a
    uniformly drawn place inside it, and zoom it back to the full size (bilinear); boxes follow
    (x' = (x - x_offset) / f) and are clipped (a box cut wholly out becomes NaN).

    Unlike a shift, no border is filled: the object moves off the photo's centre and changes size with
    nothing in the picture telling where the window was (a shift's black border does)."""
    if not 0 < min_side <= 1:
        raise ValueError(f"augment.min_crop: must be > 0 and <= 1, got {min_side}")
    if min_side == 1:
        return batch
    images = batch["image"]
    B, C, H, W = images.shape
    f = (min_side + (1 - min_side) * torch.rand(B, generator=generator)).to(images)  # (B,) window side fraction
    corner = (1 - f).unsqueeze(1) * torch.rand(B, 2, generator=generator).to(images)  # (B, 2) offset / side
    # Output normalised coordinate u in [-1, 1] reads input f * u + t, t the window's normalised centre.
    theta = images.new_zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = f, f
    theta[:, :, 2] = 2 * (corner + f.unsqueeze(1) / 2) - 1
    grid = F.affine_grid(theta, (B, C, H, W), align_corners=False)  # (B, H, W, 2)
    out = dict(batch)
    out["image"] = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if "boxes" in batch:
        offset = (corner * images.new_tensor([W, H])).repeat(1, 2).unsqueeze(1)  # (B, 1, 4) pixels
        out["boxes"] = _clip((batch["boxes"] - offset) / f.view(B, 1, 1), W, H)
    return out


def _clip(boxes: Tensor, W: int, H: int) -> Tensor:
    """boxes (B, M, 4) moved by an augmentation -> clipped to the W x H image; a box left with no area (moved
    wholly out) becomes NaN, as a missing box is."""
    boxes = torch.minimum(boxes.clamp(min=0), boxes.new_tensor([W, H, W, H]))
    gone = (boxes[..., 2] <= boxes[..., 0]) | (boxes[..., 3] <= boxes[..., 1])  # (B, M)
    return boxes.masked_fill(gone.unsqueeze(-1), float("nan"))


def augment(
    batch: dict[str, Tensor], generator: torch.Generator, hflip: bool = False, max_shift: int = 0, min_crop: float = 1.0
) -> dict[str, Tensor]:
    """random_hflip (when hflip), random_crop (when min_crop < 1), then random_shift (when max_shift > 0)."""
    if hflip:
        batch = random_hflip(batch, generator)
    batch = random_crop(batch, generator, min_crop)
    return random_shift(batch, generator, max_shift)
