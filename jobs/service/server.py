"""The gRPC server: a thin servicer over `jobs.service.job_service.JobService` (grpc's examples/python/errors style).

    server, port = create_server("127.0.0.1:0", service, token="s3cret")
    server.start(); server.wait_for_termination()

Each RPC converts its request, calls the service and converts the answer; errors become status codes
with the service's message, which names the field or the job: SpecError / UserError → INVALID_ARGUMENT,
JobNotFound / LookupError → NOT_FOUND, JobStateError → FAILED_PRECONDITION, ClusterUnavailable →
UNAVAILABLE; an export the exporter refused → INVALID_ARGUMENT, one that ran too long →
DEADLINE_EXCEEDED, one that failed → INTERNAL with the exporter's last line; a missing or wrong
`authorization: Bearer <token>` → UNAUTHENTICATED, anything else → INTERNAL (and a logged traceback).
Without a token the server only binds to loopback.

Untrusted input is bounded before it reaches the service or SQLite: every string the service stores or
filters by has a length limit (LIMITS, INVALID_ARGUMENT naming the field), page tokens are checked to be
ours, a ListJobs page stops short of PAGE_BYTES, and at most `max_streams` WatchJob, StreamLogs and
ExportModel streams are open at once (RESOURCE_EXHAUSTED past it): a stream holds a thread of its pool
for its life (an export's while the model is built).

The server is grpc.aio (jobs/service/aioloop.py says why); the handlers below are plain blocking Python,
adapted by `_unary` and `_stream`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jobs.api.errors import UserError
from jobs.api.spec import SpecError
from jobs.api.spec_proto import spec_from_proto
from jobs.api.states import KIND_FROM_PROTO, STATE_FROM_PROTO, WITH_RAY
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.proto.foveate.v1 import jobs_pb2_grpc as pb_grpc
from jobs.service import aioloop, wire
from jobs.service.catalog import JobNotFound
from jobs.service.exports import ExportFailed, ExportRefused, ExportTimedOut
from jobs.service.job_service import ClusterUnavailable, JobService, JobStateError

log = logging.getLogger("foveate.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["JobService"].full_name
MAX_REQUEST_BYTES = 4 << 20  # a spec is a few KB; anything near this is a mistake or an attack
MAX_RESPONSE_BYTES = 64 << 20  # attention records carry images
MAX_PAGE = 500
PAGE_BYTES = 4 << 20  # a ListJobs page stops before this many bytes of jobs (the send limit is far above)
MAX_MESSAGE_CHARS = 2000  # status details travel in a trailer; an error quoting a huge value is cut short
# Longest accepted value of each string field a request stores or filters by (ids are "job-" + 12 hex).
LIMITS = {"owner": 256, "request_id": 128, "job_id": 128, "model": 256, "trial": 256, "family": 256,
          "page_token": 64}


class RpcAbort(Exception):
    """Abort the current RPC with `code` and a message for the user."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    code, message = _code(exc)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"... ({len(message)} characters)"
    return code, message


def _code(exc: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, RpcAbort):
        return exc.code, str(exc)
    if isinstance(exc, SpecError | UserError | ExportRefused):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, ExportTimedOut):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, ExportFailed):  # the exporter's own log went to the service's log already
        return grpc.StatusCode.INTERNAL, str(exc)
    if isinstance(exc, JobNotFound) or type(exc) is LookupError:
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, JobStateError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, ClusterUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    log.exception("internal error")
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


class StreamSlots:
    """At most `limit` streams at once; `take()` returns the slot's release (safe to call twice)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def take(self) -> Callable[[], None]:
        with self._lock:
            if self._open >= self.limit:
                raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"streams: {self.limit} WatchJob/StreamLogs/ExportModel streams are open, this "
                               "server's limit; retry later, or poll GetJob")
            self._open += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if not released.is_set():
                    released.set()
                    self._open -= 1
        return release

    @property
    def open(self) -> int:
        return self._open


def _unary(inline: bool = False) -> Callable[[Callable], Callable]:
    """An async handler over a blocking one, `fn(self, request)`: run on the event loop when `inline`
    (catalog reads that take well under a millisecond: a thread hand-off would cost more than the
    read), else in the servicer's pool. The service's exceptions become status codes."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def unary(self, request, context):
            try:
                if inline:
                    return fn(self, request)
                return await asyncio.get_running_loop().run_in_executor(self.pool, fn, self, request)
            except Exception as exc:
                await context.abort(*_status(exc))
        return unary
    return wrap


