"""Datasets on disk: Parquet shards plus a manifest, on a local path or any pyarrow filesystem URI.

Layout of a dataset directory:
    manifest.json                 written last: a directory without it is not a dataset
    <split>-<NNNNN>.parquet       the rows of one split, in order, `shard_size` rows per file

Parquet schema (SCHEMA_VERSION 1), one row per sample:
    id         int64                                 row number within the split
    image      binary                                raw uint8 pixels, H*W*C bytes in (H, W, C) order
    label      int64                                 the class
    boxes      list<fixed_size_list<float32, 4>>     x0, y0, x1, y1 in pixels per object (trailing NaN
                                                     padding rows are not stored)
    sequence   list<int32>                           label sequence without its -1 padding; null when
                                                     the dataset has no sequences
    hierarchy  list<int32>                           labels coarse to fine; null when it has none

manifest.json:
    schema_version, recipe, seed, options, source (what the caller passed), image_size [H, W, C],
    class_names, hierarchy_names (per level, or null), max_boxes M, sequence_length L (or null),
    hierarchy_levels V (or null), hierarchy_map (per coarse level, each fine class's label there, or
    null), counts {split: N}, shards {split: [{"file", "rows"}, ...]}.

Images are stored raw, not encoded: decoding needs no image codec (the pixels are a numpy view of the
Parquet buffer), and zstd still shrinks the mostly-black digit canvases well (cluttered60, 65,000
canvases: 234 MB of pixels, 19 MB on disk).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from torch import Tensor

from .manifest import MANIFEST, SCHEMA_VERSION, read_manifest, resolve
from .samples import SampleSet, concat

__all__ = ["MANIFEST", "SCHEMA_VERSION", "read_manifest", "resolve"]  # with the writers and readers below

BOX_TYPE = pa.list_(pa.list_(pa.float32(), 4))
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("image", pa.binary()),
        ("label", pa.int64()),
        ("boxes", BOX_TYPE),
        ("sequence", pa.list_(pa.int32())),
        ("hierarchy", pa.list_(pa.int32())),
    ]
)
# Keeps each shard's image column far below the 2 GiB that 32-bit binary offsets can address.
_MAX_SHARD_BYTES = 512 << 20


def _padded_lists(values: np.ndarray, pad_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop trailing padding: values (N, K, ...), pad_mask (N, K) True where padding.

    Returns int32 offsets (N + 1,) and the kept values (sum of lengths, ...). Only trailing padding goes,
    so the j-th stored box still belongs to the j-th sequence element.
    """
    kept = ~pad_mask
    k = kept.shape[1]
    # Length = 1 + index of the last kept entry (0 when none are kept).
    lengths = np.where(kept.any(axis=1), k - np.argmax(kept[:, ::-1], axis=1), 0)
    within = np.arange(k)[None, :] < lengths[:, None]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return offsets, values[within]


