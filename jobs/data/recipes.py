"""Named dataset recipes: the papers' benchmarks, built deterministically from a source and a seed.

Digit recipes (source: see `sources.load_digits`; each split draws only from that split's digits, so
test canvases never show a training digit, clutter included):
    mnist28       the digits as they are (28x28 for MNIST; 32x32 RGB for SVHN)
    translated60  one digit at a random place in a 60x60 canvas (RAM)
    cluttered60   translated60 plus 4 random 8x8 fragments of other digits (RAM)
    cluttered100  100x100, one digit plus 8 fragments (RAM)
    multidigit    1 to 5 digits left to right on a 128x128 canvas: label sequence and one box per digit (DRAM)
    pairs         two digits in a 100x100 cluttered canvas; label = their sum (or the unordered pair) and
                  sequence = the two digits left to right (DRAM's MNIST pairs task)
    zoom          one 10-14 px digit among fragments of equally small digits in a 96x96 canvas: legible
                  only when zoomed in (RA-CNN); hierarchy = coarse shape group -> digit (MG-CNN)
Photo recipes:
    cub           the CUB-200-2011 layout at size x size, boxes scaled, hierarchy from hierarchy.txt
    folder        a class-per-subfolder image tree at size x size (no boxes: one NaN box per image)

Boxes of digits are tight around the digit's ink in canvas pixels (see samples.py for the convention).
`count=None` gives one sample per source item of the split.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import combinations_with_replacement
from pathlib import Path
from typing import Any

import numpy as np

from .canvas import DigitPool, add_clutter, cycle_picks, place_objects, resize
from .samples import SampleSet, concat
from .sources import DIGIT_NAMES, LabelledFiles, load_cub, load_digits, load_image_folder, load_images

# Coarse groups of digits by stroke shape: a two-level hierarchy (group -> digit) for MG-CNN on digits.
DIGIT_GROUPS = {"loops": (0, 6, 8, 9), "strokes": (1, 4, 7), "curves": (2, 3, 5)}
_GROUP_OF_DIGIT = np.empty(10, dtype=np.int64)
for _g, _digits in enumerate(DIGIT_GROUPS.values()):
    _GROUP_OF_DIGIT[list(_digits)] = _g
# Canvases are drawn this many at a time: bounds the fancy-index temporaries and paces the progress bar.
CHUNK = 2048
_SPLITS = {"train": 0, "test": 1}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _digit_set(
    images: np.ndarray, boxes: np.ndarray, labels: np.ndarray, hierarchy: bool, **extra: Any
) -> SampleSet:
    if hierarchy:
        extra["hierarchy"] = np.stack([_GROUP_OF_DIGIT[labels], labels], axis=1)  # (N, 2) group, digit
        extra["hierarchy_names"] = [list(DIGIT_GROUPS), DIGIT_NAMES]
    extra.setdefault("class_names", DIGIT_NAMES)
    return SampleSet(images=images, labels=labels, boxes=boxes, **extra)


def _canvas(n: int, side: int, channels: int, width: int | None = None) -> np.ndarray:
    return np.zeros((n, side, width or side, channels), dtype=np.uint8)


def mnist28(
    pool: DigitPool, picks: np.ndarray, rng: np.random.Generator, hierarchy: bool = False
) -> SampleSet:
    """The digits themselves. picks: (N, 1) pool indices."""
    idx = picks[:, 0]
    return _digit_set(pool.images[idx], pool.boxes[idx][:, None], pool.labels[idx], hierarchy)


def translated(
    pool: DigitPool,
    picks: np.ndarray,
    rng: np.random.Generator,
    size: int = 60,
    pieces: int = 0,
    piece_size: int = 8,
    hierarchy: bool = False,
) -> SampleSet:
    """One digit at a uniformly random place in a size x size canvas, plus `pieces` clutter fragments."""
    d = pool.side
    _require(size >= d, f"option size: {size} is smaller than the {d} px digits")
    n = len(picks)
    canvas = _canvas(n, size, pool.channels)
    ys, xs = rng.integers(0, size - d + 1, size=(2, n, 1))
    boxes = place_objects(canvas, pool.images[picks], ys, xs)  # (N, 1, 4)
    add_clutter(canvas, pool, picks[:, 0], pieces, rng, piece_size)
    return _digit_set(canvas, boxes, pool.labels[picks[:, 0]], hierarchy)


def zoom(
    pool: DigitPool,
    picks: np.ndarray,
    rng: np.random.Generator,
    size: int = 96,
    digit_min: int = 10,
    digit_max: int = 14,
    pieces: int = 24,
    piece_size: int = 6,
    hierarchy: bool = True,
) -> SampleSet:
    """A digit shrunk to digit_min..digit_max px in a large canvas among fragments shrunk to the same scale.

    Fragments are crops of other digits scaled by the same factor as the target (about 14 px of a
    28 px digit become 6 px), so at full-canvas resolution clutter and digit look alike: only a
    zoomed-in view tells the digit. hierarchy (on by default): coarse shape group -> digit.
    """
    d = pool.side
    _require(
        1 <= digit_min <= digit_max <= size,
        f"options digit_min/digit_max: want 1 <= {digit_min} <= {digit_max} <= size {size}",
    )
    n = len(picks)
    sides = rng.integers(digit_min, digit_max + 1, size=n)
    canvas = _canvas(n, size, pool.channels)
    boxes = np.full((n, 1, 4), np.nan, dtype=np.float32)
    for side in np.unique(sides):  # a few digit sizes; each pass draws every canvas of that size
        sel = np.flatnonzero(sides == side)
        small = resize(pool.images[picks[sel, 0]], int(side))  # (n_sel, side, side, C)
        ys, xs = rng.integers(0, size - side + 1, size=(2, len(sel), 1))
        sub = canvas[sel]
        boxes[sel] = place_objects(sub, small[:, None], ys, xs)
        canvas[sel] = sub
    scale = (digit_min + digit_max) / 2 / d
    source_side = min(d, max(piece_size, round(piece_size / scale)))
    add_clutter(canvas, pool, picks[:, 0], pieces, rng, piece_size, source_side=source_side)
    return _digit_set(canvas, boxes, pool.labels[picks[:, 0]], hierarchy)


def multidigit(
    pool: DigitPool,
    picks: np.ndarray,
    rng: np.random.Generator,
    size: int = 128,
    min_digits: int = 1,
    pieces: int = 0,
    piece_size: int = 8,
) -> SampleSet:
    """min_digits..K digits (K = picks.shape[1] = option max_digits) in a row, read left to right.

    Digits are packed by their ink widths with 2-6 px gaps and up to 3 px vertical jitter, so their
    boxes never overlap. sequences (N, K) padded with -1; labels = the first digit; boxes (N, K, 4).
    """
    d, (n, k) = pool.side, picks.shape
    _require(1 <= min_digits <= k, f"options min_digits/max_digits: want 1 <= {min_digits} <= {k}")
    _require(size >= d, f"option size: {size} is smaller than the {d} px digits")
    picks = picks.copy()
    counts = rng.integers(min_digits, k + 1, size=n)
    valid = np.arange(k)[None, :] < counts[:, None]  # (N, K)
    gaps = rng.integers(2, 7, size=(n, k))
    for _ in range(100):  # redraw the rare rows whose digits are too wide to fit side by side
        ink = pool.boxes[picks]  # (N, K, 4) inside each digit's frame
        step = np.where(valid, np.nan_to_num(ink[..., 2] - ink[..., 0]) + gaps, 0)  # (N, K)
        total = step.sum(axis=1) - gaps[np.arange(n), counts - 1]
        wide = total > size
        if not wide.any():
            break
        picks[wide] = rng.integers(0, len(pool), size=(int(wide.sum()), k))
    else:
        raise ValueError(f"option size: {size} px is too narrow for {k} digits in a row")
    start = np.floor(rng.random(n) * (size - total + 1)).astype(np.int64)
    ink_left = start[:, None] + np.cumsum(step, axis=1) - step  # (N, K) where each digit's ink begins
    xs = (ink_left - np.nan_to_num(ink[..., 0])).astype(np.int64)
    base = rng.integers(0, size - d + 1, size=(n, 1))
    ys = np.clip(base + rng.integers(-3, 4, size=(n, k)), 0, size - d)
    # A frame may hang over the left or right edge (only its blank margin): draw on a canvas padded by
    # one digit each side, then cut the padding off.
    wide_canvas = _canvas(n, size, pool.channels, width=size + 2 * d)
    boxes = place_objects(wide_canvas, pool.images[picks], ys, xs + d, valid)
    boxes[..., [0, 2]] -= d
    canvas = np.ascontiguousarray(wide_canvas[:, :, d : d + size])
    add_clutter(canvas, pool, picks[:, 0], pieces, rng, piece_size)
    labels = pool.labels[picks]
    sequences = np.where(valid, labels, -1)
    return _digit_set(canvas, boxes, labels[:, 0].copy(), False, sequences=sequences)


_PAIR_INDEX = np.zeros((10, 10), dtype=np.int64)
_PAIR_NAMES = []
for _i, (_a, _b) in enumerate(combinations_with_replacement(range(10), 2)):
    _PAIR_INDEX[_a, _b] = _PAIR_INDEX[_b, _a] = _i
    _PAIR_NAMES.append(f"{_a}{_b}")


def pairs(
    pool: DigitPool,
    picks: np.ndarray,
    rng: np.random.Generator,
    size: int = 100,
    pieces: int = 8,
    piece_size: int = 8,
    task: str = "sum",
) -> SampleSet:
    """Two digits at random, non-overlapping places in a cluttered canvas (DRAM's MNIST pairs).

    task "sum": label = a + b (19 classes); "pair": label = the unordered pair (55 classes).
    sequences (N, 2) the two digits left to right; boxes (N, 2, 4) in the same order.
    """
    d, n = pool.side, len(picks)
    _require(task in ("sum", "pair"), f"option task: want 'sum' or 'pair', got {task!r}")
    _require(size >= 2 * d, f"option size: {size} cannot hold two {d} px digits")
    ys, xs = rng.integers(0, size - d + 1, size=(2, n, 2))
    for _ in range(1000):  # redraw the second digit where the frames overlap (a few rounds suffice)
        clash = (np.abs(xs[:, 0] - xs[:, 1]) < d) & (np.abs(ys[:, 0] - ys[:, 1]) < d)
        if not clash.any():
            break
        ys[clash, 1], xs[clash, 1] = rng.integers(0, size - d + 1, size=(2, int(clash.sum())))
    order = np.argsort(xs, axis=1, kind="stable")  # left to right, the reading order of the sequence
    picks, ys, xs = (np.take_along_axis(a, order, axis=1) for a in (picks, ys, xs))
    canvas = _canvas(n, size, pool.channels)
    boxes = place_objects(canvas, pool.images[picks], ys, xs)
    add_clutter(canvas, pool, picks[:, 0], pieces, rng, piece_size)
    digits = pool.labels[picks]  # (N, 2)
    if task == "sum":
        labels, names = digits.sum(axis=1), [str(s) for s in range(19)]
    else:
        labels, names = _PAIR_INDEX[digits[:, 0], digits[:, 1]], list(_PAIR_NAMES)
    return _digit_set(canvas, boxes, labels, False, sequences=digits, class_names=names)


def _files_set(files: LabelledFiles, count: int | None, rng, size: int, fit: str, progress) -> SampleSet:
    """Decode a seeded sample of `files` (shuffled, so contiguous shards mix classes) at size x size."""
    total = len(files.paths)
    _require(total > 0, "source: no images in this split")
    _require(count is None or count <= total, f"count: {count} asked but the split has only {total} images")
    order = rng.permutation(total)[: count or total]
    boxes = files.boxes[order] if files.boxes is not None else np.full((len(order), 1, 4), np.nan, np.float32)
    images, boxes = load_images([files.paths[i] for i in order], size, boxes, fit, progress)
    hierarchy = files.hierarchy[order] if files.hierarchy is not None else None
    return SampleSet(
        images, files.labels[order], boxes, None, hierarchy, files.class_names, files.hierarchy_names
    )


def cub(
    source, split: str, count: int | None, rng, progress, size: int = 224, fit: str = "stretch"
) -> SampleSet:
    """CUB-200-2011 at size x size; boxes (N, 1, 4) scaled with the image; hierarchy when the file exists."""
    _require(source is not None, "source: the cub recipe needs --source, the CUB-200-2011 root directory")
    return _files_set(load_cub(source, split), count, rng, size, fit, progress)


def folder(
    source, split: str, count: int | None, rng, progress, size: int = 64, fit: str = "stretch"
) -> SampleSet:
    """An image-folder tree at size x size. Uses `source/<split>/` when it exists; otherwise every fifth
    image of each class (in sorted order) is the test split and the rest the training split."""
    _require(source is not None, "source: the folder recipe needs --source, a class-per-subfolder directory")
    root = Path(source)
    if (root / split).is_dir():
        return _files_set(load_image_folder(root / split), count, rng, size, fit, progress)
    files = load_image_folder(root)
    rank = np.arange(len(files.labels)) - np.searchsorted(files.labels, files.labels)  # labels come sorted
    keep = np.flatnonzero((rank % 5 == 4) == (split == "test"))
    files = LabelledFiles([files.paths[i] for i in keep], files.labels[keep], files.class_names)
    return _files_set(files, count, rng, size, fit, progress)


@dataclass(frozen=True)
class Recipe:
    """A registered recipe: its builder, the options it accepts with their defaults, and for digit
    recipes how many digits each sample draws (an int, or the name of the option that says)."""

    build: Callable[..., SampleSet]
    kind: str  # "digits": build(pool, picks, rng, **options); "files": build(source, split, count, rng, progress, **options)
    options: dict[str, Any] = field(default_factory=dict)
    objects: int | str = 1


RECIPES: dict[str, Recipe] = {
    "mnist28": Recipe(mnist28, "digits", {"hierarchy": False}),
    # The canvas size is part of these names, so it is bound here and not an option.
    "translated60": Recipe(partial(translated, size=60), "digits", {"hierarchy": False}),
    "cluttered60": Recipe(
        partial(translated, size=60), "digits", {"pieces": 4, "piece_size": 8, "hierarchy": False}
    ),
    "cluttered100": Recipe(
        partial(translated, size=100), "digits", {"pieces": 8, "piece_size": 8, "hierarchy": False}
    ),
    "multidigit": Recipe(
        multidigit,
        "digits",
        {"size": 128, "min_digits": 1, "max_digits": 5, "pieces": 0, "piece_size": 8},
        "max_digits",
    ),
    "pairs": Recipe(pairs, "digits", {"size": 100, "pieces": 8, "piece_size": 8, "task": "sum"}, 2),
    "zoom": Recipe(
        zoom,
        "digits",
        {"size": 96, "digit_min": 10, "digit_max": 14, "pieces": 24, "piece_size": 6, "hierarchy": True},
    ),
    "cub": Recipe(cub, "files", {"size": 224, "fit": "stretch"}),
    "folder": Recipe(folder, "files", {"size": 64, "fit": "stretch"}),
}


def recipe_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The recipe's defaults updated with `options`; an unknown recipe or option raises ValueError."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    known = RECIPES[name].options
    for key in options:
        if key not in known:
            raise ValueError(
                f"recipe {name}: unknown option {key!r} (it takes: {', '.join(known) or 'none'})"
            )
    return {**known, **options}


def build_recipe(
    name: str,
    count: int | None,
    seed: int,
    split: str = "train",
    source: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> SampleSet:
    """Build `count` samples of recipe `name` for `split`, the same for the same arguments.

    count None: one sample per source item of the split. progress: called as progress(done, total) as
    samples are finished, for a progress bar. options: the recipe's own (see RECIPES[name].options).
    """
    opts = recipe_options(name, options)
    recipe = RECIPES[name]
    _require(split in _SPLITS, f"split: want one of {', '.join(_SPLITS)}, got {split!r}")
    _require(count is None or count >= 1, f"count: want >= 1, got {count}")
    _require(seed >= 0, f"seed: want >= 0, got {seed}")
    # One random stream per (seed, recipe, split): train and test never share draws.
    key = [int(seed), zlib.crc32(name.encode()), _SPLITS[split]]
    rng = np.random.default_rng(key)
    if recipe.kind == "files":
        return recipe.build(source, split, count, rng, progress, **opts)

    pool = DigitPool.from_arrays(*load_digits(source, split))
    k = opts.pop(recipe.objects) if isinstance(recipe.objects, str) else recipe.objects
    _require(isinstance(k, int) and k >= 1, f"option {recipe.objects}: want an integer >= 1, got {k!r}")
    n = count or len(pool)
    picks = cycle_picks(len(pool), n * k, rng).reshape(n, k)
    parts = []
    for c, start in enumerate(range(0, n, CHUNK)):
        # Each chunk has its own stream, so a sample depends only on the seed and its position.
        chunk_rng = np.random.default_rng([*key, 1 + c])
        parts.append(recipe.build(pool, picks[start : start + CHUNK], chunk_rng, **opts))
        if progress is not None:
            progress(start + len(parts[-1]), n)
    return concat(parts)
