"""The gRPC server: a thin servicer over `jobs.service.job_service.JobService` (grpc's examples/python/errors style).

    server, port = create_server("127.0.0.1:0", service, token="s3cret")
    server.start(); server.wait_for_termination()

Each RPC converts its request, calls the service and converts the answer; errors become status codes
with the service's message, which names the field or the job: SpecError → INVALID_ARGUMENT,
JobNotFound / LookupError → NOT_FOUND, JobStateError → FAILED_PRECONDITION, ClusterUnavailable →
UNAVAILABLE, a missing or wrong `authorization: Bearer <token>` → UNAUTHENTICATED, anything else →
INTERNAL (and a logged traceback). Without a token the server only binds to loopback.
"""

from __future__ import annotations

import base64
import functools
import hmac
import inspect
import ipaddress
import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jobs.api.spec import SpecError
from jobs.api.spec_proto import spec_from_proto, spec_to_proto
from jobs.api.states import KIND_FROM_PROTO, STATE_FROM_PROTO, WITH_RAY
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.proto.foveate.v1 import jobs_pb2_grpc as pb_grpc
from jobs.service import wire
from jobs.service.catalog import JobNotFound
from jobs.service.job_service import ClusterUnavailable, JobService, JobStateError

log = logging.getLogger("foveate.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["JobService"].full_name
MAX_REQUEST_BYTES = 4 << 20  # a spec is a few KB; anything near this is a mistake or an attack
MAX_RESPONSE_BYTES = 64 << 20  # attention records carry images
MAX_PAGE = 500


class RpcAbort(Exception):
    """Abort the current RPC with `code` and a message for the user."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, RpcAbort):
        return exc.code, str(exc)
    if isinstance(exc, SpecError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, JobNotFound) or type(exc) is LookupError:
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, JobStateError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, ClusterUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    log.exception("internal error")
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def _rpc(fn: Callable) -> Callable:
    """Map the service's exceptions onto status codes, for unary and server-streaming handlers."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(self, request, context):
            try:
                yield from fn(self, request, context)
            except Exception as exc:
                context.abort(*_status(exc))
        return stream

    @functools.wraps(fn)
    def unary(self, request, context):
        try:
            return fn(self, request, context)
        except Exception as exc:
            context.abort(*_status(exc))
    return unary


def _job_id(request: Any) -> str:
    if not request.job_id:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "job_id: required")
    return request.job_id