def _to_table(ss: SampleSet, start: int, stop: int) -> pa.Table:
    n = stop - start
    images = np.ascontiguousarray(ss.images[start:stop])
    size = int(np.prod(images.shape[1:]))
    image_offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * size).tobytes())
    image = pa.Array.from_buffers(pa.binary(), n, [None, image_offsets, pa.py_buffer(images)])
    boxes = ss.boxes[start:stop]
    offsets, values = _padded_lists(boxes, np.isnan(boxes).all(axis=2))
    box_col = pa.ListArray.from_arrays(
        pa.array(offsets), pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), 4)
    )

    def int_lists(a: np.ndarray | None, pad: np.ndarray | None) -> pa.Array:
        if a is None:
            return pa.nulls(n, pa.list_(pa.int32()))
        offsets, values = _padded_lists(a, pad if pad is not None else np.zeros(a.shape, bool))
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(np.int32)))

    seq = ss.sequences[start:stop] if ss.sequences is not None else None
    hier = ss.hierarchy[start:stop] if ss.hierarchy is not None else None
    columns = [
        pa.array(np.arange(start, stop, dtype=np.int64)),
        image,
        pa.array(ss.labels[start:stop]),
        box_col,
        int_lists(seq, None if seq is None else seq < 0),
        int_lists(hier, None),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _hierarchy_map(splits: dict[str, SampleSet]) -> list[list[int]] | None:
    """Per coarse level, each fine class's label at that level (-1 where no sample shows the class).

    Models over a label hierarchy (MG-CNN) need the whole mapping up front, identical on every worker,
    while a worker only reads its own shard: so it is written once here, from every split.
    """
    first = next(iter(splits.values()))
    if first.hierarchy is None:
        return None
    levels = first.hierarchy.shape[1]
    n_fine = len(first.class_names)
    table = np.full((levels - 1, n_fine), -1, dtype=np.int64)
    for ss in splits.values():
        fine = ss.hierarchy[:, -1]
        table[:, fine] = ss.hierarchy[:, :-1].T
    return table.tolist()


def _check_consistent(splits: dict[str, SampleSet]) -> SampleSet:
    if not splits:
        raise ValueError("splits: nothing to write")
    first = next(iter(splits.values()))
    for name, ss in splits.items():
        for attr in ("image_shape", "class_names", "hierarchy_names"):
            if getattr(ss, attr) != getattr(first, attr):
                raise ValueError(f"split {name}: {attr} differs from the other splits")
        if (ss.sequences is None) != (first.sequences is None) or (ss.hierarchy is None) != (
            first.hierarchy is None
        ):
            raise ValueError(
                f"split {name}: has sequences/hierarchy where the other splits do not (or the reverse)"
            )
    return first


def write_dataset(
    out: str | os.PathLike,
    splits: dict[str, SampleSet],
    manifest: dict[str, Any],
    shard_size: int = 4096,
    overwrite: bool = False,
) -> str:
    """Write `splits` as Parquet shards under `out` with `manifest.json`; returns `out` as given.

    manifest: what the caller knows (recipe, seed, options, source); the counts, shapes, names and shard
    list are added here. On a local filesystem everything is written into a hidden temporary directory
    beside `out` and renamed into place, so an interrupted build leaves no `out` at all. Object stores
    have no rename: there the shards go first and the manifest last, and readers insist on the manifest.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size: want >= 1, got {shard_size}")
    first = _check_consistent(splits)
    fs, root = resolve(out)
    exists = fs.get_file_info(root).type != pafs.FileType.NotFound
    if exists and not overwrite:
        raise ValueError(f"{out}: already exists (choose another --out or pass --overwrite)")
    local = isinstance(fs, pafs.LocalFileSystem)
    parent, name = os.path.split(root.rstrip("/"))
    work = f"{parent}/.{name}.partial-{uuid.uuid4().hex[:8]}" if local else root
    if exists and not local and fs.get_file_info(f"{root}/{MANIFEST}").is_file:
        fs.delete_file(f"{root}/{MANIFEST}")  # the old dataset stops looking complete before we touch it
    h, w, c = first.image_shape
    rows = max(1, min(shard_size, _MAX_SHARD_BYTES // (h * w * c)))
    full = {
        **manifest,
        "schema_version": SCHEMA_VERSION,
        "image_size": [h, w, c],
        "class_names": list(first.class_names),
        "hierarchy_names": first.hierarchy_names,
        "max_boxes": int(first.boxes.shape[1]),
        "sequence_length": None if first.sequences is None else int(first.sequences.shape[1]),
        "hierarchy_levels": None if first.hierarchy is None else int(first.hierarchy.shape[1]),
        "hierarchy_map": _hierarchy_map(splits),
        "counts": {s: len(ss) for s, ss in splits.items()},
        "shards": {},
    }
    fs.create_dir(work, recursive=True)
    try:
        for split, ss in splits.items():
            full["shards"][split] = []
            for i, start in enumerate(range(0, max(len(ss), 1), rows)):
                stop = min(start + rows, len(ss))
                file = f"{split}-{i:05d}.parquet"
                # Dictionary encoding is useless on unique image blobs and costs time on both ends.
                pq.write_table(
                    _to_table(ss, start, stop),
                    f"{work}/{file}",
                    filesystem=fs,
                    compression="zstd",
                    use_dictionary=["label", "boxes", "sequence", "hierarchy"],
                )
                full["shards"][split].append({"file": file, "rows": stop - start})
        with fs.open_output_stream(f"{work}/{MANIFEST}") as f:
            f.write(json.dumps(full, indent=1).encode())
        if local:
            trash = f"{parent}/.{name}.old-{uuid.uuid4().hex[:8]}"
            if exists:
                fs.move(root, trash)
            fs.move(work, root)
            if exists:
                fs.delete_dir(trash)
    except BaseException:
        if local:
            fs.delete_dir(work)
        raise
    return os.fspath(out)


def _lists_to_padded(col: pa.Array, width: int, fill: float, dtype, what: str) -> np.ndarray:
    """A list column (N rows) -> (N, width, ...) array padded with `fill`; nulls count as empty lists."""
    n = len(col)
    offsets = col.offsets.to_numpy()
    lengths = np.diff(offsets)
    lengths[~col.is_valid().to_numpy(zero_copy_only=False)] = 0
    if lengths.size and lengths.max() > width:
        raise ValueError(f"{what}: a row has {lengths.max()} entries, the manifest allows {width}")
    values = col.flatten()  # honours the slice offset and skips null rows' (empty) ranges
    item = 4 if pa.types.is_fixed_size_list(values.type) else 1
    flat = (values.flatten() if item == 4 else values).to_numpy(zero_copy_only=False)
    out = np.full((n, width, item), fill, dtype=dtype)
    rows = np.repeat(np.arange(n), lengths)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, pos] = flat.reshape(-1, item)
    return out if item == 4 else out[..., 0]


def table_to_samples(table: pa.Table, manifest: dict[str, Any], where: str = "table") -> SampleSet:
    """Decode rows in the SCHEMA into a SampleSet, checking columns and image sizes against `manifest`.

    where: the file name used in error messages.
    """
    for field in SCHEMA:
        if field.name not in table.column_names:
            raise ValueError(
                f"{where}: missing column {field.name!r} (schema v{SCHEMA_VERSION} needs {', '.join(SCHEMA.names)})"
            )
        if not table.schema.field(field.name).type.equals(field.type):
            raise ValueError(
                f"{where}: column {field.name!r} has type {table.schema.field(field.name).type}, want {field.type}"
            )
    h, w, c = manifest["image_size"]
    n = table.num_rows
    image = table.column("image").combine_chunks()
    if image.null_count:
        raise ValueError(f"{where}: column 'image' has {image.null_count} null rows")
    offsets = np.frombuffer(image.buffers()[1], np.int32)[image.offset : image.offset + n + 1]
    lengths = np.diff(offsets)
    if n and (lengths != h * w * c).any():
        bad = int(np.flatnonzero(lengths != h * w * c)[0])
        raise ValueError(
            f"{where}: image of row {bad} has {lengths[bad]} bytes, manifest image_size {h}x{w}x{c} needs {h * w * c}"
        )
    images = np.frombuffer(image.buffers()[2], np.uint8)[offsets[0] : offsets[0] + n * h * w * c].reshape(
        n, h, w, c
    )
    labels = table.column("label").to_numpy().astype(np.int64)
    boxes = _lists_to_padded(
        table.column("boxes").combine_chunks(),
        manifest["max_boxes"],
        np.nan,
        np.float32,
        f"{where}: column 'boxes'",
    )
    seq_len, levels = manifest.get("sequence_length"), manifest.get("hierarchy_levels")
    sequences = hierarchy = None
    if seq_len:
        sequences = _lists_to_padded(
            table.column("sequence").combine_chunks(), seq_len, -1, np.int64, f"{where}: column 'sequence'"
        )
    if levels:
        hierarchy = _lists_to_padded(
            table.column("hierarchy").combine_chunks(), levels, -1, np.int64, f"{where}: column 'hierarchy'"
        )
    return SampleSet(
        images, labels, boxes, sequences, hierarchy, manifest["class_names"], manifest.get("hierarchy_names")
    )


def _split_files(manifest: dict[str, Any], split: str, where: str) -> list[dict[str, Any]]:
    if split not in manifest["shards"]:
        raise ValueError(f"{where}: no split {split!r} (has {', '.join(manifest['shards'])})")
    return manifest["shards"][split]


def read_split(
    path_or_uri: str | os.PathLike,
    split: str,
    shard: int | None = None,
    num_shards: int | None = None,
    limit: int | None = None,
) -> SampleSet:
    """Read one split into memory, or only part `shard` of `num_shards` equal contiguous parts.

    The parts of 0..num_shards-1 cover every row exactly once and differ in size by at most one row,
    so each training worker can read its own. limit: read at most this many rows (of the part).
    """
    if (shard is None) != (num_shards is None):
        raise ValueError("shard and num_shards: give both or neither")
    if num_shards is not None and not (num_shards >= 1 and 0 <= shard < num_shards):
        raise ValueError(f"shard: want 0 <= shard < num_shards, got shard={shard} num_shards={num_shards}")
    manifest = read_manifest(path_or_uri)
    fs, root = resolve(path_or_uri)
    files = _split_files(manifest, split, f"{root}/{MANIFEST}")
    total = sum(f["rows"] for f in files)
    lo, hi = (0, total) if shard is None else (total * shard // num_shards, total * (shard + 1) // num_shards)
    if limit is not None:
        hi = min(hi, lo + limit)
    wanted, first_row = [], 0
    for f in files:  # one file per shard_size rows: read only those overlapping [lo, hi)
        start, stop = max(lo, first_row), min(hi, first_row + f["rows"])
        if start < stop:
            wanted.append((f, start - first_row, stop - start))
        first_row += f["rows"]
    parts = []
    for f, offset, length in wanted or [(files[0], 0, 0)]:  # an empty part still needs the columns
        where = f"{root}/{f['file']}"
        if not fs.get_file_info(where).is_file:
            raise FileNotFoundError(f"{where}: shard listed in {MANIFEST} is missing")
        try:
            table = pq.read_table(where, filesystem=fs)
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{where}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        if table.num_rows != f["rows"]:
            raise ValueError(f"{where}: {table.num_rows} rows, {MANIFEST} says {f['rows']}")
        parts.append(table_to_samples(table.slice(offset, length), manifest, where))
    return concat(parts)


def ray_dataset(path_or_uri: str | os.PathLike, split: str, **read_args: Any):
    """The split as a Ray Dataset (`ray.data.read_parquet` over its shard files).

    Iterate it with `iter_batches(batch_format="pyarrow")` (or hand it to a TorchTrainer, whose workers
    each get a part through `ray.train.get_dataset_shard`) and turn each batch into model tensors with
    `ray_batch_to_tensors`. Ray is imported here only, so the rest of the data layer works without it.
    """
    import ray.data

    manifest = read_manifest(path_or_uri)
    fs, root = resolve(path_or_uri)
    files = [f"{root}/{f['file']}" for f in _split_files(manifest, split, f"{root}/{MANIFEST}")]
    return ray.data.read_parquet(files, filesystem=fs, **read_args)


def ray_batch_to_tensors(batch: pa.Table, manifest: dict[str, Any]) -> dict[str, Tensor]:
    """A Ray Data batch in pyarrow format -> the model batch dict (see SampleSet.to_batch)."""
    if not isinstance(batch, pa.Table):
        raise TypeError(
            f"want a pyarrow.Table batch (iter_batches(batch_format='pyarrow')), got {type(batch).__name__}"
        )
    return table_to_samples(batch, manifest, "ray batch").to_batch()