def _stream(fn: Callable) -> Callable:
    """An async server stream over a blocking generator, `fn(self, request, ended)`, whose items are
    drawn in the servicer's stream pool. The stream takes one of the servicer's slots for its life:
    released when the generator ends, and as soon as the call ends (a client that goes away), when the
    service's waiting loops are woken so the generator sees `ended()` and returns too."""
    @functools.wraps(fn)
    async def stream(self, request, context):
        try:
            release = self.streams.take()
        except RpcAbort as exc:
            await context.abort(*_status(exc))
        gone = threading.Event()

        def ended(_context: Any = None) -> None:
            gone.set()
            release()
            self.service.wake_watchers()

        context.add_done_callback(ended)
        try:
            async for item in aioloop.iterate_in(self.stream_pool, fn(self, request, gone.is_set)):
                yield item
        except Exception as exc:
            await context.abort(*_status(exc))
        finally:
            release()
    return stream


def _invalid(message: str) -> RpcAbort:
    return RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, message)


def _bounded(field: str, value: str) -> str:
    """`value` if within LIMITS[field] characters, else INVALID_ARGUMENT naming the field."""
    if len(value) > LIMITS[field]:
        raise _invalid(f"{field}: at most {LIMITS[field]} characters (got {len(value)})")
    return value


def _job_id(request: Any) -> str:
    if not request.job_id:
        raise _invalid("job_id: required")
    return _bounded("job_id", request.job_id)


