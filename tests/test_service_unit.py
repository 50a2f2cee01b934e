"""The job service against a scripted Ray Jobs API (tests/scripted_ray.py): the queue, reconcile, cancel
races, the storage and data roots at submission and start; and validation without torch."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cluster.connect import free_port
from cluster.jobs_api import RayJob
from jobs.api.spec import JobSpec, SpecError
from jobs.api.spec_proto import spec_dict_to_proto
from jobs.service.job_service import JobService, JobStateError, ServiceConfig

pytest_plugins = ["s3_harness"]

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_queue_starts_highest_priority_first_and_one_at_a_time(scripted):
    svc, ray, spec = scripted
    a = svc.submit(spec)
    svc._tick()
    low = svc.submit(spec, priority=0)
    high = svc.submit(spec, priority=5)
    svc._tick()
    assert ray.submitted == [a.id]
    assert svc.get(low.id).state == svc.get(high.id).state == "QUEUED"
    ray.table[a.id] = RayJob(a.id, "SUCCEEDED")
    svc._tick()
    assert svc.get(a.id).state == "SUCCEEDED"
    assert ray.submitted == [a.id, high.id] and svc.get(low.id).state == "QUEUED"


def test_a_submit_ray_already_has_is_recorded_not_repeated(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    ray.table[job.id] = RayJob(job.id, "RUNNING")  # a crash between Ray's submit and the catalog's PENDING
    svc._tick()
    assert ray.submitted == [] and svc.get(job.id).state == "PENDING"
    svc._tick()
    assert svc.get(job.id).state == "RUNNING"


def test_jobs_ray_forgot_fail_and_stopped_ones_are_cancelled(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    svc._tick()
    del ray.table[job.id]  # the cluster was replaced
    svc._tick()
    rec = svc.get(job.id)
    assert rec.state == "FAILED" and "no record" in rec.error
    other = svc.submit(spec)
    svc._tick()
    assert svc.cancel(other.id).state == "CANCELLED"
    assert [h[2] for h in svc.get(other.id).history][-1] == "cancelled by request"


# ------------------------------------------------------------- the service's roots, submit and start


def _with(spec: JobSpec, field: str, value: str) -> dict:
    d = spec.to_dict()
    if field == "data.path":
        d["data"]["path"] = value
    else:
        d[field] = value
    return d


REFUSED = [
    ("storage_path", "/etc", "must lie under one of"),
    ("storage_path", "/", "must lie under one of"),
    ("storage_path", "/proc/self", "must lie under one of"),
    ("storage_path", "~", "must lie under one of"),
    ("storage_path", "../../..", "must lie under one of"),
    ("storage_path", "/etc/passwd", "must lie under one of"),
    ("storage_path", "nonsense://x", "scheme 'nonsense://' is not served"),
    ("storage_path", "hdfs://namenode/runs", "scheme 'hdfs://' is not served"),
    ("storage_path", "~nosuchuser/x", "no user 'nosuchuser'"),
    ("data.path", "/etc", "must lie under one of"),
    ("data.path", "hdfs://namenode/data", "scheme 'hdfs://' is not served"),
    ("data.path", "~nosuchuser/x", "no user 'nosuchuser'"),
]


@pytest.mark.parametrize("field, value, rule", REFUSED, ids=[f"{f}={v}" for f, v, _ in REFUSED])
def test_paths_outside_the_roots_or_unserved_are_refused_at_submission(scripted, tmp_path, field, value, rule):
    svc, ray, spec = scripted
    bad = JobSpec.from_dict(_with(spec, field, value))
    for call in (svc.validate, svc.submit):
        with pytest.raises(SpecError, match=rf"^{field}: ") as err:
            call(bad)
        assert rule in str(err.value)
        if "must lie under" in rule:
            root = str(tmp_path / ("out" if field == "storage_path" else "data"))
            assert f"must lie under one of {root};" in str(err.value)
    assert svc.list() == [] and ray.submitted == []
    assert not list(Path("/etc").glob("job-*"))


def test_the_server_answers_invalid_argument_naming_the_field(scripted):
    """What a raw gRPC caller sends (no client-side resolution): refused by field, never INTERNAL."""
    import grpc

    from jobs.api.client import ClientError, FoveateClient
    from jobs.service.server import create_server

    svc, ray, spec = scripted
    server, port = create_server("127.0.0.1:0", svc)
    server.start()
    try:
        with FoveateClient(f"127.0.0.1:{port}") as client:
            for field, value, rule in REFUSED:
                for validate_only in (True, False):
                    with pytest.raises(ClientError) as err:
                        client.submit(spec_dict_to_proto(_with(spec, field, value)), validate_only=validate_only)
                    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, (field, value, str(err.value))
                    assert str(err.value).startswith(f"{field}: ") and rule in str(err.value)
            assert list(client.list().jobs) == []
    finally:
        server.stop(None)


def test_an_empty_storage_path_gets_the_first_storage_root(scripted, tmp_path):
    from jobs.api.paths import absolute

    svc, ray, spec = scripted
    root = absolute(str(tmp_path / "out"))
    empty = spec.replace(storage_path="")  # the runner's default (the spec's default, once it is "")
    assert svc.validate(empty).storage_path == root
    rec = svc.submit(empty)
    assert rec.spec["storage_path"] == root and rec.run_dir == f"{root}/{rec.id}"


def test_object_store_roots_admit_their_own_prefixes_only(tmp_path, scripted, s3, monkeypatch):
    _, ray, spec = scripted
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    s3.bucket("bucket")
    svc = JobService(ServiceConfig(db_path=str(tmp_path / "s3.db"), storage_roots=("s3://bucket/runs",),
                                   data_roots=(str(tmp_path / "data"),)), ray)
    try:
        assert svc.validate(spec.replace(storage_path="S3://bucket/runs//team-a/")).storage_path == \
            "s3://bucket/runs/team-a"
        for outside in ("s3://bucket/runs-old", "s3://other/runs", "gs://bucket/runs", str(tmp_path / "out")):
            with pytest.raises(SpecError, match="^storage_path: must lie under one of s3://bucket/runs;"):
                svc.validate(spec.replace(storage_path=outside))
    finally:
        svc.stop()


def test_object_storage_that_cannot_be_used_is_refused_in_one_line(tmp_path, scripted, s3, monkeypatch):
    """No such bucket, or an endpoint that does not answer: refused at submit, naming the URI and the
    cause, before any job is queued."""
    _, ray, spec = scripted
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    svc = JobService(ServiceConfig(db_path=str(tmp_path / "s3.db"), storage_roots=("s3://missing-bucket/runs",),
                                   data_roots=(str(tmp_path / "data"),)), ray)
    try:
        with pytest.raises(SpecError, match=r"^storage_path: s3://missing-bucket/runs: no bucket 'missing-bucket'"):
            svc.submit(spec.replace(storage_path="s3://missing-bucket/runs"))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
        with pytest.raises(SpecError, match=r"^storage_path: cannot reach s3://missing-bucket/runs: .*connect") as err:
            svc.submit(spec.replace(storage_path="s3://missing-bucket/runs"))
        assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
        assert svc.list() == [] and ray.submitted == []
    finally:
        svc.stop()


def test_a_job_whose_run_directory_cannot_be_written_fails_at_once_and_the_queue_moves_on(scripted, tmp_path):
    svc, ray, spec = scripted
    (tmp_path / "out").mkdir()
    blocked = svc.submit(spec.replace(storage_path=str(tmp_path / "out" / "blocked")))
    behind = svc.submit(spec)
    # A file where the blocked job's directory should be (created after its submission passed).
    (tmp_path / "out" / "blocked").write_text("not a directory")
    svc._tick()
    rec = svc.get(blocked.id)
    assert rec.state == "FAILED" and rec.history[-1][2] == "run directory not writable"
    assert rec.error.startswith(f"cannot write {rec.run_dir}/spec.json: ")
    assert ray.submitted == [behind.id] and svc.get(behind.id).state == "PENDING"
    # Submitted now, the same path is refused up front.
    with pytest.raises(SpecError, match=r"^storage_path: .*blocked is a file, not a directory"):
        svc.submit(spec.replace(storage_path=str(tmp_path / "out" / "blocked" / "x")))


def test_a_queued_job_outside_a_restarted_services_roots_fails_and_writes_nothing(scripted, tmp_path):
    svc, ray, spec = scripted
    job = svc.submit(spec)  # queued under tmp/out, not started
    moved = JobService(ServiceConfig(db_path=str(tmp_path / "c.db"), max_running=1, poll_interval=3600,
                                     storage_roots=(str(tmp_path / "elsewhere"),)), ray)
    try:
        moved._tick()
        rec = moved.get(job.id)
        assert rec.state == "FAILED" and rec.history[-1][2] == "outside the storage roots"
        assert rec.error.startswith(f"storage_path: must lie under one of {tmp_path / 'elsewhere'};")
        assert ray.submitted == [] and not (tmp_path / "out").exists()
    finally:
        moved.stop()


def test_service_roots_default_and_refusals(tmp_path, monkeypatch):
    from jobs.api.paths import DEFAULT_STORAGE_ROOT, absolute

    monkeypatch.chdir(tmp_path)
    config = ServiceConfig(db_path=":memory:")
    assert config.storage_roots == (absolute(DEFAULT_STORAGE_ROOT),)
    assert config.data_roots == (str(tmp_path), absolute(DEFAULT_STORAGE_ROOT))
    with pytest.raises(SpecError, match="^storage_roots: give at least one"):
        ServiceConfig(storage_roots=())
    with pytest.raises(SpecError, match="^data_roots: scheme 'http://' is not served"):
        ServiceConfig(data_roots=("http://example.com/",))


def test_a_cancel_during_dispatch_waits_for_it_and_stops_the_job_in_ray(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    in_submit, go_on = threading.Event(), threading.Event()
    ray.on_submit = lambda sid: (in_submit.set(), go_on.wait(10))
    ray.lose_stops = 0
    dispatch = threading.Thread(target=svc._tick)
    dispatch.start()
    assert in_submit.wait(10)  # Ray has the job; the catalog still says QUEUED
    answers = []
    cancels = [threading.Thread(target=lambda: answers.append(svc.cancel(job.id, wait_s=5))) for _ in range(2)]
    for t in cancels:
        t.start()
    time.sleep(0.3)  # let the cancels reach the dispatch's lock (were they later, they would pass the same)
    go_on.set()
    for t in (dispatch, *cancels):
        t.join(15)
    assert [a.state for a in answers] == ["CANCELLED", "CANCELLED"]  # both cancels agree
    assert ray.table[job.id].status == "STOPPED" and ray.stops and set(ray.stops) == {job.id}
    states = [h[0] for h in svc.get(job.id).history]
    assert states[:2] == ["QUEUED", "PENDING"] and states[-1] == "CANCELLED" and states.count("CANCELLED") == 1


def test_concurrent_cancels_of_a_queued_job_never_ask_ray(scripted):
    svc, ray, spec = scripted
    blocker = svc.submit(spec, priority=9)
    svc._tick()  # the one slot is taken: the next job stays queued
    job = svc.submit(spec)
    answers, errors = [], []

    def cancel():
        try:
            answers.append(svc.cancel(job.id).state)
        except Exception as exc:  # noqa: BLE001  (the test reports any)
            errors.append(exc)

    threads = [threading.Thread(target=cancel) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == [] and answers == ["CANCELLED"] * 8
    assert job.id not in ray.stops and job.id not in ray.table
    assert svc.get(job.id).history[-1][2] == "cancelled while queued"
    ray.table[blocker.id] = RayJob(blocker.id, "SUCCEEDED")
    svc._tick()
    with pytest.raises(JobStateError, match="already finished"):
        svc.cancel(blocker.id)


def test_a_pending_job_whose_stop_ray_lost_is_stopped_again(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    ray.on_submit = lambda sid: ray.table.__setitem__(sid, RayJob(sid, "PENDING"))
    svc._tick()
    ray.lose_stops = 1_000_000  # every stop is lost while Ray keeps it PENDING
    rec = svc.cancel(job.id, wait_s=0.5)
    assert rec.state == "PENDING" and rec.cancel_requested  # not claimed cancelled before Ray says so
    ray.lose_stops = 0
    svc._tick()  # the reconciler asks again, and this time it lands
    assert svc.get(job.id).state == "PENDING"
    svc._tick()
    rec = svc.get(job.id)
    assert rec.state == "CANCELLED" and rec.history[-1][2] == "cancelled by request"


def test_a_cancelled_job_ray_starts_anyway_is_stopped_and_keeps_its_slot(scripted):
    svc, ray, spec = scripted
    job = svc.submit(spec)
    svc._tick()
    assert svc.cancel(job.id).state == "CANCELLED"
    waiting = svc.submit(spec)
    ray.table[job.id] = RayJob(job.id, "RUNNING")  # Ray started the driver after all
    ray.stop = lambda sid: ray.stops.append(sid) or True  # and does not stop at once
    svc._tick()
    rec = svc.get(job.id)
    assert rec.state == "CANCELLED" and ray.stops[-1] == job.id
    assert rec.history[-1][2].startswith("Ray started this job after it had finished here (RUNNING there)")
    assert svc.get(waiting.id).state == "QUEUED"  # the stray still holds the only slot
    svc._tick()
    assert len([h for h in svc.get(job.id).history if "Ray started" in h[2]]) == 1  # said once
    ray.table[job.id] = RayJob(job.id, "STOPPED")
    svc._tick()
    assert svc.get(waiting.id).state == "PENDING"  # the slot is free once Ray confirms


def test_the_service_validates_a_spec_without_torch(tmp_path):
    """Submission runs the one validation (model config, search space, dataset) in the service's process,
    which never imports torch or the training code (jobs.service's import contract says so statically;
    this says so at run time, through the lazy exports of attention_models and jobs.data)."""
    import json

    from jobs.data import build_recipe, write_dataset

    splits = {s: build_recipe("cluttered60", count=4, seed=0, split=s) for s in ("train", "test")}
    data = write_dataset(str(tmp_path / "data"), splits, {"recipe": "cluttered60", "seed": 0})
    code = f"""
import sys
from jobs.api.spec import JobSpec, SpecError
from jobs.run.checks import check_spec
from jobs.service import job_service, server, wire
wire.models_to_proto()
spec = {{"kind": "tune", "tune": {{}}, "scaling": {{"num_workers": 1}}, "data": {{"path": {json.dumps(data)}}}}}
check_spec(JobSpec.from_dict(spec))
try:
    check_spec(JobSpec.from_dict({{**spec, "model": {{"overrides": {{"num_glimpses": 0}}}}}}))
    raise SystemExit("a bad override passed")
except SpecError as exc:
    assert str(exc).startswith("model.num_glimpses"), exc
loaded = sorted(m for m in ("torch", "torchvision", "ray.train", "ray.tune") if m in sys.modules)
assert not loaded, f"validation imported {{loaded}}"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
