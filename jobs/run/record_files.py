"""Attention records on storage: their schema and their files, written and read without torch.

The builder of a record from a model's output (tensors) is jobs/run/records.py; the job service reads
records back through here, so it never imports torch.

Schema (one row per probe sample):
    sample_id int64, epoch int32, trial string ("" for train jobs),
    image binary (raw uint8, height x width x channels), height, width, channels int32,
    label int64, prediction int64, label_sequence / predicted_sequence list<int64> (sequence models),
    kind string ("glimpse" | "scale" | "granularity"),
    boxes list<float32> flattened (T, K, 4) x0, y0, x1, y1 in image pixels, steps int32 (T), patches int32 (K),
    gt_boxes list<float32> flattened (M, 4) (NaN rows dropped),
    step_probs list<float32> (T) the true-class probability per step/scale where the family has one,
    step_predictions list<int64> (T) the predicted class per scale where the family has one,
    mean_boxes list<float32> flattened (T, K, 4), mean_prediction int64, mean_predicted_sequence list<int64>:
    the deterministic mean path of a sampling family (RAM/DRAM: first glimpse at the centre, then the policy
    means) beside the sampled one in `boxes`.
"""

from __future__ import annotations

import pyarrow as pa

from jobs.run import storage
from jobs.run.layout import RunLayout, record_epoch

RECORD_SCHEMA = pa.schema([
    ("sample_id", pa.int64()),
    ("epoch", pa.int32()),
    ("trial", pa.string()),
    ("image", pa.binary()),
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("channels", pa.int32()),
    ("label", pa.int64()),
    ("prediction", pa.int64()),
    ("label_sequence", pa.list_(pa.int64())),
    ("predicted_sequence", pa.list_(pa.int64())),
    ("kind", pa.string()),
    ("boxes", pa.list_(pa.float32())),
    ("steps", pa.int32()),
    ("patches", pa.int32()),
    ("gt_boxes", pa.list_(pa.float32())),
    ("step_probs", pa.list_(pa.float32())),
    ("step_predictions", pa.list_(pa.int64())),
    ("mean_boxes", pa.list_(pa.float32())),
    ("mean_prediction", pa.int64()),
    ("mean_predicted_sequence", pa.list_(pa.int64())),
])
# Columns only some families write: the rest are in every record.
OPTIONAL_COLUMNS = frozenset({"label_sequence", "predicted_sequence", "step_probs", "step_predictions",
                              "mean_boxes", "mean_prediction", "mean_predicted_sequence"})


def record_schema(columns: set[str] | list[str]) -> pa.Schema:
    """RECORD_SCHEMA narrowed to `columns` (in the schema's order); raises ValueError naming a column the
    schema lacks or a required one missing."""
    unknown = set(columns) - set(RECORD_SCHEMA.names)
    if unknown:
        raise ValueError(f"attention record: unknown columns {sorted(unknown)}; known: {RECORD_SCHEMA.names}")
    missing = set(RECORD_SCHEMA.names) - OPTIONAL_COLUMNS - set(columns)
    if missing:
        raise ValueError(f"attention record: missing columns {sorted(missing)}")
    return pa.schema([f for f in RECORD_SCHEMA if f.name in columns])


def write_record(layout: RunLayout, table: pa.Table, epoch: int) -> str:
    """Write `epoch`'s record of the run or trial `layout`; returns its path or URI."""
    uri = layout.record(epoch)
    storage.write_table(uri, table)
    return uri


def _records(layout: RunLayout) -> dict[int, str]:
    """epoch -> file of every record written so far, sorted by epoch."""
    files = storage.list_files(layout.attention_dir, ".parquet")
    found = {record_epoch(f): f for f in files}
    return {e: found[e] for e in sorted(e for e in found if e is not None)}


def record_epochs(layout: RunLayout) -> list[int]:
    """The epochs with an attention record, ascending."""
    return list(_records(layout))


def read_records(layout: RunLayout, epoch: int | None = None) -> pa.Table | None:
    """The attention record of `epoch` (the latest when None), or None when it has none (yet)."""
    files = _records(layout)
    if not files:
        return None
    uri = files[max(files)] if epoch is None else files.get(epoch)
    return storage.read_table(uri) if uri else None
