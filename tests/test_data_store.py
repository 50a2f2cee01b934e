"""Parquet round trips (local path and file:// URI), sharded reads, validation, atomic writes, batching."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs.data import store
from jobs.data.loader import iterate_batches, num_batches, worker_indices
from jobs.data.recipes import build_recipe
from jobs.data.samples import SampleSet, concat, ink_boxes
from jobs.data.store import SCHEMA, read_manifest, read_split, write_dataset


@pytest.fixture(scope="module")
def sets() -> dict[str, SampleSet]:
    return {
        "multi": build_recipe("multidigit", 90, seed=0),  # sequences, NaN-padded boxes
        "zoom": build_recipe("zoom", 70, seed=0),  # hierarchy
        "test": build_recipe("multidigit", 25, seed=0, split="test"),
    }


def assert_same(a: SampleSet, b: SampleSet) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.boxes, b.boxes)  # NaN == NaN for assert_array_equal
    for name in ("sequences", "hierarchy"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)
    assert a.class_names == b.class_names and a.hierarchy_names == b.hierarchy_names


@pytest.mark.parametrize("as_uri", [False, True])
def test_round_trip(tmp_path, sets, as_uri):
    out = f"file://{tmp_path}/ds" if as_uri else str(tmp_path / "ds")
    write_dataset(
        out, {"train": sets["multi"], "test": sets["test"]}, {"recipe": "multidigit", "seed": 0}, 32
    )
    manifest = read_manifest(out)
    assert manifest["recipe"] == "multidigit" and manifest["schema_version"] == store.SCHEMA_VERSION
    assert manifest["counts"] == {"train": 90, "test": 25}
    assert manifest["image_size"] == [128, 128, 1] and manifest["sequence_length"] == 5
    assert [f["rows"] for f in manifest["shards"]["train"]] == [32, 32, 26]
    assert pq.read_schema(tmp_path / "ds" / "train-00000.parquet").remove_metadata().equals(SCHEMA)
    assert_same(read_split(out, "train"), sets["multi"])
    assert_same(read_split(out, "test"), sets["test"])


def test_round_trip_hierarchy(tmp_path, sets):
    write_dataset(tmp_path / "z", {"train": sets["zoom"]}, {"recipe": "zoom"})
    back = read_split(tmp_path / "z", "train")
    assert_same(back, sets["zoom"])
    assert back.sequences is None and back.hierarchy.shape == (70, 2)


@pytest.mark.parametrize("num_shards", [1, 2, 3, 5, 7])
def test_sharded_reads_cover_every_row_once(tmp_path, sets, num_shards):
    write_dataset(tmp_path / "ds", {"train": sets["multi"]}, {}, shard_size=16)
    parts = [read_split(tmp_path / "ds", "train", k, num_shards) for k in range(num_shards)]
    sizes = [len(p) for p in parts]
    assert sum(sizes) == 90 and max(sizes) - min(sizes) <= 1
    # Parts are contiguous and in order: glued back together they are the whole split.
    assert_same(concat(parts), sets["multi"])


def test_more_shards_than_rows_and_limit(tmp_path, sets):
    small = sets["test"].subset(slice(0, 3))
    write_dataset(tmp_path / "ds", {"train": small}, {})
    sizes = [len(read_split(tmp_path / "ds", "train", k, 5)) for k in range(5)]
    assert sorted(sizes) == [0, 0, 1, 1, 1]
    assert len(read_split(tmp_path / "ds", "train", limit=2)) == 2
    with pytest.raises(ValueError, match="shard"):
        read_split(tmp_path / "ds", "train", 5, 5)


def test_existing_output_and_overwrite(tmp_path, sets):
    write_dataset(tmp_path / "ds", {"train": sets["test"]}, {"seed": 1})
    with pytest.raises(ValueError, match="ds: already exists"):
        write_dataset(tmp_path / "ds", {"train": sets["test"]}, {"seed": 2})
    write_dataset(tmp_path / "ds", {"train": sets["zoom"]}, {"seed": 2}, overwrite=True)
    assert read_manifest(tmp_path / "ds")["seed"] == 2
    assert sorted(os.listdir(tmp_path)) == ["ds"]  # no temp or old directories left beside it


def test_failed_write_leaves_nothing(tmp_path, sets, monkeypatch):
    calls = []
    real = pq.write_table

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(tmp_path / "ds", {"train": sets["multi"]}, {}, shard_size=32)
    assert os.listdir(tmp_path) == []


def test_missing_manifest_and_split(tmp_path, sets):
    with pytest.raises(FileNotFoundError, match="nothing/manifest.json: not found"):
        read_split(tmp_path / "nothing", "train")
    write_dataset(tmp_path / "ds", {"train": sets["test"]}, {})
    with pytest.raises(ValueError, match="no split 'valid'"):
        read_split(tmp_path / "ds", "valid")
    (tmp_path / "ds" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: not valid JSON"):
        read_manifest(tmp_path / "ds")
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(ValueError, match="manifest.json: missing key 'image_size'"):
        read_manifest(tmp_path / "ds")


def test_shard_with_missing_column(tmp_path, sets):
    write_dataset(tmp_path / "ds", {"train": sets["test"]}, {})
    shard = tmp_path / "ds" / "train-00000.parquet"
    pq.write_table(pq.read_table(shard).drop_columns(["boxes"]), shard)
    with pytest.raises(ValueError, match=r"train-00000.parquet: missing column 'boxes'"):
        read_split(tmp_path / "ds", "train")


def test_wrong_image_size(tmp_path, sets):
    write_dataset(tmp_path / "ds", {"train": sets["test"]}, {})
    path = tmp_path / "ds" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["image_size"] = [64, 64, 1]
    path.write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match=r"train-00000.parquet: image of row 0 has 16384 bytes.*64x64x1 needs 4096"
    ):
        read_split(tmp_path / "ds", "train")


def test_missing_and_corrupt_shard(tmp_path, sets):
    write_dataset(tmp_path / "ds", {"train": sets["test"]}, {})
    shard = tmp_path / "ds" / "train-00000.parquet"
    shard.write_bytes(shard.read_bytes()[:200])
    with pytest.raises(ValueError, match="train-00000.parquet: not a readable Parquet file"):
        read_split(tmp_path / "ds", "train")
    shard.unlink()
    with pytest.raises(
        FileNotFoundError, match="train-00000.parquet: shard listed in manifest.json is missing"
    ):
        read_split(tmp_path / "ds", "train")


def test_sampleset_contract():
    images = np.zeros((3, 5, 6, 1), np.uint8)
    images[1, 1:3, 2:5] = 9
    boxes = ink_boxes(images)[:, None]  # (3, 1, 4)
    np.testing.assert_array_equal(boxes[1, 0], [2, 1, 5, 3])
    assert np.isnan(boxes[0]).all()  # a blank image has no object to box
    ss = SampleSet(images, np.array([0, 2, 1]), boxes, hierarchy=np.array([[0, 0], [1, 2], [0, 1]]),
                   hierarchy_names=[["a", "b"], ["x", "y", "z"]])  # fmt: skip
    assert ss.class_names == ["0", "1", "2"] and len(ss) == 3 and ss.image_shape == (5, 6, 1)
    batch = ss.to_batch()
    assert set(batch) == {"image", "label", "boxes", "hierarchy"}
    assert batch["image"].shape == (3, 1, 5, 6) and batch["image"][1, 0, 1, 2] == pytest.approx(9 / 255)
    assert len(ss.subset(np.array([True, False, True]))) == 2
    with pytest.raises(ValueError, match="SampleSet.labels: want int64"):
        SampleSet(images, np.array([0, 1, 2], np.int32), boxes)
    with pytest.raises(ValueError, match="SampleSet.images: want uint8"):
        SampleSet(images[..., 0], np.array([0, 1, 2]), boxes)
    with pytest.raises(ValueError, match="the last level must equal labels"):
        SampleSet(
            images, np.array([0, 1, 2]), boxes, hierarchy=np.zeros((3, 2), np.int64), hierarchy_names=[[], []]
        )


def test_iterate_batches_covers_every_sample(sets):
    ss = sets["multi"]
    seen = []
    for batch in iterate_batches(ss, 16, shuffle=True, seed=4):
        assert batch["image"].dtype.is_floating_point and batch["image"].shape[1:] == (1, 128, 128)
        assert batch["sequence"].shape[1] == 5 and "hierarchy" not in batch
        seen.append(batch["label"])
    assert len(seen) == num_batches(90, 16) == 6 and len(seen[-1]) == 10
    # Shuffled order, but the same multiset of labels.
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.sort(ss.labels))
    again = [b["label"] for b in iterate_batches(ss, 16, shuffle=True, seed=4)]
    assert all((a == b).all() for a, b in zip(seen, again))
    assert len(list(iterate_batches(ss, 16, drop_last=True))) == num_batches(90, 16, drop_last=True) == 5


def test_batch_matches_samples(sets):
    ss = sets["zoom"]
    order = worker_indices(len(ss), shuffle=True, seed=0)
    batch = next(iterate_batches(ss, 8, shuffle=True, seed=0))
    np.testing.assert_allclose(batch["image"][3, 0].numpy() * 255, ss.images[order[3], :, :, 0], atol=1e-3)
    np.testing.assert_array_equal(batch["hierarchy"].numpy(), ss.hierarchy[order[:8]])


@pytest.mark.parametrize("drop_last", [False, True])
def test_worker_split(drop_last):
    n, world = 23, 4
    parts = [
        worker_indices(n, True, 0, epoch=2, rank=r, world_size=world, drop_last=drop_last)
        for r in range(world)
    ]
    assert len({len(p) for p in parts}) == 1  # equal sizes keep the workers' steps in lockstep
    flat = np.concatenate(parts)
    if drop_last:
        assert len(flat) == 20 and len(set(flat)) == 20
    else:
        assert set(flat) == set(range(n)) and len(flat) == 24  # one index repeated to even the parts
    other_epoch = worker_indices(n, True, 0, epoch=3, rank=0, world_size=world)
    assert not np.array_equal(other_epoch, parts[0][: len(other_epoch)])
    with pytest.raises(ValueError, match="rank"):
        worker_indices(n, True, 0, rank=4, world_size=4)


@pytest.mark.ray
def test_ray_data_reads_the_split(tmp_path, sets, ray_session):
    from jobs.data.store import ray_batch_to_tensors, ray_dataset

    write_dataset(tmp_path / "ds", {"train": sets["multi"]}, {}, shard_size=32)
    manifest = read_manifest(tmp_path / "ds")
    ds = ray_dataset(f"file://{tmp_path}/ds", "train")
    labels, ids = [], []
    for table in ds.iter_batches(batch_size=20, batch_format="pyarrow"):
        batch = ray_batch_to_tensors(table, manifest)
        assert batch["image"].shape[1:] == (1, 128, 128) and batch["boxes"].shape[1:] == (5, 4)
        ids.append(table.column("id").to_numpy())
        labels.append(batch["label"].numpy())
        np.testing.assert_array_equal(batch["sequence"].numpy(), sets["multi"].sequences[ids[-1]])
    ids = np.concatenate(ids)
    assert sorted(ids) == list(range(90))
    np.testing.assert_array_equal(np.concatenate(labels), sets["multi"].labels[ids])
