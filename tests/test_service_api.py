"""The job service's API contract on a real server: status codes, auth, TLS, size limits, health and
reflection, listing with filters and pages, and malformed specs (hypothesis) that must come back as
INVALID_ARGUMENT, never an internal error. The queue is paused (max_running=0): no job runs here."""

from __future__ import annotations

import base64
import datetime
import threading
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_harness import TOKEN, running_server, tiny_spec

from cluster.jobs_api import RayJobsAPI
from jobs.api.client import ClientError, FoveateClient
from jobs.api.spec_proto import spec_dict_to_proto
from jobs.api.states import state_name
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.service.job_service import JobService, ServiceConfig
from jobs.service.server import create_server

pytestmark = pytest.mark.ray
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def paused(ray_head, tiny_dataset, tmp_path_factory):
    """(client, port, spec dict) of a server whose queue never starts a job."""
    tmp = tmp_path_factory.mktemp("api")
    with running_server(ray_head, str(tmp / "c.db"), max_running=0) as (client, _, port):
        yield client, port, tiny_spec(tiny_dataset, str(tmp / "out"))


def _error(fn) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn()
    return info.value


def test_every_rpc_needs_the_token_except_health(paused):
    _, port, _ = paused
    for token, says in ((None, "missing credentials"), ("wrong", "invalid token")):
        with FoveateClient(f"127.0.0.1:{port}", token) as anon:
            for call in (lambda c: c.get("x"), lambda c: c.list(), lambda c: list(c.watch("x")),
                         lambda c: list(c.logs("x")), lambda c: c.cluster()):
                err = _error(lambda c=anon, call=call: call(c))
                assert err.code == grpc.StatusCode.UNAUTHENTICATED and says in str(err)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="foveate.v1.JobService"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_describes_the_service(paused):
    _, port, _ = paused
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        reqs = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="foveate.v1.JobService")]
        answers = list(stub.ServerReflectionInfo(iter(reqs), metadata=[("authorization", f"Bearer {TOKEN}")]))
    assert "foveate.v1.JobService" in {s.name for s in answers[0].list_services_response.service}
    fd = descriptor_pb2.FileDescriptorProto.FromString(answers[1].file_descriptor_response.file_descriptor_proto[0])
    assert fd.name == "foveate/v1/jobs.proto" and "SubmitJob" in {m.name for m in fd.service[0].method}


def test_not_found_and_invalid_requests(paused):
    client, _, spec = paused
    for call in (lambda: client.get("job-nope"), lambda: client.cancel("job-nope"),
                 lambda: list(client.watch("job-nope")), lambda: list(client.logs("job-nope")),
                 lambda: client.trials("job-nope"), lambda: client.attention("job-nope")):
        err = _error(call)
        assert err.code == NOT_FOUND and "job-nope" in str(err)
    assert _error(lambda: client.get("")).code == INVALID
    assert str(_error(lambda: client.list(page_token="garbage"))) == "page_token: not a token from ListJobs"
    assert _error(lambda: client.list(page_size=-1)).code == INVALID
    err = _error(lambda: client._call("SubmitJob", pb.SubmitJobRequest()))
    assert (err.code, str(err)) == (INVALID, "spec: required")


@pytest.mark.parametrize("change, field", [
    ({"optim": {"lr": -1.0}}, "optim.lr: must be > 0"),
    ({"data": {"path": "/tmp/foveate-nonexistent/ds"}}, "data.path: no dataset at /tmp/foveate-nonexistent/ds"),
    ({"data": {"path": "/nonexistent/ds"}}, "data.path: must lie under one of"),
    ({"storage_path": "/etc"}, "storage_path: must lie under one of"),
    ({"scaling": {"num_workers": 64}}, "scaling: 64 workers"),
    ({"model": {"overrides": {"num_glimpses": 0}}}, "model.num_glimpses"),
    ({"kind": "tune", "tune": {"params": {"bogus.key": {"choice": [1]}}}, "scaling": {"num_workers": 1}},
     "tune.params.bogus.key"),
])
def test_invalid_specs_are_invalid_argument_naming_the_field(paused, change, field):
    client, _, spec = paused
    bad = {**spec, **{k: ({**spec.get(k, {}), **v} if isinstance(v, dict) else v) for k, v in change.items()}}
    err = _error(lambda: client.submit(bad))
    assert err.code == INVALID and str(err).startswith(field), str(err)


