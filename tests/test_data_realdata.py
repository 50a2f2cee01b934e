"""The real data in ../shared/data: full MNIST idx files and the 50-species CUB-200-2011 subset."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from jobs.data.recipes import build_recipe
from jobs.data.sources import load_cub, load_digits

pytestmark = pytest.mark.realdata


def test_mnist_idx_from_shared(shared_data):
    train_images, train_labels = load_digits(shared_data / "mnist", "train")
    test_images, test_labels = load_digits(shared_data / "mnist", "test")  # the t10k-a-* files
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (5000, 28, 28)
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.int64
    assert set(np.unique(train_labels)) == set(range(10)) and np.bincount(train_labels).min() > 5000
    assert np.bincount(test_labels).min() > 400
    # Real digits: dark background, bright strokes filling the middle of the frame.
    assert train_images[:, :2].mean() < 1 and train_images[:, 10:18, 10:18].mean() > 60
    # The first training digit of MNIST is a 5, the first test digit a 7.
    assert train_labels[0] == 5 and test_labels[0] == 7


def test_full_cluttered60_build(shared_data):
    started = time.perf_counter()
    ss = build_recipe("cluttered60", None, seed=0, source=shared_data / "mnist")
    seconds = time.perf_counter() - started
    assert ss.images.shape == (60000, 60, 60, 1) and not np.isnan(ss.boxes).any()
    assert seconds < 120, f"60,000 cluttered canvases took {seconds:.0f} s"
    w = ss.boxes[:, 0, 2] - ss.boxes[:, 0, 0]
    assert w.min() >= 1 and w.max() <= 28


def test_cub_subset(shared_data):
    root = shared_data / "cub200_2011_50"
    train, test = load_cub(root, "train"), load_cub(root, "test")
    assert (len(train.paths), len(test.paths)) == (1500, 1389)
    assert len(train.class_names) == 50 and train.class_names[0] == "Black_footed_Albatross"
    assert [len(level) for level in train.hierarchy_names] == [9, 20, 36, 50]
    assert {"Icteriidae", "Icteridae"} <= set(train.hierarchy_names[1])
    # A species sits in exactly one genus, a genus in one family, a family in one order.
    h = np.concatenate([train.hierarchy, test.hierarchy])
    for coarse in range(3):
        fine_to_coarse = {}
        for row in h:
            assert fine_to_coarse.setdefault(row[coarse + 1], row[coarse]) == row[coarse]
    # Boxes lie inside their (resized) images.
    for path, box in zip(train.paths[:50], train.boxes[:50, 0]):
        w, h_ = Image.open(path).size
        assert 0 <= box[0] < box[2] <= w + 0.01 and 0 <= box[1] < box[3] <= h_ + 0.01


def test_cub_recipe(shared_data):
    root = shared_data / "cub200_2011_50"
    ss = build_recipe("cub", 24, seed=0, split="test", source=root, size=64)
    assert ss.images.shape == (24, 64, 64, 3) and ss.hierarchy.shape == (24, 4)
    assert (ss.boxes >= 0).all() and (ss.boxes <= 64).all()
    assert len(set(ss.labels)) > 5  # shuffled, not the first class's 24 images
    # Each stretched box is its file's box scaled by 64 / width and 64 / height (sizes.txt has the
    # sizes of the files): it must match the scaled box of some test image of the same species.
    files = load_cub(root, "test")
    sizes = {r.split()[0]: r.split()[3:5] for r in (root / "sizes.txt").read_text().splitlines()}
    ids = {r.split()[1]: r.split()[0] for r in (root / "images.txt").read_text().splitlines()}
    wh = np.array([sizes[ids[f"{p.parent.name}/{p.name}"]] for p in files.paths], dtype=np.float32)
    scaled = files.boxes[:, 0] * np.concatenate([64 / wh, 64 / wh], axis=1)  # (N, 4)
    for box, label in zip(ss.boxes[:, 0], ss.labels):
        close = np.abs(scaled - box).max(axis=1) < 1e-3
        assert close.any() and label in files.labels[close]