class JobServicer(pb_grpc.JobServiceServicer):
    """foveate.v1.JobService over a JobService; at most `max_streams` streams open at once."""

    def __init__(self, service: JobService, max_streams: int = 16, max_workers: int = 32):
        self.service = service
        self.streams = StreamSlots(max_streams)
        self.jobs = wire.JobMessages()
        # Blocking calls (submit's validation and fsync, Ray, run files) and streams have pools of their
        # own, so open streams never keep a unary call waiting for a thread.
        self.pool = futures.ThreadPoolExecutor(max_workers, thread_name_prefix="foveate-rpc")
        self.stream_pool = futures.ThreadPoolExecutor(max_streams, thread_name_prefix="foveate-stream")

    @_unary()
    def SubmitJob(self, request: pb.SubmitJobRequest) -> pb.SubmitJobResponse:
        if not request.HasField("spec"):
            raise _invalid("spec: required")
        _bounded("owner", request.owner)
        _bounded("request_id", request.request_id)
        try:
            spec = spec_from_proto(request.spec)
            if request.validate_only:
                return pb.SubmitJobResponse(job=wire.validated_job(self.service.validate(spec)))
            rec = self.service.submit(spec, owner=request.owner, priority=request.priority,
                                      request_id=request.request_id)
        except SpecError:
            raise
        except (ValueError, TypeError, ArithmeticError) as exc:  # a model config refusing a value its way
            raise SpecError(f"spec: {exc}") from None
        return pb.SubmitJobResponse(job=self.jobs(rec))

    @_unary(inline=True)
    def GetJob(self, request: pb.GetJobRequest) -> pb.Job:
        return self.jobs(self.service.get(_job_id(request)))

    @_unary(inline=True)
    def ListJobs(self, request: pb.ListJobsRequest) -> pb.ListJobsResponse:
        if request.page_size < 0:
            raise _invalid("page_size: must be >= 0")
        size = min(request.page_size or 50, MAX_PAGE)
        states = []
        for s in request.states:
            if s == pb.JOB_STATE_UNSPECIFIED:
                continue
            if s not in STATE_FROM_PROTO:
                raise _invalid(f"states: unknown state {s}")
            states.append(STATE_FROM_PROTO[s])
        kind = ""
        if request.kind != pb.JOB_KIND_UNSPECIFIED:
            if request.kind not in KIND_FROM_PROTO:
                raise _invalid(f"kind: unknown job kind {request.kind}")
            kind = KIND_FROM_PROTO[request.kind]
        before = _decode_token(request.page_token) if request.page_token else None
        keys = self.service.list_keys(states=states, kind=kind, model=_bounded("model", request.model),
                                      owner=_bounded("owner", request.owner), before_seq=before, limit=size + 1)
        # Messages already built for a job's current rev are reused; only the others are read whole (a job
        # that changed in between is read at its newer rev, which is as right an answer).
        built = {job_id: self.jobs.peek(job_id, rev) for job_id, rev, _ in keys[:size]}
        missing = [job_id for job_id, msg in built.items() if msg is None]
        built |= {rec.id: self.jobs(rec) for rec in self.service.get_many(missing)} if missing else {}
        jobs, used = [], 0
        for job_id, _, _ in keys[:size]:
            job = built[job_id]
            used += job.ByteSize() + 8  # + the field's tag and length
            if jobs and used > PAGE_BYTES:
                break  # big jobs (long specs, old long owners): the rest go on the next page
            jobs.append(job)
        token = _encode_token(keys[len(jobs) - 1][2]) if len(jobs) < len(keys) else ""
        return pb.ListJobsResponse(jobs=jobs, next_page_token=token)

    @_unary()
    def CancelJob(self, request: pb.CancelJobRequest) -> pb.Job:
        return self.jobs(self.service.cancel(_job_id(request)))

    @_stream
    def WatchJob(self, request: pb.WatchJobRequest, ended: Callable[[], bool]) -> Iterator[pb.JobEvent]:
        for event in self.service.watch(_job_id(request), cancelled=ended):
            job = self.jobs(event[1])
            if event[0] == "state":
                yield pb.JobEvent(job=job, state_change=wire.state_change(event[2]))
            else:
                _, _, trial, epoch, metrics = event
                yield pb.JobEvent(job=job, epoch=pb.EpochMetrics(trial=trial, epoch=epoch, metrics=metrics))

    @_stream
    def StreamLogs(self, request: pb.StreamLogsRequest, ended: Callable[[], bool]) -> Iterator[pb.LogChunk]:
        for text in self.service.logs(_job_id(request), request.follow, cancelled=ended):
            for i in range(0, len(text), 1 << 20):  # keep each message far below the size limit
                yield pb.LogChunk(text=text[i:i + (1 << 20)])

    @_unary()
    def ListTrials(self, request: pb.ListTrialsRequest) -> pb.ListTrialsResponse:
        return wire.trials_to_proto(*self.service.trials(_job_id(request)))

    @_unary()
    def GetAttention(self, request: pb.GetAttentionRequest) -> pb.GetAttentionResponse:
        if request.max_records < 0:
            raise _invalid("max_records: must be >= 0")
        epoch = request.epoch if request.HasField("epoch") else None
        epochs, chosen, table = self.service.attention(_job_id(request), _bounded("trial", request.trial), epoch)
        return wire.attention_to_proto(epochs, chosen, table, request.max_records)

    @_stream
    def ExportModel(self, request: pb.ExportModelRequest, ended: Callable[[], bool]) -> Iterator[pb.ExportChunk]:
        exported = self.service.export(_job_id(request), request.format, request.samples)
        yield from wire.export_chunks(exported)

    @_unary()
    def DescribeCluster(self, request: pb.DescribeClusterRequest) -> pb.ClusterInfo:
        snap, counts = self.service.describe()
        nodes = [pb.Node(node_id=n.node_id, ip=n.ip, alive=n.alive, is_head=n.is_head, cpus=n.cpus,
                         cpus_used=n.cpus_used, gpus=n.gpus, gpus_used=n.gpus_used, resources=n.resources)
                 for n in snap.nodes]
        alive = [n for n in snap.nodes if n.alive]
        return pb.ClusterInfo(
            address=self.service.ray.address, ray_version=snap.ray_version, nodes=nodes, cpus=snap.cpus,
            cpus_used=sum(n.cpus_used for n in alive), gpus=snap.gpus, gpus_used=sum(n.gpus_used for n in alive),
            queued_jobs=counts["QUEUED"], running_jobs=sum(counts[s] for s in WITH_RAY),
            max_running=self.service.config.max_running)

    @_unary()
    def ListModels(self, request: pb.ListModelsRequest) -> pb.ListModelsResponse:
        return wire.models_to_proto(_bounded("family", request.family))


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode()