class JobServicer(pb_grpc.JobServiceServicer):
    """foveate.v1.JobService over a JobService."""

    def __init__(self, service: JobService):
        self.service = service

    @_rpc
    def SubmitJob(self, request: pb.SubmitJobRequest, context) -> pb.SubmitJobResponse:
        if not request.HasField("spec"):
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "spec: required")
        try:
            spec = spec_from_proto(request.spec)
            if request.validate_only:
                return pb.SubmitJobResponse(job=pb.Job(spec=spec_to_proto(self.service.validate(spec))))
            rec = self.service.submit(spec, owner=request.owner, priority=request.priority,
                                      request_id=request.request_id)
        except SpecError:
            raise
        except (ValueError, TypeError) as exc:  # a model config rejecting a value in its own words
            raise SpecError(f"spec: {exc}") from None
        return pb.SubmitJobResponse(job=wire.job_to_proto(rec))

    @_rpc
    def GetJob(self, request: pb.GetJobRequest, context) -> pb.Job:
        return wire.job_to_proto(self.service.get(_job_id(request)))

    @_rpc
    def ListJobs(self, request: pb.ListJobsRequest, context) -> pb.ListJobsResponse:
        if request.page_size < 0:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "page_size: must be >= 0")
        size = min(request.page_size or 50, MAX_PAGE)
        states = []
        for s in request.states:
            if s == pb.JOB_STATE_UNSPECIFIED:
                continue
            if s not in STATE_FROM_PROTO:
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"states: unknown state {s}")
            states.append(STATE_FROM_PROTO[s])
        kind = ""
        if request.kind != pb.JOB_KIND_UNSPECIFIED:
            if request.kind not in KIND_FROM_PROTO:
                raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"kind: unknown job kind {request.kind}")
            kind = KIND_FROM_PROTO[request.kind]
        before = _decode_token(request.page_token) if request.page_token else None
        recs = self.service.list(states=states, kind=kind, model=request.model, owner=request.owner,
                                 before_seq=before, limit=size + 1)
        token = _encode_token(recs[size - 1].seq) if len(recs) > size else ""
        return pb.ListJobsResponse(jobs=[wire.job_to_proto(r) for r in recs[:size]], next_page_token=token)

    @_rpc
    def CancelJob(self, request: pb.CancelJobRequest, context) -> pb.Job:
        return wire.job_to_proto(self.service.cancel(_job_id(request)))

    @_rpc
    def WatchJob(self, request: pb.WatchJobRequest, context):
        for event in self.service.watch(_job_id(request), cancelled=lambda: not context.is_active()):
            job = wire.job_to_proto(event[1])
            if event[0] == "state":
                yield pb.JobEvent(job=job, state_change=wire.state_change(event[2]))
            else:
                _, _, trial, epoch, metrics = event
                yield pb.JobEvent(job=job, epoch=pb.EpochMetrics(trial=trial, epoch=epoch, metrics=metrics))

    @_rpc
    def StreamLogs(self, request: pb.StreamLogsRequest, context):
        for text in self.service.logs(_job_id(request), request.follow, cancelled=lambda: not context.is_active()):
            for i in range(0, len(text), 1 << 20):  # keep each message far below the size limit
                yield pb.LogChunk(text=text[i:i + (1 << 20)])

    @_rpc
    def ListTrials(self, request: pb.ListTrialsRequest, context) -> pb.ListTrialsResponse:
        return wire.trials_to_proto(*self.service.trials(_job_id(request)))

    @_rpc
    def GetAttention(self, request: pb.GetAttentionRequest, context) -> pb.GetAttentionResponse:
        if request.max_records < 0:
            raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "max_records: must be >= 0")
        epoch = request.epoch if request.HasField("epoch") else None
        epochs, chosen, table = self.service.attention(_job_id(request), request.trial, epoch)
        return wire.attention_to_proto(epochs, chosen, table, request.max_records)

    @_rpc
    def DescribeCluster(self, request: pb.DescribeClusterRequest, context) -> pb.ClusterInfo:
        snap, counts = self.service.describe()
        nodes = [pb.Node(node_id=n.node_id, ip=n.ip, alive=n.alive, is_head=n.is_head, cpus=n.cpus,
                         cpus_used=n.cpus_used, gpus=n.gpus, gpus_used=n.gpus_used) for n in snap.nodes]
        alive = [n for n in snap.nodes if n.alive]
        return pb.ClusterInfo(
            address=self.service.ray.address, ray_version=snap.ray_version, nodes=nodes, cpus=snap.cpus,
            cpus_used=sum(n.cpus_used for n in alive), gpus=snap.gpus, gpus_used=sum(n.gpus_used for n in alive),
            queued_jobs=counts["QUEUED"], running_jobs=sum(counts[s] for s in WITH_RAY),
            max_running=self.service.config.max_running)

    @_rpc
    def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        return wire.models_to_proto(request.family)


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        version, seq = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if version != "v1":
            raise ValueError
        return int(seq)
    except Exception:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: not a token from ListJobs") from None


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Every call needs `authorization: Bearer <token>`, except gRPC health checks (load balancers
    and orchestrators probe without credentials)."""

    def __init__(self, token: str, exempt: tuple[str, ...] = ("/grpc.health.v1.Health/",)):
        self._expected = f"Bearer {token}".encode()
        self._exempt = exempt

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(self._exempt):
            return continuation(handler_call_details)
        got = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if isinstance(got, bytes):
            got = got.decode(errors="replace")
        if got and hmac.compare_digest(got.encode(), self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        message = ("missing credentials: send metadata 'authorization: Bearer <token>'" if not got
                   else "invalid token")

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_server(
    address: str,
    service: JobService,
    *,
    token: str | None = None,
    tls_cert: bytes | None = None,
    tls_key: bytes | None = None,
    max_workers: int = 32,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> tuple[grpc.Server, int]:
    """A (not yet started) server for `service` on `address` ("host:port", port 0 = a free one), and the
    port it bound. Without `token` only a loopback address is allowed; with `tls_cert` and `tls_key`
    (PEM bytes) the port is TLS. Also serves gRPC health checking and reflection."""
    if not token and not is_loopback(address):
        raise ValueError(f"--host: refusing to listen on {address} without a token; "
                         "give --token (or FOVEATE_TOKEN), or listen on 127.0.0.1")
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("--tls-cert and --tls-key: give both or neither")
    if token and not tls_cert and not is_loopback(address):
        log.warning("serving on %s with a token but without TLS: the token travels in clear text", address)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="foveate-rpc"),
        interceptors=[TokenAuthInterceptor(token)] if token else [],
        options=[("grpc.max_receive_message_length", max_request_bytes),
                 ("grpc.max_send_message_length", max_response_bytes)])
    pb_grpc.add_JobServiceServicer_to_server(JobServicer(service), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if tls_cert:
        creds = grpc.ssl_server_credentials([(tls_key, tls_cert)])
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if not port:
        raise OSError(f"could not bind {address}")
    server.health_servicer = health_servicer  # type: ignore[attr-defined]  # for a graceful NOT_SERVING
    return server, port
