"""Batched, differentiable patch extraction shared by every family (retina glimpses, crops, zooms).

Coordinates: normalised image coordinates in [-1, 1] (x right, y down), the convention of
`F.affine_grid` with `align_corners=False`, so x = -1 is the left edge of the first pixel column.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sample_patches(images: Tensor, centres: Tensor, half_sizes: Tensor, out_size: int) -> Tensor:
    """Sample P axis-aligned patches per image, all in one `grid_sample` call.

    images: (B, C, H, W); centres: (B, P, 2) x, y in [-1, 1]; half_sizes: (B, P) or (B, P, 2) half width
    (and height) in normalised units (a patch of p pixels in a W-wide image has half width p / W).
    Returns (B, P, C, out_size, out_size). Outside the image reads as zero; the result is
    differentiable in `centres` and `half_sizes` (bilinear interpolation).
    """
    B, C, H, W = images.shape
    P = centres.shape[1]
    if half_sizes.dim() == 2:
        half_sizes = half_sizes.unsqueeze(-1).expand(B, P, 2)
    theta = images.new_zeros(B, P, 2, 3)
    theta[..., 0, 0] = half_sizes[..., 0]
    theta[..., 1, 1] = half_sizes[..., 1]
    theta[..., :, 2] = centres
    grid = F.affine_grid(theta.reshape(B * P, 2, 3), [B * P, C, out_size, out_size], align_corners=False)
    # Repeat each image P times by expand + reshape (no copy of the patches' source until grid_sample).
    src = images.unsqueeze(1).expand(B, P, C, H, W).reshape(B * P, C, H, W)
    patches = F.grid_sample(src, grid.to(src.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return patches.reshape(B, P, C, out_size, out_size)


def normalised_to_pixels(centres: Tensor, half_sizes: Tensor, height: int, width: int) -> Tensor:
    """Boxes x0, y0, x1, y1 in pixels from normalised centres (..., 2) and half sizes (...) or (..., 2)."""
    if half_sizes.dim() == centres.dim() - 1:
        half_sizes = torch.stack((half_sizes, half_sizes), dim=-1)
    scale = centres.new_tensor([width / 2, height / 2])
    lo = (centres - half_sizes + 1) * scale
    hi = (centres + half_sizes + 1) * scale
    return torch.cat((lo, hi), dim=-1)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise IoU of boxes (..., 4) x0, y0, x1, y1; NaN where either box is NaN (missing)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda z: (z[..., 2:] - z[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp(min=1e-9)
