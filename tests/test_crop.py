"""The RA-CNN attention crop: parity with a naive per-sample reference, exactness, gradients in the box."""

from __future__ import annotations

import math

import pytest
import torch

from attention_models.crop import attention_crop, boxcar_mask, boxes_xyxy, compose_boxes


def naive_crop(images, centres, half_sizes, out_size, k):
    """Reference: per sample, per output pixel, the paper's mask and a hand-written bilinear read (zeros outside)."""
    B, C, H, W = images.shape
    out = torch.zeros(B, C, out_size, out_size, dtype=images.dtype)
    for b in range(B):
        cx, cy = float(centres[b, 0]), float(centres[b, 1])
        hx, hy = (float(half_sizes[b]),) * 2 if half_sizes.dim() == 1 else map(float, half_sizes[b])
        x0, x1, y0, y1 = cx - hx, cx + hx, cy - hy, cy + hy

        def s(z):
            return 1 / (1 + math.exp(-k * z))

        masked = images[b].clone()
        for i in range(H):
            for j in range(W):
                x, y = j + 0.5, i + 0.5
                masked[:, i, j] *= (s(x - x0) - s(x - x1)) * (s(y - y0) - s(y - y1))

        def pixel(i, j, masked=masked):
            return masked[:, i, j] if 0 <= i < H and 0 <= j < W else torch.zeros(C, dtype=images.dtype)

        for oi in range(out_size):
            for oj in range(out_size):
                # Output pixel centre → source point in pixel-index units (pixel (i, j) centred at (j, i)).
                u = x0 + (oj + 0.5) * (x1 - x0) / out_size - 0.5
                v = y0 + (oi + 0.5) * (y1 - y0) / out_size - 0.5
                j0, i0 = math.floor(u), math.floor(v)
                a, c = u - j0, v - i0
                out[b, :, oi, oj] = (
                    (1 - a) * (1 - c) * pixel(i0, j0)
                    + a * (1 - c) * pixel(i0, j0 + 1)
                    + (1 - a) * c * pixel(i0 + 1, j0)
                    + a * c * pixel(i0 + 1, j0 + 1)
                )
    return out


@pytest.mark.parametrize("square", [True, False])
def test_crop_matches_naive_reference(square):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 2, 13, 17, generator=g, dtype=torch.float64)
    centres = torch.tensor([[8.3, 6.1], [3.0, 9.7], [15.2, 2.4]], dtype=torch.float64)  # last one pokes outside
    half = torch.tensor([4.2, 2.6, 5.5], dtype=torch.float64)
    if not square:
        half = torch.stack((half, half.flip(0)), dim=1)
    for k in (0.7, 10.0):
        got = attention_crop(images, centres, half, 7, steepness=k)
        assert got.shape == (3, 2, 7, 7)
        torch.testing.assert_close(got, naive_crop(images, centres, half, 7, k), atol=1e-10, rtol=1e-8)


def test_steep_mask_on_pixel_edges_is_an_exact_crop():
    images = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    # Box columns 5..12, rows 3..10 (8×8): zooming to 8×8 reads each pixel centre exactly.
    centres = torch.tensor([[9.0, 7.0], [9.0, 7.0]], dtype=torch.float64)
    half = torch.tensor([4.0, 4.0], dtype=torch.float64)
    got = attention_crop(images, centres, half, 8, steepness=200.0)
    torch.testing.assert_close(got, images[:, :, 3:11, 5:13])


def test_mask_is_one_inside_zero_outside():
    m = boxcar_mask(torch.tensor([[10.0, 10.0]]), torch.tensor([5.0]), 20, 20, steepness=10.0)
    assert m.shape == (1, 1, 20, 20)
    assert m[0, 0, 10, 10] > 0.999 and m[0, 0, 1, 1] < 1e-3 and m[0, 0, 10, 18] < 1e-3


def test_gradient_reaches_tx_ty_tl_and_matches_finite_differences():
    images = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    centres = torch.tensor([[5.3, 6.6], [7.1, 4.4]], dtype=torch.float64, requires_grad=True)
    half = torch.tensor([3.3, 2.7], dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    (attention_crop(images, centres, half, 6, steepness=2.0) * weights).sum().backward()
    assert centres.grad.abs().min() > 0 and half.grad.abs().min() > 0  # every tx, ty, tl moves the crop
    assert torch.autograd.gradcheck(
        lambda c, h: attention_crop(images, c, h, 6, steepness=2.0),
        (centres.detach().requires_grad_(), half.detach().requires_grad_()),
    )


def test_crop_is_batched_without_python_loops_over_samples():
    # Same result one sample at a time and all at once, so nothing couples the samples.
    images = torch.rand(4, 3, 16, 16)
    centres = torch.rand(4, 2) * 10 + 3
    half = torch.rand(4) * 3 + 2
    whole = attention_crop(images, centres, half, 9)
    for b in range(4):
        torch.testing.assert_close(whole[b : b + 1], attention_crop(images[b : b + 1], centres[b : b + 1], half[b : b + 1], 9))


def test_compose_boxes_maps_inner_box_to_outer_pixels():
    outer = torch.tensor([[10.0, 20.0, 50.0, 40.0]])  # 40 × 20 region shown as a 10 × 10 zoom
    inner = boxes_xyxy(torch.tensor([[5.0, 5.0]]), torch.tensor([2.5]))  # 2.5..7.5 in the zoom
    torch.testing.assert_close(compose_boxes(outer, inner, 10), torch.tensor([[20.0, 25.0, 40.0, 35.0]]))
