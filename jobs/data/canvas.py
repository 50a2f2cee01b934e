"""Batched drawing of digits onto canvases: the building blocks of the digit recipes.

Every function works on a whole chunk of canvases at once with numpy fancy indexing; Python loops run
only over a handful of objects or clutter pieces per canvas, never over samples.

Letters: N canvases, S canvas side, P pool size, D digit side, C channels, K objects per canvas,
Q side of a clutter piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .samples import ink_boxes


@dataclass
class DigitPool:
    """The source digits a split draws from.

    images: uint8 (P, D, D, C). labels: int64 (P,). boxes: float32 (P, 4) tight ink box of each digit
    inside its own D x D frame (NaN for a blank digit).
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> DigitPool:
        """images (P, H, W) or (P, H, W, C) uint8, labels (P,)."""
        if images.ndim == 3:
            images = images[..., None]
        if len(images) == 0:
            raise ValueError("digit source: no digits in this split")
        return cls(np.ascontiguousarray(images), labels.astype(np.int64), ink_boxes(images))

    @property
    def side(self) -> int:
        return self.images.shape[1]

    @property
    def channels(self) -> int:
        return self.images.shape[3]

    def __len__(self) -> int:
        return len(self.images)


def cycle_picks(pool_size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` pool indices: shuffled passes over the whole pool, so every digit is used about equally.

    Returns int64 (count,).
    """
    passes = -(-count // pool_size)
    return np.concatenate([rng.permutation(pool_size) for _ in range(passes)])[:count]


def paste(
    canvas: np.ndarray, patches: np.ndarray, ys: np.ndarray, xs: np.ndarray, index: np.ndarray | None = None
) -> None:
    """Draw patches onto canvases in place, keeping the brighter pixel where they overlap.

    canvas: uint8 (N, S, S, C); patches: uint8 (n, h, w, C); ys, xs: int (n,) top-left corners, with the
    patch wholly inside the canvas; index: int (n,) the canvases drawn on (default: all, n == N).
    The maximum (not overwrite) keeps a digit's strokes visible under the black margin of another
    digit's frame, as in DeepMind's cluttered-MNIST generator.
    """
    n, h, w = patches.shape[:3]
    index = np.arange(n) if index is None else index
    rows = ys[:, None, None] + np.arange(h)[None, :, None]  # (n, h, 1)
    cols = xs[:, None, None] + np.arange(w)[None, None, :]  # (n, 1, w)
    at = (index[:, None, None], rows, cols)
    canvas[at] = np.maximum(canvas[at], patches)  # (N, h, w, C)


def crop(images: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    """One h x w window per image: images (N, H, W, C), ys/xs (N,) top-left. Returns (N, h, w, C)."""
    rows = ys[:, None, None] + np.arange(h)[None, :, None]
    cols = xs[:, None, None] + np.arange(w)[None, None, :]
    return images[np.arange(len(images))[:, None, None], rows, cols]


def resize(images: np.ndarray, side: int) -> np.ndarray:
    """Resize uint8 (N, H, W, C) to (N, side, side, C), antialiased so thin strokes survive shrinking."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()  # (N, C, H, W)
    y = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().copy()


def place_objects(
    canvas: np.ndarray, objects: np.ndarray, ys: np.ndarray, xs: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Draw K objects per canvas and return their tight ink boxes in canvas pixels.

    canvas: uint8 (N, S, S, C) drawn in place; objects: uint8 (N, K, h, w, C); ys, xs: int (N, K) top-left
    corners of each object's frame; valid: bool (N, K), False for absent objects (not drawn, NaN box).
    Returns float32 (N, K, 4). The boxes come from the objects' own pixels, not the canvas, so clutter
    drawn later cannot widen them.
    """
    n, k = objects.shape[:2]
    if valid is None:
        valid = np.ones((n, k), dtype=bool)
    boxes = np.full((n, k, 4), np.nan, dtype=np.float32)
    for j in range(k):  # a few objects per canvas; each pass draws that object on every canvas
        v = valid[:, j]
        paste(canvas, objects[v, j], ys[v, j], xs[v, j], index=np.flatnonzero(v))
        offset = np.stack([xs[v, j], ys[v, j], xs[v, j], ys[v, j]], axis=1)
        boxes[v, j] = ink_boxes(objects[v, j]) + offset
    return boxes


def add_clutter(
    canvas: np.ndarray,
    pool: DigitPool,
    exclude: np.ndarray,
    pieces: int,
    rng: np.random.Generator,
    piece: int = 8,
    source_side: int | None = None,
) -> None:
    """Draw `pieces` random fragments of other digits on each canvas, in place (RAM's clutter).

    canvas: uint8 (N, S, S, C); exclude: int (N,) the pool index of each canvas's own digit, never used
    as a source. Each fragment is a random `source_side` square (default `piece`) of another digit,
    resized to `piece` when the sides differ (the zoom recipe shrinks fragments to its small digits' scale).
    """
    n, side = len(canvas), canvas.shape[1]
    src_side = source_side or piece
    if pieces and not (0 < piece <= side and 0 < src_side <= pool.side):
        raise ValueError(
            f"option piece_size: want 1..{side} (fragments cut {src_side} px from {pool.side} px digits), got {piece}"
        )
    for _ in range(pieces):  # a few pieces per canvas; each pass draws one piece on every canvas
        # Shift by 1..P-1 so the fragment never comes from the canvas's own digit.
        src = (exclude + rng.integers(1, max(len(pool), 2), size=n)) % len(pool)
        cy, cx = rng.integers(0, pool.side - src_side + 1, size=(2, n))
        fragments = crop(pool.images[src], cy, cx, src_side, src_side)  # (N, src_side, src_side, C)
        if src_side != piece:
            fragments = resize(fragments, piece)
        py, px = rng.integers(0, side - piece + 1, size=(2, n))
        paste(canvas, fragments, py, px)
