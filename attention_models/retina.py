"""The glimpse sensor shared by RAM and DRAM, and their Gaussian location policy.

Retina rho(x, l) (Mnih et al. 2014): K square patches centred at l, the first G x G pixels, each next one
`scale_factor` times wider, every one resized to G x G. Locations are normalised image coordinates in
[-1, 1] (x right, y down; (0, 0) the image centre, (-1, -1) the top-left corner), the `F.affine_grid`
convention with `align_corners=False` that `sampling.py` uses.

Batched: the sample points of all K scales are laid side by side in one grid, read with a single
`F.grid_sample` call for the whole batch (zeros outside the image), and each scale is then box-filtered
(average-pooled) down to G x G. Patch k is sampled at r_k = ceil(scale_factor ** k) points per output pixel
and axis, i.e. at (at least) full image resolution, so the resize averages pixels instead of aliasing;
for pixel-aligned centres and an integer factor this is exactly "crop, then average-pool", the reference
loop in tests/test_retina.py.

Letters: B batch, C channels, H/W image size, K retina scales, G patch size, P sample points.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Retina(nn.Module):
    """Batched multi-resolution glimpse sensor.

    forward(images (B, C, H, W), locations (B, 2)) -> (B, K, C, G, G)
    boxes(locations (..., 2), H, W) -> (..., K, 4) x0, y0, x1, y1 of every patch in pixels.
    """

    def __init__(self, patch_size: int, num_scales: int, scale_factor: float):
        super().__init__()
        self.patch_size = patch_size
        self.num_scales = num_scales
        self.scale_factor = scale_factor
        G = patch_size
        sides, supersample, offsets = [], [], []
        for k in range(num_scales):
            side = G * scale_factor**k  # patch width in image pixels
            r = math.ceil(scale_factor**k - 1e-9)  # sample points per output pixel along each axis
            n = G * r
            # Cell centres of an n x n lattice covering [-side/2, side/2]^2 pixels, row-major (y, then x).
            u = (torch.arange(n, dtype=torch.float64) + 0.5) / n * side - side / 2
            yy, xx = torch.meshgrid(u, u, indexing="ij")
            offsets.append(torch.stack((xx, yy), dim=-1).reshape(n * n, 2))
            sides.append(side)
            supersample.append(r)
        self.supersample = tuple(supersample)
        # Constants as buffers so .to(device/dtype) moves them with the model.
        self.register_buffer("offsets_px", torch.cat(offsets).float(), persistent=False)  # (P, 2)
        self.register_buffer("sides_px", torch.tensor(sides, dtype=torch.float32), persistent=False)  # (K,)

    @property
    def feature_size(self) -> int:
        """Values per channel in one glimpse: K * G * G."""
        return self.num_scales * self.patch_size**2

    def forward(self, images: Tensor, locations: Tensor) -> Tensor:
        B, C, H, W = images.shape
        G = self.patch_size
        to_normalised = images.new_tensor([2.0 / W, 2.0 / H])
        offsets = self.offsets_px.to(images.dtype) * to_normalised  # (P, 2)
        grid = locations.to(images.dtype).unsqueeze(1) + offsets.unsqueeze(0)  # (B, P, 2)
        samples = F.grid_sample(
            images, grid.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (B, C, 1, P)
        samples = samples.flatten(2)  # (B, C, P)
        patches, start = [], 0
        for r in self.supersample:  # K slices of one tensor, not a loop over samples
            n = G * r
            block = samples[:, :, start : start + n * n].reshape(B, C, G, r, G, r)
            patches.append(block.mean(dim=(3, 5)))  # (B, C, G, G): box filter r x r -> 1
            start += n * n
        return torch.stack(patches, dim=1)  # (B, K, C, G, G)

    def boxes(self, locations: Tensor, height: int, width: int) -> Tensor:
        """(..., 2) normalised centres -> (..., K, 4) pixel boxes x0, y0, x1, y1 of the K patches."""
        scale = locations.new_tensor([width / 2, height / 2])
        centre_px = (locations.unsqueeze(-2) + 1) * scale  # (..., 1, 2)
        half = (self.sides_px.to(locations.dtype) / 2).unsqueeze(-1)  # (K, 1)
        return torch.cat((centre_px - half, centre_px + half), dim=-1)  # (..., K, 4)


def gaussian_location(
    mean: Tensor, std: float, sample: bool, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Sample l ~ N(mean, std^2 I) (or take the mean) and return (location, log_pi).

    mean: (B, 2) in [-1, 1]. The sample is drawn without gradient; log_pi (B,) is the log-density of the
    raw sample, differentiable in `mean` only (REINFORCE). The location used for the glimpse is the sample
    clamped to the image [-1, 1]^2, a deterministic function of the sample, so the estimator stays unbiased.
    """
    mean = mean.float()  # the policy in fp32 even under bf16 autocast: log-densities of tiny stds
    if sample:
        noise = torch.empty_like(mean).normal_(generator=generator)
        raw = (mean + std * noise).detach()
    else:
        raw = mean.detach()
    log_pi = (-((raw - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
    return raw.clamp(-1.0, 1.0), log_pi


def uniform_location(like: Tensor, batch: int, generator: torch.Generator | None = None) -> Tensor:
    """(batch, 2) locations uniform in [-1, 1]^2, fp32 on `like`'s device (the paper's random first glimpse)."""
    return like.new_empty(batch, 2, dtype=torch.float32).uniform_(-1.0, 1.0, generator=generator)


def average_paths(logits: Tensor, samples: int) -> Tensor:
    """Monte Carlo average over glimpse paths: logits (B * M, ...) from `repeat_interleave(M)`-ed images
    -> (B, ...) log of the mean class probability over the M paths (a valid logits tensor)."""
    BM = logits.shape[0]
    log_p = logits.float().log_softmax(dim=-1).reshape(BM // samples, samples, *logits.shape[1:])
    return log_p.logsumexp(dim=1) - math.log(samples)
