"""The in-memory dataset every recipe builds, the store writes and the loader batches.

Letters: N samples, H/W image height/width, C channels, M boxes per sample, L label-sequence length,
V hierarchy levels, B batch.

Boxes are x0, y0, x1, y1 in pixels with x1/y1 exclusive pixel edges: a box encloses the pixel columns
x0 .. x1-1 and rows y0 .. y1-1, so a digit whose ink spans columns 3..10 has x0=3, x1=11 and width 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class SampleSet:
    """N samples of one split, as plain numpy arrays.

    images: uint8 (N, H, W, C).
    labels: int64 (N,), the class; for sequence data the first element of the sequence unless the
        recipe says otherwise (the DRAM pairs task stores the sum or pair class here).
    boxes: float32 (N, M, 4) x0, y0, x1, y1 in pixels; rows of NaN pad samples with fewer than M objects.
    sequences: int64 (N, L) label sequence padded with -1, or None.
    hierarchy: int64 (N, V) labels coarse to fine, last column == labels, or None.
    class_names: names of the label values (len == number of classes); default "0", "1", ...
    hierarchy_names: per level, the names of that level's values (the last level is class_names), or None.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    sequences: np.ndarray | None = None
    hierarchy: np.ndarray | None = None
    # Optional only so the fields keep the documented order; None becomes "0", "1", ... up to the top label.
    class_names: list[str] = None  # type: ignore[assignment]
    hierarchy_names: list[list[str]] | None = None

    def __post_init__(self) -> None:
        # Fail where a recipe or reader made the set, not deep inside a training step.
        n = len(self.images)
        if self.class_names is None:
            self.class_names = [str(i) for i in range(int(self.labels.max(initial=-1)) + 1)]
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"SampleSet.images: want uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.dtype != np.int64 or self.labels.shape != (n,):
            raise ValueError(
                f"SampleSet.labels: want int64 ({n},), got {self.labels.dtype} {self.labels.shape}"
            )
        if (
            self.boxes.dtype != np.float32
            or self.boxes.ndim != 3
            or self.boxes.shape[0] != n
            or self.boxes.shape[2] != 4
        ):
            raise ValueError(
                f"SampleSet.boxes: want float32 ({n}, M, 4), got {self.boxes.dtype} {self.boxes.shape}"
            )
        for name in ("sequences", "hierarchy"):
            value = getattr(self, name)
            if value is not None and (value.dtype != np.int64 or value.ndim != 2 or len(value) != n):
                raise ValueError(f"SampleSet.{name}: want int64 ({n}, K), got {value.dtype} {value.shape}")
        if self.hierarchy is not None:
            if not np.array_equal(self.hierarchy[:, -1], self.labels):
                raise ValueError("SampleSet.hierarchy: the last level must equal labels")
            if self.hierarchy_names is None or len(self.hierarchy_names) != self.hierarchy.shape[1]:
                raise ValueError("SampleSet.hierarchy_names: want one list of names per hierarchy level")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, idx: np.ndarray | slice) -> SampleSet:
        """The samples at `idx` (an index array, boolean mask or slice), names shared."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return SampleSet(
            images=self.images[idx],
            labels=self.labels[idx],
            boxes=self.boxes[idx],
            class_names=self.class_names,
            sequences=pick(self.sequences),
            hierarchy=pick(self.hierarchy),
            hierarchy_names=self.hierarchy_names,
        )

    def to_batch(self, idx: np.ndarray | slice | None = None) -> dict[str, Tensor]:
        """The model batch for the samples at `idx` (all when None).

        Returns "image" float32 (B, C, H, W) in [0, 1], "label" long (B,), "boxes" float32 (B, M, 4), and
        "sequence" long (B, L) / "hierarchy" long (B, V) when the set has them.
        """
        if idx is None:
            idx = slice(None)
        # One fancy-index gather per array, then a single uint8 -> float conversion on the whole batch.
        # np.require copies only when needed: a slice of a read-only array (Parquet-backed) must not
        # reach torch.from_numpy, which warns on non-writable memory.
        images = torch.from_numpy(np.require(self.images[idx], requirements=["C", "W"]))  # (B, H, W, C) uint8
        batch = {
            "image": images.permute(0, 3, 1, 2).float().div_(255.0).contiguous(),  # (B, C, H, W)
            "label": torch.from_numpy(np.require(self.labels[idx], requirements=["C", "W"])),
            "boxes": torch.from_numpy(np.require(self.boxes[idx], requirements=["C", "W"])),
        }
        if self.sequences is not None:
            batch["sequence"] = torch.from_numpy(np.require(self.sequences[idx], requirements=["C", "W"]))
        if self.hierarchy is not None:
            batch["hierarchy"] = torch.from_numpy(np.require(self.hierarchy[idx], requirements=["C", "W"]))
        return batch


def ink_boxes(images: np.ndarray) -> np.ndarray:
    """Tight boxes around the nonzero pixels of each image.

    images: (N, H, W) or (N, H, W, C) any dtype. Returns float32 (N, 4) x0, y0, x1, y1 (x1/y1 exclusive);
    an all-zero image gets the NaN box, since it has no object to enclose.
    """
    ink = images != 0
    if ink.ndim == 4:
        ink = ink.any(axis=3)  # (N, H, W): a pixel is ink when any channel is lit
    rows, cols = ink.any(axis=2), ink.any(axis=1)  # (N, H), (N, W)
    h, w = rows.shape[1], cols.shape[1]
    # argmax finds the first True; on the reversed axis it finds the last one.
    y0 = rows.argmax(axis=1)
    y1 = h - rows[:, ::-1].argmax(axis=1)
    x0 = cols.argmax(axis=1)
    x1 = w - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)
    boxes[~rows.any(axis=1)] = np.nan
    return boxes


def concat(parts: list[SampleSet]) -> SampleSet:
    """The samples of `parts` one after another; names come from the first part (all must agree)."""
    if not parts:
        raise ValueError("concat: no sample sets given")
    first = parts[0]

    def join(name: str) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        return None if arrays[0] is None else np.concatenate(arrays)

    return SampleSet(
        images=join("images"),
        labels=join("labels"),
        boxes=join("boxes"),
        class_names=first.class_names,
        sequences=join("sequences"),
        hierarchy=join("hierarchy"),
        hierarchy_names=first.hierarchy_names,
    )
