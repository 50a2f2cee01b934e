"""Tabular answers of the service back as pyarrow tables, on the client's side (the server builds the
messages in jobs/service/wire.py)."""

from __future__ import annotations

import pyarrow as pa

from jobs.api.spec_proto import value_from_proto
from jobs.proto.foveate.v1 import jobs_pb2 as pb

RECORD_FIELDS = [f.name for f in pb.AttentionRecord.DESCRIPTOR.fields]
_REPEATED = {f.name for f in pb.AttentionRecord.DESCRIPTOR.fields if f.is_repeated}
# proto3 `optional` fields: left out of a row (None) when the server did not set them.
_OPTIONAL = {f.name for f in pb.AttentionRecord.DESCRIPTOR.fields if f.has_presence and f.name not in _REPEATED}
# A trial's parameter `model.num_glimpses` is the trials table's column `param.model.num_glimpses`.
PARAM_PREFIX = "param."


def trials_to_table(resp: pb.ListTrialsResponse) -> pa.Table:
    """The client's side: the rows back as a table with the server's column order."""
    rows = [{k: value_from_proto(v) for k, v in r.values.items()} for r in resp.rows]
    return pa.table({c: [r.get(c) for r in rows] for c in resp.columns}) if resp.columns else pa.table({})


def attention_to_table(resp: pb.GetAttentionResponse) -> pa.Table:
    """The client's side: records back as a table with jobs/run/records.py's column names."""
    if not resp.records:
        return pa.table({})
    rows = []
    for r in resp.records:
        rows.append({f: list(getattr(r, f)) if f in _REPEATED else
                     None if f in _OPTIONAL and not r.HasField(f) else getattr(r, f) for f in RECORD_FIELDS})
    return pa.Table.from_pylist(rows)
