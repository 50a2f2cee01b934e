"""RA-CNN's attention crop: a soft boxcar mask, then a bilinear zoom of the box, batched and differentiable.

RA-CNN (Fu et al. 2017, eq. 4-5): for a box with corners (x0, y0), (x1, y1),

    M(x, y) = [s(x - x0) - s(x - x1)] * [s(y - y0) - s(y - y1)],   s(z) = 1 / (1 + exp(-k z))
    X_att   = X ⊙ M,   then X_att is zoomed (bilinear) to the next scale's input size.

Here both steps are ordinary tensor operations on the whole batch (the mask by broadcasting, the zoom by
`sampling.sample_patches`, i.e. `affine_grid` + `grid_sample`), so autograd differentiates the result in the
box: through the mask (the paper's derivation) and through the sampling grid (the spatial-transformer
derivative). There is no per-sample loop and no hand-written backward (the released Caffe layer and the
PyTorch ports had both).

Boxes are given as centres (B, 2) x, y and half sizes (B,) (square) or (B, 2) (half width, half height) in
pixels of the image being cropped, origin at the top-left corner of the top-left pixel; pixel (i, j) has
its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from attention_models.sampling import sample_patches


def _half_xy(half_sizes: Tensor) -> Tensor:
    """(B,) or (B, 2) half sizes → (B, 2) half width, half height."""
    return half_sizes.unsqueeze(-1).expand(-1, 2) if half_sizes.dim() == 1 else half_sizes


def boxcar_mask(centres: Tensor, half_sizes: Tensor, height: int, width: int, steepness: float) -> Tensor:
    """The soft boxcar mask M of each box on an H×W pixel grid: (B, 1, H, W), values in (0, 1).

    `steepness` is the logistic's k in 1/pixels: the mask falls from 0.73 to 0.27 over 2/k pixels at an edge.
    """
    half = _half_xy(half_sizes)
    lo, hi = centres - half, centres + half  # (B, 2) each
    xs = torch.arange(width, device=centres.device, dtype=centres.dtype) + 0.5  # (W,)
    ys = torch.arange(height, device=centres.device, dtype=centres.dtype) + 0.5  # (H,)
    mx = torch.sigmoid(steepness * (xs - lo[:, :1])) - torch.sigmoid(steepness * (xs - hi[:, :1]))  # (B, W)
    my = torch.sigmoid(steepness * (ys - lo[:, 1:])) - torch.sigmoid(steepness * (ys - hi[:, 1:]))  # (B, H)
    return (my.unsqueeze(2) * mx.unsqueeze(1)).unsqueeze(1)  # (B, 1, H, W)


def attention_crop(
    images: Tensor, centres: Tensor, half_sizes: Tensor, out_size: int, steepness: float = 10.0
) -> Tensor:
    """Mask each image with its box's boxcar and zoom the box to out_size × out_size (bilinear).

    images: (B, C, H, W); centres: (B, 2) pixels; half_sizes: (B,) or (B, 2) pixels.
    Returns (B, C, out_size, out_size), differentiable in images, centres and half_sizes.
    """
    B, C, H, W = images.shape
    mask = boxcar_mask(centres, half_sizes, H, W, steepness)  # (B, 1, H, W)
    scale = centres.new_tensor([W / 2, H / 2])
    norm_centres = centres / scale - 1  # (B, 2) in [-1, 1]
    norm_half = _half_xy(half_sizes) / scale  # (B, 2)
    zoomed = sample_patches(images * mask.to(images.dtype), norm_centres.unsqueeze(1), norm_half.unsqueeze(1), out_size)
    return zoomed.squeeze(1)  # (B, C, out_size, out_size)


def boxes_xyxy(centres: Tensor, half_sizes: Tensor) -> Tensor:
    """Centres (..., 2) and half sizes (...) or (..., 2) → boxes (..., 4) x0, y0, x1, y1, same units."""
    half = torch.stack((half_sizes, half_sizes), dim=-1) if half_sizes.dim() == centres.dim() - 1 else half_sizes
    return torch.cat((centres - half, centres + half), dim=-1)


def compose_boxes(outer: Tensor, inner: Tensor, inner_size: int) -> Tensor:
    """Express `inner` (..., 4), in pixels of an inner_size × inner_size zoom of box `outer` (..., 4), in the
    coordinates `outer` is given in. Used to report every scale's box in original-image pixels."""
    scale_x = (outer[..., 2] - outer[..., 0]) / inner_size
    scale_y = (outer[..., 3] - outer[..., 1]) / inner_size
    return torch.stack(
        (
            outer[..., 0] + inner[..., 0] * scale_x,
            outer[..., 1] + inner[..., 1] * scale_y,
            outer[..., 0] + inner[..., 2] * scale_x,
            outer[..., 1] + inner[..., 3] * scale_y,
        ),
        dim=-1,
    )
