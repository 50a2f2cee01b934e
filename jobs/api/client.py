"""A small Python client of the job service (the CLI and the dashboard use only this).

    with FoveateClient("127.0.0.1:50051", token="s3cret") as c:
        job = c.submit("examples/ram_cluttered60.yaml")
        for event in c.watch(job.id): ...
        table = c.attention(job.id)            # pyarrow Table, jobs/run/records.py's columns
        name, card, blob = c.export_model(job.id, "onnx")   # model-mean.onnx, its model card, its bytes

Methods return the `foveate.v1` messages (documented in jobs/proto/foveate/v1/jobs.proto), or pyarrow
tables for tabular answers. Failures raise `ClientError` with the status code and the server's message.
Address and token default to FOVEATE_SERVER and FOVEATE_TOKEN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pyarrow as pa

from jobs.api import paths, tables
from jobs.api.spec import JobSpec, read_spec_file
from jobs.api.spec_proto import spec_dict_to_proto, spec_to_proto, value_from_proto
from jobs.api.states import KIND_TO_PROTO, STATE_TO_PROTO
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.proto.foveate.v1 import jobs_pb2_grpc as pb_grpc

DEFAULT_SERVER = "127.0.0.1:50051"


def absolute_paths(d: dict[str, Any], base: Path | None = None) -> dict[str, Any]:
    """data.path and storage_path of a plain spec dict resolved here, where the user wrote them
    (jobs.api.paths.absolute_spec_paths): left out or empty, the server's default applies there."""
    return paths.absolute_spec_paths(d, base)


