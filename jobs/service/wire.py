"""Catalog records and run outputs as `foveate.v1` messages (the server's side of the wire).

The spec itself converts in jobs/api/spec_proto.py; this file builds the other messages from what the
service returns, and tables into messages (jobs/api/tables.py turns them back on the client's side).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from google.protobuf.timestamp_pb2 import Timestamp

from jobs.api.spec import JobSpec, SpecError
from jobs.api.spec_proto import spec_dict_to_proto, spec_to_proto, value_to_proto
from jobs.api.states import STATE_TO_PROTO
from jobs.api.tables import RECORD_FIELDS
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.run.layout import RunLayout
from jobs.service import exports
from jobs.service.catalog import JobRecord


def timestamp(t: float | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def state_change(change: tuple[str, float, str]) -> pb.StateChange:
    state, t, reason = change
    return pb.StateChange(state=STATE_TO_PROTO[state], time=timestamp(t), reason=reason)


def validated_job(spec: JobSpec) -> pb.Job:
    """SubmitJob's answer to validate_only: the spec as it would run, and a search's planned trials."""
    msg = pb.Job(spec=spec_to_proto(spec))
    if spec.kind == "tune":
        from jobs.run.search import planned_trials  # as in job_to_proto: the registry only when asked

        msg.planned_trials = planned_trials(spec)
    return msg


def job_to_proto(rec: JobRecord) -> pb.Job:
    msg = pb.Job(
        # The stored spec was normalised and validated at submit: convert it without validating again.
        id=rec.id, spec=spec_dict_to_proto(rec.spec), state=STATE_TO_PROTO[rec.state],
        history=[state_change(h) for h in rec.history], owner=rec.owner, priority=rec.priority,
        ray_job_id=rec.ray_job_id, run_dir=rec.run_dir, error=rec.error, created=timestamp(rec.created),
        cancel_requested=rec.cancel_requested)
    if rec.kind == "train":
        msg.attention_dir = RunLayout.at(rec.run_dir).attention_dir
    else:
        # Here, not at import: the search space reads the model registry, which a service that only reads
        # runs and train jobs never needs to load.
        from jobs.run.search import planned_trials

        with contextlib.suppress(SpecError):  # a spec an older version stored, its space no longer valid: unknown
            msg.planned_trials = planned_trials(JobSpec.from_dict(rec.spec))
    if rec.started is not None:
        msg.started.CopyFrom(timestamp(rec.started))
    if rec.finished is not None:
        msg.finished.CopyFrom(timestamp(rec.finished))
    if rec.result:
        msg.result.CopyFrom(result_to_proto(rec.result))
    return msg


class JobMessages:
    """job_to_proto, kept per (job id, rev) for the `size` most recent jobs: a record the catalog has not
    changed since (it bumps `rev` on every change) is answered with the message already built, so GetJob
    and ListJobs cost the catalog read and not the spec's conversion. Messages handed out are shared: the
    server only serialises them or copies them into a response, never changes them."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._lock = threading.Lock()
        self._built: OrderedDict[str, tuple[int, pb.Job]] = OrderedDict()

    def peek(self, job_id: str, rev: int) -> pb.Job | None:
        """The message built for this revision of the job, if it is still kept."""
        with self._lock:
            hit = self._built.get(job_id)
            if hit is None or hit[0] != rev:
                return None
            self._built.move_to_end(job_id)
            return hit[1]

    def __call__(self, rec: JobRecord) -> pb.Job:
        hit = self.peek(rec.id, rec.rev)
        if hit is not None:
            return hit
        msg = job_to_proto(rec)  # outside the lock: two threads may both build one; either result is right
        with self._lock:
            self._built[rec.id] = (rec.rev, msg)
            self._built.move_to_end(rec.id)
            while len(self._built) > self.size:
                self._built.popitem(last=False)
        return msg


def _metrics(d: Any) -> dict[str, float]:
    if not isinstance(d, dict):
        return {}
    return {k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def result_to_proto(r: dict[str, Any]) -> pb.JobResult:
    """result.json of a train run (metrics, checkpoint_path) or a tune run (best_*)."""
    msg = pb.JobResult(
        metrics=_metrics(r.get("metrics") or r.get("best_metrics")),
        checkpoint_path=str(r.get("checkpoint_path") or r.get("best_checkpoint") or ""),
        best_trial=str(r.get("best_trial") or ""), trials_table=str(r.get("trials_table") or ""))
    for k, v in (r.get("best_config") or {}).items():
        try:
            msg.best_params[k].CopyFrom(value_to_proto(v, k))
        except ValueError:
            msg.best_params[k].CopyFrom(pb.Value(string_value=str(v)))
    return msg


def row_value(v: Any) -> pb.Value | None:
    """A trials-table cell as a Value (None and NaN cells are left out of the row)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        return value_to_proto(v)
    except ValueError:
        return pb.Value(string_value=str(v))


def trials_to_proto(rows: list[dict[str, Any]], complete: bool, best: str) -> pb.ListTrialsResponse:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    out = pb.ListTrialsResponse(columns=columns, complete=complete, best_trial=best)
    for r in rows:
        row = out.rows.add(trial=str(r.get("trial", "")), epoch=int(r.get("epoch", 0) or 0))
        for k, v in r.items():
            pv = row_value(v)
            if pv is not None:
                row.values[k].CopyFrom(pv)
    return out


def attention_to_proto(epochs: list[int], epoch: int, table: pa.Table | None, limit: int) -> pb.GetAttentionResponse:
    out = pb.GetAttentionResponse(epochs=epochs, epoch=epoch)
    if table is None:
        return out
    if limit:
        table = table.slice(0, limit)
    cols = [c for c in RECORD_FIELDS if c in table.column_names]
    for row in table.select(cols).to_pylist():
        out.records.add(**{k: v for k, v in row.items() if v is not None})
    return out


def models_to_proto(family: str = "") -> pb.ListModelsResponse:
    """The registered model variants (of one family, or all) with their config fields and defaults."""
    import dataclasses

    from attention_models.registry import list_models, model_config, model_family  # torch-free

    families = {model_family(n) for n in list_models()}
    if family and family not in families:
        raise SpecError(f"family: unknown family {family!r}; known: {', '.join(sorted(families))}")
    out = pb.ListModelsResponse()
    for name in list_models(family or None):
        config = model_config(name)
        info = out.models.add(name=name, family=model_family(name))
        for f in dataclasses.fields(config):
            field = info.fields.add(name=f.name)
            value = getattr(config, f.name)
            if value is not None:
                field.default.CopyFrom(value_to_proto(value, f"model.{f.name}"))
    return out


def export_chunks(exported: exports.Exported) -> Iterator[pb.ExportChunk]:
    """An exported model as ExportModel's stream: the file's name, card and size first, its bytes in slices."""
    for i, (total, data) in enumerate(exports.chunks(exported.path)):
        if i == 0:
            yield pb.ExportChunk(file_name=exported.file_name, model_card_json=exported.card_json,
                                 size_bytes=total, data=data)
        else:
            yield pb.ExportChunk(data=data)