def test_validate_only_normalises_and_creates_nothing(paused):
    client, _, spec = paused
    before = len(client.list_all())
    checked = client.validate(spec)
    assert checked.optim.lr == pytest.approx(1e-3) and checked.checkpoint.keep == 2  # defaults filled in
    assert client.submit(spec, validate_only=True).planned_trials == 0  # a train job plans no trials
    # A grid of 3 repeated twice: the verdict says the search's size before anything runs.
    tune = {**spec, "kind": "tune", "scaling": {"num_workers": 1},
            "tune": {"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2, 3]}}, "num_trials": 2}}
    assert client.submit(tune, validate_only=True).planned_trials == 6
    assert len(client.list_all()) == before


def test_requests_over_the_size_limit_are_refused(paused):
    client, _, spec = paused
    huge = {**spec, "model": {"name": "ram-cluttered60", "overrides": {"core": "x" * (5 << 20)}}}
    assert _error(lambda: client.submit(huge)).code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_list_filters_and_pages(paused, tmp_path):
    client, _, spec = paused
    tune = {**spec, "kind": "tune", "tune": {"space": "none", "params": {"lr": {"choice": [0.001]}}},
            "scaling": {"num_workers": 1}}
    made = [client.submit(spec, owner="ann"), client.submit(spec, owner="bob"),
            client.submit({**spec, "model": {"name": "ram-mnist28"}}, owner="ann"),
            client.submit(tune, owner="ann"), client.submit(tune, owner="bob")]
    again = client.submit(spec, owner="ann", request_id="retry-1")
    assert client.submit(spec, owner="ann", request_id="retry-1").id == again.id  # idempotent retry
    made.append(again)
    ids = [j.id for j in made]

    mine = [j.id for j in client.list_all() if j.id in ids]
    assert mine == ids[::-1]  # newest first
    pages, token = [], ""
    while True:
        page = client.list(page_size=2, page_token=token)
        pages.append([j.id for j in page.jobs])
        token = page.next_page_token
        if not token:
            break
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) and set(ids) <= set(flat) and all(len(p) <= 2 for p in pages)

    def listed(**f):
        return {j.id for j in client.list_all(**f)} & set(ids)

    assert listed(owner="bob") == {ids[1], ids[4]}
    assert listed(kind="tune") == {ids[3], ids[4]}
    assert listed(model="ram-mnist28") == {ids[2]}
    assert listed(kind="train", owner="ann") == {ids[0], ids[2], ids[5]}
    client.cancel(ids[0])
    assert listed(states=["CANCELLED"]) == {ids[0]}
    assert listed(states=["QUEUED"]) == set(ids[1:])
    assert state_name(client.get(ids[0]).state) == "CANCELLED"
    info = client.cluster()
    assert info.max_running == 0 and info.queued_jobs >= 5


def test_an_unreachable_ray_is_unavailable(tmp_path, tiny_dataset):
    config = ServiceConfig(db_path=str(tmp_path / "c.db"), storage_roots=(str(tmp_path),), data_roots=(tiny_dataset,))
    service = JobService(config, RayJobsAPI("http://127.0.0.1:9", None)).start()
    server, port = create_server("127.0.0.1:0", service)
    server.start()
    try:
        with FoveateClient(f"127.0.0.1:{port}") as client:
            err = _error(lambda: client.submit(tiny_spec(tiny_dataset, str(tmp_path))))
            assert err.code == grpc.StatusCode.UNAVAILABLE and "127.0.0.1:9" in str(err)
    finally:
        server.stop(None)
        service.stop()


# ------------------------------------------------------------------- hostile input, races and load


@pytest.mark.parametrize("token", [
    base64.urlsafe_b64encode(b"v1:" + b"9" * 40).decode(),  # overflows SQLite's integers
    base64.urlsafe_b64encode(b"v1:-5").decode(), base64.urlsafe_b64encode(b"v1:0").decode(),
    base64.urlsafe_b64encode("v1:١٢".encode()).decode(),  # digits int() reads, but no token of ours
    base64.urlsafe_b64encode(b"v2:12").decode(), "é" * 10, "x" * 100_000, "====", "v1:12",
])
def test_page_tokens_that_are_not_ours_are_invalid_argument(paused, token):
    client, _, _ = paused
    err = _error(lambda: client.list(page_token=token))
    assert (err.code, str(err)) == (INVALID, "page_token: not a token from ListJobs")


def test_absurd_strings_are_refused_naming_the_field(paused):
    client, _, spec = paused
    huge = "j" * (1 << 20)
    for call, field in ((lambda: client.get(huge), "job_id"), (lambda: client.cancel(huge), "job_id"),
                        (lambda: list(client.watch(huge)), "job_id"), (lambda: client.trials(huge), "job_id"),
                        (lambda: client.attention(huge), "job_id"), (lambda: client.list(owner=huge), "owner"),
                        (lambda: client.list(model=huge), "model"), (lambda: client.models(huge), "family"),
                        (lambda: client.submit(spec, owner="o" * 257), "owner"),
                        (lambda: client.submit(spec, request_id="r" * 129), "request_id")):
        err = _error(call)
        assert err.code == INVALID and str(err).startswith(f"{field}: at most "), str(err)[:200]
    assert client.submit(spec, owner="o" * 256, request_id="r" * 128).owner == "o" * 256  # the limits themselves pass
    for weird in ("job-\x00", "../../etc/passwd", "ジョブ", " ", "job-" + "f" * 124):
        assert _error(lambda w=weird: client.get(w)).code == NOT_FOUND
    job = client.submit(spec)
    assert _error(lambda: client.attention(job.id, max_records=-1)).code == INVALID
    assert client.attention_response(job.id, max_records=2**31 - 1).records == []
    assert client.list(page_size=2**31 - 1).jobs  # capped at the page limit, not refused


def test_request_ids_are_per_owner(paused):
    client, _, spec = paused
    ann = client.submit(spec, owner="ann", request_id="same-key")
    bob = client.submit(spec, owner="bob", request_id="same-key")
    assert ann.id != bob.id and bob.owner == "bob"
    assert client.submit(spec, owner="bob", request_id="same-key").id == bob.id


def test_concurrent_cancels_of_one_job_give_one_answer(paused):
    client, _, spec = paused
    job = client.submit(spec)
    answers = []

    def cancel():
        try:
            answers.append(state_name(client.cancel(job.id).state))
        except ClientError as exc:
            answers.append(exc.code.name)

    threads = [threading.Thread(target=cancel) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == ["CANCELLED"] * 16
    assert not client.get(job.id).ray_job_id


def test_a_list_page_stops_before_the_byte_budget(ray_head, tiny_dataset, tmp_path):
    from jobs.service import server as server_mod
    from jobs.service.catalog import JobRecord

    with running_server(ray_head, str(tmp_path / "c.db"), max_running=0) as (client, service, _):
        # 1 MB owners, as a catalog from before the owner limit may hold (70 of them broke listing).
        for i in range(20):
            service.catalog.insert(JobRecord(id=f"job-big{i:03d}", kind="train", model="ram-cluttered60",
                                             owner=f"{i:03d}" + "o" * (1 << 20), priority=0, state="QUEUED",
                                             spec={"name": f"job-big{i:03d}"}, run_dir=f"/r/{i}"))
        page = client.list(page_size=100)
        assert 0 < len(page.jobs) < 20 and page.ByteSize() <= server_mod.PAGE_BYTES
        ids, token = [], ""
        while True:
            page = client.list(page_size=100, page_token=token)
            ids += [j.id for j in page.jobs]
            token = page.next_page_token
            if not token:
                break
        assert ids == [f"job-big{i:03d}" for i in reversed(range(20))]  # every job, once, in order


def test_open_streams_leave_threads_for_unary_calls_and_health(ray_head, tiny_dataset, tmp_path):
    with running_server(ray_head, str(tmp_path / "c.db"), max_running=0, max_workers=32) as (client, _, port):
        job = client.submit(tiny_spec(tiny_dataset, str(tmp_path / "out")))
        req = pb.WatchJobRequest(job_id=job.id)
        calls, refused = [], 0
        for _ in range(100):
            call = client._stub.WatchJob(req, metadata=client._metadata, timeout=60)
            try:
                next(call)  # the replayed QUEUED state: this stream holds a server thread now
                calls.append(call)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "streams:" in exc.details()
                refused += 1
        assert (len(calls), refused) == (16, 84)  # half of the 32 threads
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            for _ in range(20):  # each within 2 s, or the call fails DEADLINE_EXCEEDED
                assert client._call("GetJob", pb.GetJobRequest(job_id=job.id), timeout=2).id == job.id
                assert health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == \
                    health_pb2.HealthCheckResponse.SERVING
        calls.pop().cancel()  # a client that goes away gives its slot back
        deadline = time.monotonic() + 10
        while True:
            call = client._stub.WatchJob(req, metadata=client._metadata, timeout=60)
            try:
                next(call)
                calls.append(call)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.1)
        for call in calls:
            call.cancel()


def test_binding_beyond_loopback_needs_a_token(tmp_path):
    service = JobService(ServiceConfig(db_path=str(tmp_path / "c.db")), RayJobsAPI("http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="without a token"):
        create_server("0.0.0.0:0", service)
    server, port = create_server("0.0.0.0:0", service, token="t")
    assert port > 0
    server.stop(None)
    service.catalog.close()


def _self_signed() -> tuple[bytes, bytes]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_tls_when_a_certificate_is_given(ray_head, tmp_path):
    cert, key = _self_signed()
    with running_server(ray_head, str(tmp_path / "c.db"), tls_cert=cert, tls_key=key) as (_, _, port):
        with FoveateClient(f"localhost:{port}", TOKEN, tls_ca=cert) as tls:
            assert tls.list().jobs == []
        with FoveateClient(f"localhost:{port}", TOKEN, timeout=3) as plain:
            assert _error(plain.list).code == grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------------------- malformed specs

_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
                  st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
_PATHS = ["kind", "name", "storage_path", "model", "model.name", "model.overrides", "data", "data.path",
          "data.probe_count", "data.max_train_samples", "optim", "optim.lr", "optim.epochs", "optim.batch_size",
          "optim.optimizer", "optim.schedule", "optim.grad_clip", "optim.eval_samples", "scaling",
          "scaling.num_workers", "scaling.cpus_per_worker", "scaling.use_gpu", "checkpoint.keep", "checkpoint.mode",
          "checkpoint.max_failures", "tune", "tune.num_trials", "tune.params", "tune.space", "tune.scheduler",
          "tune.search", "tune.grace_period", "tune.mode"]
_OVERRIDE_KEYS = st.one_of(st.sampled_from(["num_glimpses", "patch_size", "num_scales", "location_std", "core",
                                            "image_size", "scale_factor", "first_location"]), st.text(max_size=6))
_DIST = st.fixed_dictionaries({}).flatmap(lambda _: st.dictionaries(
    st.sampled_from(["choice", "uniform", "loguniform", "randint", "grid", "bogus"]),
    st.one_of(st.lists(st.one_of(st.integers(-3, 3), st.floats(-1, 1), st.text(max_size=3)), max_size=3), _JUNK),
    min_size=1, max_size=2))


@st.composite
def malformed(draw, spec):
    """A valid spec with a few fields replaced by junk (of any type) or junk overrides/params added."""
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.items()}
    if draw(st.booleans()):
        d["kind"] = "tune"
        d["tune"] = {"space": draw(st.sampled_from(["none", "default", "x"]))}
    for path in draw(st.lists(st.sampled_from(_PATHS), min_size=1, max_size=3)):
        section, _, name = path.partition(".")
        value = draw(_JUNK)
        if not name:
            d[section] = value
        elif isinstance(d.get(section), dict):
            d[section][name] = value
        else:
            d[section] = {name: value}
    if draw(st.booleans()):
        d.setdefault("model", {})
        if isinstance(d["model"], dict):
            d["model"]["overrides"] = draw(st.dictionaries(_OVERRIDE_KEYS, _JUNK, max_size=3))
    if draw(st.booleans()) and isinstance(d.get("tune"), dict):
        keys = st.one_of(st.sampled_from(["lr", "model.num_glimpses", "optim.batch_size", "model.nope"]),
                         st.text(max_size=5))
        d["tune"]["params"] = draw(st.dictionaries(keys, _DIST, max_size=3))
    return d


def test_malformed_specs_are_invalid_argument_never_internal(paused):
    client, _, spec = paused
    rejected = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(malformed(spec), st.sampled_from([0, 1, 2, 7]))
    def check(d, kind):
        try:
            msg = spec_dict_to_proto(d)
        except Exception:  # the client refuses what the proto cannot carry: craft the message by hand
            msg = spec_dict_to_proto(spec)
            msg.model.overrides["junk"].CopyFrom(pb.Value())
        if kind == 7:
            msg.kind = 7  # an enum number this server does not know
        try:
            client.submit(msg, validate_only=True)
        except ClientError as exc:
            assert exc.code == INVALID, f"{exc.code.name}: {exc} for {d}"
            rejected.append(str(exc))

    check()
    assert len(rejected) > 100  # the junk reached the server's validation, and it said why
    assert all(":" in r for r in rejected)


def test_cluster_commands_report_the_local_head(ray_head, tmp_path, capsys):
    from jobs.cli import main

    assert main(["cluster", "status", "--dir", ray_head.state_dir]) == 0
    out = capsys.readouterr().out
    assert ray_head.dashboard_url in out and "4 CPUs" in out and "head alive" in out
    assert main(["cluster", "up", "--dir", ray_head.state_dir]) == 0  # already up: the same head
    assert f"already running (pid {ray_head.pid})" in capsys.readouterr().out
    assert main(["cluster", "down", "--dir", str(tmp_path)]) == 0
    assert "no local Ray head was running" in capsys.readouterr().out
    assert main(["cluster", "status", "--dir", str(tmp_path)]) == 1
