"""The glimpse sensor shared by RAM and DRAM, and their Gaussian location policy.

Retina rho(x, l) (Mnih et al. 2014): K square patches centred at l, the first G x G pixels, each next one
`scale_factor` times wider, every one resized to G x G. Locations are normalised image coordinates in
[-1, 1] (x right, y down; (0, 0) the image centre, (-1, -1) the top-left corner), the `F.affine_grid`
convention with `align_corners=False` that `sampling.py` uses.

Resizing is area averaging (a box filter, like OpenCV's INTER_AREA): each output pixel is the mean of the
image over its square cell of side scale_factor ** k pixels, with zeros outside the image. It is computed
exactly from the integral image J (J(x, y) = the sum of the pixels above and left of the pixel corner
(x, y)): J interpolated bilinearly between pixel corners is exactly the integral of the piecewise-constant
image, so a cell's mean is four bilinear reads of J, wherever the cell lies. Batched: the (G + 1)^2 cell
corners of all K scales are read in one `F.grid_sample` call for the whole batch, whatever the scale, so a
48 x 48 surround costs what a 12 x 12 patch does, and J is built once per episode of T glimpses. For pixel-aligned patches this is exactly "crop, then
average-pool" (the kevinzakka reference loop in tests/test_retina.py); the first scale is plain bilinear
sampling. J is built on the image minus its mean, in float32 (float64 for float64 images).

Letters: B batch, C channels, H/W image size, K retina scales, G patch size, P sample points.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from attention_models.base import Attention


class IntegralImage(NamedTuple):
    """Integral image of (B, C, H, W) images minus their per-channel mean (B, C, 1, 1): the table is
    (B, C, H+1, W+1) at the pixel corners. Subtracting the mean keeps the running sums small, so float32
    tables stay accurate (~1e-6) on large bright images. With it, the retina's geometry in the table's
    normalised coordinates and dtype, which depends on H and W but not on the glimpse, so an episode
    computes it once, not per glimpse: offsets (P, 2) of the cell corners from the centre, corner_x /
    corner_y (K, G+1) their columns and rows, and cell_area (K, 1, 1) in px^2."""

    table: Tensor
    mean: Tensor
    offsets: Tensor
    corner_x: Tensor
    corner_y: Tensor
    cell_area: Tensor


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
        sides = torch.tensor([G * scale_factor**k for k in range(num_scales)], dtype=torch.float64)  # (K,) px
        # Cell corners of each scale relative to the centre, in pixels: (K, G+1, G+1, 2) -> (P, 2), row-major.
        u = torch.linspace(-0.5, 0.5, G + 1, dtype=torch.float64)
        yy, xx = torch.meshgrid(u, u, indexing="ij")
        corners = torch.stack((xx, yy), dim=-1) * sides.view(-1, 1, 1, 1)  # (K, G+1, G+1, 2)
        # Constants as buffers so .to(device) moves them with the model; kept in float64, cast by `integral`.
        self.register_buffer("corners_px", corners.reshape(-1, 2), persistent=False)  # (P, 2)
        self.register_buffer("sides_px", sides, persistent=False)  # (K,)

    def _apply(self, fn, recurse=True):
        # Keep the geometry buffers in float64 when the model is cast (model.half(), .to(bf16)).
        super()._apply(fn, recurse)
        for name in ("corners_px", "sides_px"):
            buf = getattr(self, name)
            if buf.dtype != torch.float64:
                setattr(self, name, buf.to(torch.float64))
        return self

    @property
    def feature_size(self) -> int:
        """Values per channel in one glimpse: K * G * G."""
        return self.num_scales * self.patch_size**2

    def forward(self, images: Tensor, locations: Tensor) -> Tensor:
        """One glimpse per image. Episodes of T glimpses on the same images should call `integral` once
        and `read` per glimpse instead: the integral image is the only part that costs O(H * W)."""
        return self.read(self.integral(images), locations).to(images.dtype)

    def integral(self, images: Tensor) -> IntegralImage:
        """(B, C, H, W) -> the integral image of images minus their per-channel mean, (B, C, H+1, W+1), and
        the retina's geometry for images of that size."""
        with torch.autocast(images.device.type, enabled=False):
            x = images if images.dtype == torch.float64 else images.float()
            mean = x.mean(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
            # In place in one (H+1, W+1) buffer: no padded copy, no intermediates (~20 % of the call).
            B, C, H, W = x.shape
            table = x.new_zeros(B, C, H + 1, W + 1)
            table[..., 1:, 1:].copy_(x).sub_(mean)
            table.cumsum_(dim=-1).cumsum_(dim=-2)
            G, K = self.patch_size, self.num_scales
            # Pixels to normalised units on the (H+1, W+1) table with align_corners=True (see `read`).
            offsets = self.corners_px.to(x.dtype) * x.new_tensor([2.0 / W, 2.0 / H])  # (P, 2)
            corners = offsets.view(K, G + 1, G + 1, 2)
            area = (self.sides_px.to(x.dtype) / G) ** 2  # (K,) px^2 per cell
        return IntegralImage(table, mean, offsets, corners[:, 0, :, 0], corners[:, :, 0, 1], area.view(K, 1, 1))

    def read(self, integral: IntegralImage, locations: Tensor) -> Tensor:
        """IntegralImage of (B, C, H, W) images, locations (B, 2) -> patches (B, K, C, G, G), in the
        integral's dtype (float32, or float64 for float64 images)."""
        table, mean, offsets, corner_x, corner_y, cell_area = integral
        B, C, H1, W1 = table.shape
        W, H = W1 - 1, H1 - 1
        G, K = self.patch_size, self.num_scales
        with torch.autocast(table.device.type, enabled=False):
            # align_corners=True on the (H+1, W+1) table: normalised -1 / +1 are pixel corners 0 / W, so a
            # location l is itself the grid coordinate of the patch centre. "border" repeats the table's
            # last row and column outside, which is exactly zero padding of (image - mean).
            loc = locations.to(table.dtype)
            grid = loc.unsqueeze(1) + offsets  # (B, P, 2)
            J = F.grid_sample(table, grid.unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=True)
            J = J.view(B, C, K, G + 1, G + 1)
            cell_sums = J.diff(dim=-1).diff(dim=-2)  # (B, C, K, G, G): the four corners of each cell
            # Add the mean back over the part of each cell inside the image (outside reads zero): the
            # clamped corner columns and rows of each scale, (B, K, G + 1), not the whole (B, P, 2) grid.
            width = (loc[:, 0, None, None] + corner_x).clamp(-1.0, 1.0).diff(dim=-1) * (W / 2)  # (B, K, G) px
            height = (loc[:, 1, None, None] + corner_y).clamp(-1.0, 1.0).diff(dim=-1) * (H / 2)  # (B, K, G) px
            inside = (height.unsqueeze(-1) * width.unsqueeze(-2)).unsqueeze(1)  # (B, 1, K, G, G) px^2
            cells = torch.addcmul(cell_sums, mean.unsqueeze(-1), inside)
            return (cells / cell_area).transpose(1, 2)  # (B, K, C, G, G)

    def boxes(self, locations: Tensor, height: int, width: int) -> Tensor:
        """(..., 2) normalised centres -> (..., K, 4) pixel boxes x0, y0, x1, y1 of the K patches."""
        scale = locations.new_tensor([width / 2, height / 2])
        centre_px = (locations.unsqueeze(-2) + 1) * scale  # (..., 1, 2)
        half = (self.sides_px.to(locations.dtype) / 2).unsqueeze(-1)  # (K, 1)
        return torch.cat((centre_px - half, centre_px + half), dim=-1)  # (..., K, 4)


def shrink_last_linear(module: nn.Module, scale: float = 0.01) -> None:
    """Start a location policy at the image centre: its last Linear gets `scale` x its default weights and
    a zero bias. Otherwise the mean is a random projection of the core state, and as classification
    training grows that state the glimpses scatter away from the objects faster than REINFORCE (a weak,
    noisy signal) can steer them back. Not zero, so a hidden layer before it still gets gradient."""
    last = [m for m in module.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.zero_()


class _Scaled(nn.Module):
    """Parametrisation w = scale * w_stored (see `scale_step_size`)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, stored: Tensor) -> Tensor:
        return stored * self.scale

    def right_inverse(self, value: Tensor) -> Tensor:
        return value / self.scale


def scale_step_size(module: nn.Module, scale: float) -> None:
    """Store every parameter w of `module` as w / scale and compute w = scale * stored: the same function,
    but a step of the optimiser moves w `scale` times as far (Adam; `scale ** 2` under plain SGD). Unlike
    a smaller gradient, this holds under Adam, which normalises gradient size away. Uses
    torch.nn.utils.parametrize: state-dict keys become `<sub>.parametrizations.<name>.original`, and the
    model is saved through its state_dict (as every checkpoint here is), not pickled whole."""
    if scale == 1.0:
        return
    for sub in list(module.modules()):
        for name, _ in list(sub.named_parameters(recurse=False)):
            parametrize.register_parametrization(sub, name, _Scaled(scale))


def gaussian_location(
    mean: Tensor, std: float, sample: bool, generator: torch.Generator | None = None, noise: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Sample l ~ N(mean, std^2 I) (or take the mean) and return (location, log_pi).

    mean: (B, 2) in [-1, 1]. The sample is drawn without gradient; log_pi (B,) is the log-density of the
    raw sample, differentiable in `mean` only (REINFORCE). The location used for the glimpse is the sample
    clamped to the image [-1, 1]^2, a deterministic function of the sample, so the estimator stays unbiased.
    `noise` (B, 2), standard normal, replaces the draw: the sample is then mean + std * noise, which is how
    an exported graph samples (its caller draws the noise; the graph holds no random op).
    """
    mean = mean.float()  # the policy in fp32 even under bf16 autocast: log-densities of tiny stds
    if noise is not None:
        raw = (mean + std * noise.to(mean.dtype)).detach()
    elif sample:
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


def check_path_noise(noise: Tensor | None, first_locations: Tensor | None, batch: int, steps: int) -> None:
    """Raise unless given path noise has the shapes an episode of `steps` glimpses on `batch` images reads:
    noise (batch, steps, 2) standard normal, first_locations (batch, 2) in [-1, 1]."""
    for name, value, shape in (("noise", noise, (batch, steps, 2)), ("first_locations", first_locations, (batch, 2))):
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(value.shape)}")


def repeat_paths(samples: int, noise: Tensor | None, first_locations: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Per-image path noise of M = `samples` paths, noise (B, M, T, 2) and first_locations (B, M, 2), as the
    (B * M, ...) batch of `images.repeat_interleave(M)` (each image's M paths adjacent)."""
    for name, value in (("noise", noise), ("first_locations", first_locations)):
        if value is not None and (value.dim() < 2 or value.shape[1] != samples):
            raise ValueError(f"{name}: expected {samples} paths per image in dim 1, got shape {tuple(value.shape)}")
    flat = lambda v: None if v is None else v.flatten(0, 1)  # noqa: E731
    return flat(noise), flat(first_locations)


def monte_carlo_average(out: Any, M: int) -> Any:
    """Fold an episode output over B * M repeated images (each image's M paths adjacent) back to B:
    logits become the log of the path-averaged probabilities, every other field is the first path's."""
    first = slice(None, None, M)
    return dataclasses.replace(
        out,
        logits=average_paths(out.logits, M),
        locations=out.locations[first],
        location_means=out.location_means[first],
        log_pi=out.log_pi[first],
        baselines=out.baselines[first],
        attention=Attention(out.attention.boxes[first], kind=out.attention.kind),
    )