class ClientError(Exception):
    """A failed call: `code` is the grpc.StatusCode, str() the server's message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return ""


class FoveateClient:
    def __init__(self, address: str | None = None, token: str | None = None, *, tls_ca: bytes | None = None,
                 timeout: float = 30.0):
        self.address = address or os.environ.get("FOVEATE_SERVER") or DEFAULT_SERVER
        token = token if token is not None else os.environ.get("FOVEATE_TOKEN")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        opts = [("grpc.max_receive_message_length", 64 << 20)]
        if tls_ca is not None:
            self._channel = grpc.secure_channel(self.address, grpc.ssl_channel_credentials(tls_ca), options=opts)
        else:
            self._channel = grpc.insecure_channel(self.address, options=opts)
        self._stub = pb_grpc.JobServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> FoveateClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise ClientError(exc.code(), exc.details() or str(exc.code())) from None

    def _stream(self, method: str, request: Any) -> Iterator[Any]:
        call = getattr(self._stub, method)(request, metadata=self._metadata)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise ClientError(exc.code(), exc.details() or str(exc.code())) from None
        finally:
            call.cancel()

    # ------------------------------------------------------------------------------------ jobs

    @staticmethod
    def spec_message(spec: JobSpec | pb.JobSpec | dict | str | Path) -> pb.JobSpec:
        """A spec as a message: a JobSpec, a plain dict, a .yaml/.json path, or a message already.
        Dicts and files are sent as written (the server validates, so the client needs no models);
        local paths are made absolute here, where the user wrote them."""
        if isinstance(spec, pb.JobSpec):
            return spec
        if isinstance(spec, JobSpec):
            return spec_to_proto(spec.with_absolute_paths())
        if isinstance(spec, str | Path):
            spec = read_spec_file(spec)
        return spec_dict_to_proto(absolute_paths(spec))

    def submit(self, spec: Any, *, owner: str | None = None, priority: int = 0, request_id: str = "",
               validate_only: bool = False) -> pb.Job:
        """Queue a job (or only validate it); returns the job (without id when validate_only)."""
        req = pb.SubmitJobRequest(spec=self.spec_message(spec), validate_only=validate_only,
                                  owner=owner if owner is not None else _user(),
                                  priority=priority, request_id=request_id)
        return self._call("SubmitJob", req).job

    def validate(self, spec: Any) -> pb.JobSpec:
        """The spec as the service would run it (defaults filled in), or ClientError(INVALID_ARGUMENT)."""
        return self.submit(spec, validate_only=True).spec

    def get(self, job_id: str) -> pb.Job:
        return self._call("GetJob", pb.GetJobRequest(job_id=job_id))

    def list(self, *, states: list[str] = (), kind: str = "", model: str = "", owner: str = "",
             page_size: int = 0, page_token: str = "") -> pb.ListJobsResponse:
        """One page of jobs, newest first; states by name ("RUNNING"), kind "train"/"tune"."""
        req = pb.ListJobsRequest(states=[STATE_TO_PROTO[s.upper()] for s in states], kind=KIND_TO_PROTO.get(kind, 0),
                                 model=model, owner=owner, page_size=page_size, page_token=page_token)
        return self._call("ListJobs", req)

    def list_all(self, **filters: Any) -> list[pb.Job]:
        """Every matching job, following the pages."""
        jobs, token = [], ""
        while True:
            page = self.list(page_token=token, **filters)
            jobs += page.jobs
            token = page.next_page_token
            if not token:
                return jobs

    def cancel(self, job_id: str) -> pb.Job:
        return self._call("CancelJob", pb.CancelJobRequest(job_id=job_id))

    def watch(self, job_id: str) -> Iterator[pb.JobEvent]:
        """State changes and epoch metrics until the job ends (history first)."""
        return self._stream("WatchJob", pb.WatchJobRequest(job_id=job_id))

    def logs(self, job_id: str, follow: bool = False) -> Iterator[str]:
        for chunk in self._stream("StreamLogs", pb.StreamLogsRequest(job_id=job_id, follow=follow)):
            yield chunk.text

    def wait(self, job_id: str) -> pb.Job:
        """Block until the job ends; returns it."""
        for _ in self.watch(job_id):
            pass
        return self.get(job_id)

    # ---------------------------------------------------------------------------------- outputs

    def trials(self, job_id: str) -> pb.ListTrialsResponse:
        return self._call("ListTrials", pb.ListTrialsRequest(job_id=job_id))

    def trials_table(self, job_id: str) -> pa.Table:
        """A tune job's trials as a table (trial, epoch, param.*, metrics)."""
        return tables.trials_to_table(self.trials(job_id))

    def attention_response(self, job_id: str, trial: str = "", epoch: int | None = None,
                           max_records: int = 0) -> pb.GetAttentionResponse:
        req = pb.GetAttentionRequest(job_id=job_id, trial=trial, max_records=max_records)
        if epoch is not None:
            req.epoch = epoch
        return self._call("GetAttention", req)

    def attention(self, job_id: str, trial: str = "", epoch: int | None = None, max_records: int = 0) -> pa.Table:
        """Attention records (jobs/run/records.py's columns) of an epoch, the latest by default."""
        return tables.attention_to_table(self.attention_response(job_id, trial, epoch, max_records))

    def export_model(self, job_id: str, format: str = "onnx", samples: int = 0) -> tuple[str, dict[str, Any], bytes]:
        """(file name, model card, file bytes) of a SUCCEEDED job's model exported as `format` ("onnx" or
        "torchscript") with `samples` sampled glimpse paths (0 = the mean path): the options of
        jobs.api.exports.ExportRequest, checked by the service. The first request of a kind exports the
        model (seconds to minutes); the service keeps the file, so later ones only transfer it."""
        head, parts = None, []
        for chunk in self._stream("ExportModel", pb.ExportModelRequest(job_id=job_id, format=format, samples=samples)):
            if head is None:
                head = chunk
            parts.append(chunk.data)
        if head is None:
            raise ClientError(grpc.StatusCode.DATA_LOSS, f"export of job {job_id}: the service sent nothing")
        data = b"".join(parts)
        if len(data) != head.size_bytes:
            raise ClientError(grpc.StatusCode.DATA_LOSS, f"export of job {job_id}: {head.file_name} arrived with "
                                                          f"{len(data)} of its {head.size_bytes} bytes")
        return head.file_name, json.loads(head.model_card_json), data

    def cluster(self) -> pb.ClusterInfo:
        return self._call("DescribeCluster", pb.DescribeClusterRequest())

    def models(self, family: str = "") -> list[dict[str, Any]]:
        """The model variants the service knows: [{"name", "family", "defaults": {field: value or None}}]."""
        resp = self._call("ListModels", pb.ListModelsRequest(family=family))
        return [{"name": m.name, "family": m.family,
                 "defaults": {f.name: value_from_proto(f.default) if f.HasField("default") else None
                              for f in m.fields}} for m in resp.models]
