"""Batched augmentation against a per-sample reference; boxes stay on the pixels they enclose."""

import numpy as np
import pytest
import torch

from jobs.data.augment import augment, random_crop, random_hflip, random_shift
from jobs.data.samples import ink_boxes


def _batch(B: int = 6, H: int = 20, W: int = 24) -> dict:
    """Images with one lit rectangle each, and that rectangle as the box (plus a NaN padding box)."""
    g = np.random.default_rng(0)
    images = torch.zeros(B, 3, H, W)
    boxes = torch.full((B, 2, 4), float("nan"))
    for i in range(B):
        x0, y0 = g.integers(0, W - 6), g.integers(0, H - 6)
        w, h = g.integers(2, 6), g.integers(2, 6)
        images[i, :, y0 : y0 + h, x0 : x0 + w] = torch.rand(3, h, w) + 0.1
        boxes[i, 0] = torch.tensor([x0, y0, x0 + w, y0 + h], dtype=torch.float32)
    return {"image": images, "label": torch.arange(B), "boxes": boxes}


def _ink(images: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(ink_boxes(images.permute(0, 2, 3, 1).numpy()))


def test_hflip_mirrors_some_samples_and_their_boxes():
    batch = _batch()
    out = random_hflip(batch, torch.Generator().manual_seed(1))
    flipped = [i for i in range(6) if not torch.equal(out["image"][i], batch["image"][i])]
    assert 0 < len(flipped) < 6  # p = 0.5 over 6 samples with this seed
    for i in range(6):  # the per-sample reference
        want = batch["image"][i].flip(-1) if i in flipped else batch["image"][i]
        assert torch.equal(out["image"][i], want)
    torch.testing.assert_close(out["boxes"][:, 0], _ink(out["image"]))  # the box still encloses the ink
    assert out["boxes"][:, 1].isnan().all() and torch.equal(out["label"], batch["label"])
    assert not torch.equal(batch["image"], out["image"])  # the input batch is left as it was
    torch.testing.assert_close(batch["boxes"][:, 0], _ink(batch["image"]))


def test_hflip_refuses_sequences():
    batch = {**_batch(), "sequence": torch.zeros(6, 3, dtype=torch.long)}
    with pytest.raises(ValueError, match="augment.hflip"):
        random_hflip(batch, torch.Generator().manual_seed(0))


def test_shift_moves_pixels_exactly_and_boxes_with_them():
    batch = _batch()
    out = random_shift(batch, torch.Generator().manual_seed(3), max_shift=3)
    shift = torch.randint(-3, 4, (6, 2), generator=torch.Generator().manual_seed(3))
    for i in range(6):  # reference: place the image at (dx, dy) on a zero canvas, one sample at a time
        dx, dy = shift[i].tolist()
        want = torch.zeros_like(batch["image"][i])
        src = batch["image"][i]
        H, W = src.shape[1:]
        want[:, max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = src[
            :, max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)
        ]
        assert torch.equal(out["image"][i], want), i
    torch.testing.assert_close(out["boxes"][:, 0], _ink(out["image"]))  # clipped where a shift cut the ink
    assert out["boxes"][:, 1].isnan().all()


def test_a_box_pushed_out_becomes_missing_and_zero_shift_is_identity():
    batch = _batch(B=1)
    batch["image"].zero_()
    batch["image"][0, :, 0:2, 0:2] = 1.0
    batch["boxes"][0, 0] = torch.tensor([0.0, 0.0, 2.0, 2.0])
    outs = [random_shift(batch, torch.Generator().manual_seed(s), max_shift=4) for s in range(40)]
    assert any(o["boxes"][0, 0].isnan().all() and o["image"].sum() == 0 for o in outs)
    assert random_shift(batch, torch.Generator(), max_shift=0) is batch
    with pytest.raises(ValueError, match="augment.max_shift"):
        random_shift(batch, torch.Generator(), max_shift=-1)


def _bilinear_reference(src: torch.Tensor, f: float, ox: float, oy: float) -> torch.Tensor:
    """src (C, H, W): the window of side fraction f at pixel offset (ox, oy), zoomed to H x W, one output
    pixel at a time: output pixel centre x + 0.5 reads input ox + f (x + 0.5), bilinear, edges clamped."""
    C, H, W = src.shape
    out = torch.zeros_like(src)
    for y in range(H):
        for x in range(W):
            u, v = ox + f * (x + 0.5) - 0.5, oy + f * (y + 0.5) - 0.5  # input pixel coordinates
            x0, y0 = int(np.floor(u)), int(np.floor(v))
            a, b = u - x0, v - y0
            for dy, wy in ((0, 1 - b), (1, b)):
                for dx, wx in ((0, 1 - a), (1, a)):
                    out[:, y, x] += wy * wx * src[:, min(max(y0 + dy, 0), H - 1), min(max(x0 + dx, 0), W - 1)]
    return out


def test_crop_zooms_each_window_like_a_per_sample_reference_and_boxes_follow():
    batch = _batch()
    out = random_crop(batch, torch.Generator().manual_seed(5), min_side=0.6)
    g = torch.Generator().manual_seed(5)  # the same draws, in the same order
    f = 0.6 + 0.4 * torch.rand(6, generator=g)
    corner = (1 - f).unsqueeze(1) * torch.rand(6, 2, generator=g)
    H, W = batch["image"].shape[2:]
    assert (f < 0.99).all()
    for i in range(6):
        ox, oy = corner[i, 0].item() * W, corner[i, 1].item() * H
        want = _bilinear_reference(batch["image"][i], f[i].item(), ox, oy)
        torch.testing.assert_close(out["image"][i], want, atol=1e-5, rtol=1e-5)
        box = batch["boxes"][i, 0]
        moved = ((box - torch.tensor([ox, oy, ox, oy])) / f[i]).clamp(min=0)
        moved = torch.minimum(moved, torch.tensor([W, H, W, H], dtype=torch.float32))
        if (moved[2:] > moved[:2]).all():
            torch.testing.assert_close(out["boxes"][i, 0], moved)
            # the lit pixels lie within the moved box, give or take the one pixel that bilinear blends in
            ink = _ink(out["image"][i : i + 1])[0]
            assert (ink[:2] >= moved[:2] - 1.01).all() and (ink[2:] <= moved[2:] + 1.01).all(), (i, ink, moved)
        else:
            assert out["boxes"][i, 0].isnan().all()
    assert out["boxes"][:, 1].isnan().all() and torch.equal(out["label"], batch["label"])


def test_crop_of_the_whole_image_is_identity_and_bad_fractions_are_refused():
    batch = _batch()
    assert random_crop(batch, torch.Generator(), min_side=1.0) is batch
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="augment.min_crop"):
            random_crop(batch, torch.Generator(), min_side=bad)


def test_augment_composes_and_keeps_shapes_and_dtype():
    batch = _batch()
    out = augment(batch, torch.Generator().manual_seed(0), hflip=True, max_shift=2)
    assert out["image"].shape == batch["image"].shape and out["image"].dtype == batch["image"].dtype
    torch.testing.assert_close(out["boxes"][:, 0], _ink(out["image"]))
    cropped = augment(batch, torch.Generator().manual_seed(0), hflip=True, max_shift=2, min_crop=0.7)
    assert cropped["image"].shape == batch["image"].shape and not torch.equal(cropped["image"], out["image"])
