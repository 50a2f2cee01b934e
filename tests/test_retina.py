"""The batched retina against naive per-sample references (the only place such loops are allowed)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from attention_models.retina import Retina, average_paths, gaussian_location, scale_step_size

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def crop_and_pool_reference(images, locations, G, K, factor):
    """kevinzakka-style retina: per sample, per scale, slice an S x S crop out of the zero-padded image and
    average-pool it to G x G. Needs an integer factor and pixel-aligned patches."""
    B, C, H, W = images.shape
    out = images.new_zeros(B, K, C, G, G)
    pad = 2 * G * factor ** (K - 1)
    for b in range(B):
        cx = (locations[b, 0].item() + 1) / 2 * W
        cy = (locations[b, 1].item() + 1) / 2 * H
        padded = F.pad(images[b], (pad, pad, pad, pad))
        for k in range(K):
            S = G * factor**k
            x0, y0 = round(cx - S / 2) + pad, round(cy - S / 2) + pad
            crop = padded[:, y0 : y0 + S, x0 : x0 + S]
            out[b, k] = F.avg_pool2d(crop.unsqueeze(0), factor**k).squeeze(0)
    return out


def area_reference(images, locations, G, K, factor):
    """Per sample, scale and output pixel: the mean of the zero-padded image over the pixel's square cell,
    weighting every image pixel by the area it shares with the cell (computed separably per axis)."""
    B, C, H, W = images.shape
    out = images.new_zeros(B, K, C, G, G)

    def shares(start: float, cell: float, n: int) -> torch.Tensor:  # (G, n) overlap of cells and pixels
        w = torch.zeros(G, n, dtype=images.dtype)
        for g in range(G):
            a, b = start + g * cell, start + (g + 1) * cell
            for p in range(max(0, math.floor(a)), min(n, math.ceil(b))):
                w[g, p] = min(b, p + 1) - max(a, p)
        return w / cell

    for b in range(B):
        cx = (locations[b, 0].item() + 1) / 2 * W
        cy = (locations[b, 1].item() + 1) / 2 * H
        for k in range(K):
            side = G * factor**k
            wy = shares(cy - side / 2, side / G, H)
            wx = shares(cx - side / 2, side / G, W)
            out[b, k] = wy @ images[b] @ wx.T
    return out


@pytest.mark.parametrize("G,K,factor,C,H,W", [(8, 1, 2, 1, 28, 28), (4, 3, 2, 3, 20, 30), (2, 4, 2, 1, 16, 16)])
def test_pixel_aligned_equals_crop_and_pool(G, K, factor, C, H, W):
    g = torch.Generator().manual_seed(0)
    B = 6
    images = torch.rand(B, C, H, W, generator=g, dtype=torch.float64)
    # Integer pixel corners as centres (patch sides are even), including ones far outside the image.
    S = G * factor ** (K - 1)
    cx = torch.randint(-S // 2, W + S // 2 + 1, (B,), generator=g)
    cy = torch.randint(-S // 2, H + S // 2 + 1, (B,), generator=g)
    locations = torch.stack((2 * cx.double() / W - 1, 2 * cy.double() / H - 1), dim=1)
    retina = Retina(G, K, factor).double()
    got = retina(images, locations)
    want = crop_and_pool_reference(images, locations, G, K, factor)
    assert got.shape == (B, K, C, G, G)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("factor", [2.0, 1.5, 3.0])
def test_any_location_equals_area_reference(factor):
    g = torch.Generator().manual_seed(1)
    B, C, H, W, G, K = 5, 2, 24, 18, 4, 3
    images = torch.rand(B, C, H, W, generator=g, dtype=torch.float64)
    locations = torch.rand(B, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2
    retina = Retina(G, K, factor).double()
    torch.testing.assert_close(
        retina(images, locations), area_reference(images, locations, G, K, factor), atol=1e-10, rtol=0
    )


def test_first_scale_is_bilinear_sampling():
    # Area-averaging 1-pixel cells is bilinear interpolation at their centres: grid_sample's answer.
    images = torch.rand(3, 2, 20, 24, dtype=torch.float64)
    locations = torch.rand(3, 2, dtype=torch.float64) * 2.2 - 1.1
    G = 6
    u = (torch.arange(G, dtype=torch.float64) + 0.5) - G / 2  # cell centres relative to the patch centre, px
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    grid = locations.view(3, 1, 1, 2) + torch.stack((xx * 2 / 24, yy * 2 / 20), dim=-1)
    want = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(Retina(G, 2, 2.0).double()(images, locations)[:, 0], want)


def test_integral_once_then_read_per_glimpse():
    retina = Retina(4, 3, 2.0)
    images = torch.rand(2, 1, 30, 30)
    J = retina.integral(images)
    for loc in (torch.zeros(2, 2), torch.tensor([[0.5, -0.3], [-1.0, 1.0]])):
        torch.testing.assert_close(retina.read(J, loc).float(), retina(images, loc))
    # Half precision models keep the geometry buffers in float64.
    assert retina.half().corners_px.dtype == torch.float64


def test_wide_patches_are_averaged_not_aliased():
    # A one-pixel checkerboard: any proper downsizing of a 4x wider patch is grey, point sampling is not.
    H = W = 64
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    board = ((yy + xx) % 2).float().view(1, 1, H, W)
    out = Retina(8, 3, 2.0)(board, torch.tensor([[0.013, -0.021]]))
    assert (out[0, 1:] - 0.5).abs().max() < 0.05
    # The constant image keeps its value inside the image and reads zero far outside.
    ones = torch.ones(1, 1, H, W)
    inside = Retina(8, 3, 2.0)(ones, torch.zeros(1, 2))
    torch.testing.assert_close(inside, torch.ones_like(inside))
    outside = Retina(8, 1, 2.0)(ones, torch.tensor([[3.0, 3.0]]))
    assert outside.abs().max() == 0


def test_boxes_in_pixels():
    retina = Retina(12, 3, 2.0)
    boxes = retina.boxes(torch.tensor([[[0.0, 0.0], [-1.0, 0.5]]]), 60, 60)  # (1, 2, 3, 4)
    assert boxes.shape == (1, 2, 3, 4)
    torch.testing.assert_close(boxes[0, 0, 0], torch.tensor([24.0, 24.0, 36.0, 36.0]))
    torch.testing.assert_close(boxes[0, 0, 2], torch.tensor([6.0, 6.0, 54.0, 54.0]))
    torch.testing.assert_close(boxes[0, 1, 1], torch.tensor([-12.0, 33.0, 12.0, 57.0]))


def test_location_policy_gradient_and_clamp():
    mean = torch.tensor([[0.95, 0.0]], requires_grad=True)
    loc, log_pi = gaussian_location(mean, std=0.5, sample=True, generator=torch.Generator().manual_seed(3))
    assert loc.abs().max() <= 1 and not loc.requires_grad
    log_pi.sum().backward()
    assert mean.grad is not None and mean.grad.abs().sum() > 0
    # The log-density is the Normal's on the raw sample.
    loc_mean, log_pi_mean = gaussian_location(mean, std=0.5, sample=False)
    torch.testing.assert_close(log_pi_mean, torch.distributions.Normal(0.0, 0.5).log_prob(torch.zeros(2)).sum().view(1))


def test_average_paths_is_log_mean_probability():
    logits = torch.randn(6, 4)  # B = 2 images, M = 3 paths each, interleaved
    avg = average_paths(logits, 3)
    want = logits.softmax(-1).view(2, 3, 4).mean(1).log()
    torch.testing.assert_close(avg, want)


def test_scale_step_size_keeps_the_function_and_scales_adam_steps():
    torch.manual_seed(0)
    plain = torch.nn.LSTMCell(4, 3)
    scaled = copy.deepcopy(plain)
    scale_step_size(scaled, 0.1)
    x = torch.randn(5, 4)
    torch.testing.assert_close(scaled(x)[0], plain(x)[0])
    before = plain.weight_ih.detach().clone()
    for net in (plain, scaled):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        net(x)[0].square().sum().backward()
        opt.step()
    # Adam's step ignores the gradient's size: only the reparametrisation can make it smaller.
    torch.testing.assert_close(scaled.weight_ih.detach() - before, 0.1 * (plain.weight_ih.detach() - before), rtol=1e-3, atol=1e-7)
    assert (plain.weight_ih.detach() - before).abs().max() > 5e-3
    clone = torch.nn.LSTMCell(4, 3)
    scale_step_size(clone, 0.1)
    clone.load_state_dict(scaled.state_dict())  # checkpoints round-trip through the stored parameters
    torch.testing.assert_close(clone(x)[0], scaled(x)[0])