def _decode_token(token: str) -> int:
    """The seq a page token holds; INVALID_ARGUMENT for anything ListJobs did not hand out (the number
    must be a plain positive decimal that fits SQLite's 64-bit integers)."""
    bad = _invalid("page_token: not a token from ListJobs")
    if len(token) > LIMITS["page_token"]:
        raise bad
    try:
        version, seq = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").split(":")
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        raise bad from None
    if version != "v1" or not (seq.isascii() and seq.isdigit()) or not 0 < int(seq) < 2**63:
        raise bad
    return int(seq)


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Every call needs `authorization: Bearer <token>`, except gRPC health checks (load balancers
    and orchestrators probe without credentials)."""

    def __init__(self, token: str, exempt: tuple[str, ...] = ("/grpc.health.v1.Health/",)):
        self._expected = f"Bearer {token}".encode()
        self._exempt = exempt

    async def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(self._exempt):
            return await continuation(handler_call_details)
        got = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if isinstance(got, bytes):
            got = got.decode(errors="replace")
        if got and hmac.compare_digest(got.encode(), self._expected):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        message = ("missing credentials: send metadata 'authorization: Bearer <token>'" if not got
                   else "invalid token")

        async def deny(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

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


def check_listen(address: str, token: str | None, has_cert: bool, has_key: bool) -> None:
    """Refuse, naming the flag, a listening address that would serve without credentials beyond loopback,
    or half a TLS pair. `foveate serve` asks before it starts anything; create_server asks again."""
    if not token and not is_loopback(address):
        raise ValueError(f"--host: refusing to listen on {address} without a token; "
                         "give --token (or FOVEATE_TOKEN), or listen on 127.0.0.1")
    if has_cert != has_key:
        raise ValueError("--tls-cert and --tls-key: give both or neither")


def create_server(
    address: str,
    service: JobService,
    *,
    token: str | None = None,
    tls_cert: bytes | None = None,
    tls_key: bytes | None = None,
    max_workers: int = 32,
    max_streams: int | None = None,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> tuple[aioloop.Server, int]:
    """A (not yet started) server for `service` on `address` ("host:port", port 0 = a free one), and the
    port it bound. Without `token` only a loopback address is allowed; with `tls_cert` and `tls_key`
    (PEM bytes) the port is TLS. Also serves gRPC health checking and reflection. Blocking work runs in
    `max_workers` threads; at most `max_streams` (default: half of `max_workers`) WatchJob/StreamLogs/
    ExportModel streams are open at once, each holding one thread of a pool of their own. Stopping it
    turns the health checks to NOT_SERVING first."""
    max_streams = max_workers // 2 if max_streams is None else max_streams
    if not 0 < max_streams < max_workers:
        raise ValueError(f"max_streams: must be between 1 and max_workers - 1 ({max_workers - 1}); got {max_streams}")
    check_listen(address, token, bool(tls_cert), bool(tls_key))
    if token and not tls_cert and not is_loopback(address):
        log.warning("serving on %s with a token but without TLS: the token travels in clear text", address)
    servicer = JobServicer(service, max_streams, max_workers)
    health_servicer = health.aio.HealthServicer()

    async def build() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(
            interceptors=[TokenAuthInterceptor(token)] if token else [],
            options=[("grpc.max_receive_message_length", max_request_bytes),
                     ("grpc.max_send_message_length", max_response_bytes)])
        pb_grpc.add_JobServiceServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        if tls_cert:
            port = server.add_secure_port(address, grpc.ssl_server_credentials([(tls_key, tls_cert)]))
        else:
            port = server.add_insecure_port(address)
        return server, port

    try:
        server = aioloop.Server(build, pools=(servicer.pool, servicer.stream_pool))
    except RuntimeError as exc:  # grpc.aio's way of saying the port is taken
        raise OSError(f"could not bind {address}: {exc}") from None
    if not server.port:
        raise OSError(f"could not bind {address}")
    server.on_stop.append(health_servicer.enter_graceful_shutdown)  # NOT_SERVING while draining
    return server, server.port
