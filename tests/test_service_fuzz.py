"""Hostile requests to every RPC of foveate.v1.JobService, on a real gRPC server over a real JobService
and the session's real Ray head (strategies and the probe in tests/service_fuzzing.py), and cancels racing
submits and dispatches.

Every answer must be a status a client can act on (ALLOWED; OK where the request happened to be valid):
never INTERNAL or UNKNOWN. Each run collects every answer outside ALLOWED and reports them all at the end
(not only the first, as an assertion inside a hypothesis example would). Afterwards the server still
answers a health check and GetJob, and no file appeared outside the storage root.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from service_fuzzing import (
    FUZZ,
    INT32,
    SHORT_OR_TEXT,
    TEXT,
    TOKENS,
    Probe,
    S,
    assert_nothing_written_outside,
    bad_specs,
    files,
    path_strategy,
)
from service_harness import running_server, tiny_spec

from cluster.jobs_api import RayJobsAPI
from jobs.api.spec_proto import spec_dict_to_proto
from jobs.api.states import FINAL, state_name
from jobs.proto.foveate.v1 import jobs_pb2 as pb
from jobs.service.catalog import JobRecord

pytestmark = pytest.mark.ray



def _seed_jobs(service, sandbox: Path) -> dict[str, str]:
    """Jobs of every state a catalog may hold, including one whose run directory no filesystem reads
    (catalogs from before the path policy)."""
    out = {}
    for name, kind, state, run_dir in (("done", "train", "SUCCEEDED", sandbox / "storage" / "done"),
                                       ("tuned", "tune", "FAILED", sandbox / "storage" / "tuned"),
                                       ("unreadable", "tune", "SUCCEEDED", "hdfs://namenode/runs/x")):
        job_id = f"job-seed{name}"
        service.catalog.insert(JobRecord(id=job_id, kind=kind, model="ram-cluttered60", owner="seed", priority=0,
                                         state="QUEUED", spec={"name": job_id}, run_dir=str(run_dir)))
        service.catalog.transition(job_id, state)
        out[name] = job_id
    return out


def test_every_rpc_answers_hostile_requests_with_a_status_a_client_can_act_on(ray_head, sandbox):
    storage = sandbox / "storage"
    db = sandbox / "catalog"
    db.mkdir(exist_ok=True)
    before = files(sandbox, (storage, db))
    paths = path_strategy(sandbox)
    valid = spec_dict_to_proto(tiny_spec(str(sandbox / "data"), str(storage)))
    with running_server(ray_head, str(db / "c.db"), max_running=0) as (client, service, port):
        probe = Probe(client)
        seeded = _seed_jobs(service, sandbox)
        queued = client.submit(valid, owner="seed").id
        ids = st.one_of(TEXT, st.sampled_from([queued, *seeded.values(), "job-" + "0" * 12, "job-" + "f" * 124]))

        @settings(max_examples=650, **FUZZ)
        @given(bad_specs(valid, paths), st.booleans(), SHORT_OR_TEXT, SHORT_OR_TEXT, INT32)
        def submit(spec, validate_only, owner, request_id, priority):
            code, answer = probe("SubmitJob", pb.SubmitJobRequest(spec=spec, validate_only=validate_only,
                                                                  owner=owner, request_id=request_id, priority=priority))
            if code == S.OK and not validate_only:
                probe("CancelJob", pb.CancelJobRequest(job_id=answer.job.id))  # the queue is paused: at once

        @settings(max_examples=300, **FUZZ)
        @given(st.one_of(st.just([]), st.lists(st.integers(0, 6), max_size=3), st.lists(INT32, max_size=4)),
               st.one_of(st.just(0), st.integers(1, 2), INT32), SHORT_OR_TEXT, SHORT_OR_TEXT,
               st.one_of(st.just(0), st.integers(1, 600), INT32), st.one_of(st.just(""), TOKENS))
        def list_jobs(states, kind, model, owner, page_size, token):
            probe("ListJobs", pb.ListJobsRequest(states=states, kind=kind, model=model, owner=owner,
                                                 page_size=page_size, page_token=token))

        @settings(max_examples=150, **FUZZ)
        @given(TOKENS)
        def page_tokens(token):  # every other field valid: the token itself is what gets judged
            probe("ListJobs", pb.ListJobsRequest(page_token=token))

        @settings(max_examples=850, **FUZZ)
        @given(st.sampled_from(["GetJob", "CancelJob", "ListTrials", "GetAttention", "WatchJob", "StreamLogs"]),
               ids, TEXT, st.one_of(st.none(), INT32), INT32, st.booleans())
        def by_id(rpc, job_id, trial, epoch, max_records, follow):
            if rpc == "CancelJob" and job_id == queued:
                job_id = "job-" + "e" * 12  # keep the queued job for the others
            request = {"GetJob": pb.GetJobRequest(job_id=job_id), "CancelJob": pb.CancelJobRequest(job_id=job_id),
                       "ListTrials": pb.ListTrialsRequest(job_id=job_id),
                       "GetAttention": pb.GetAttentionRequest(job_id=job_id, trial=trial, epoch=epoch,
                                                              max_records=max_records),
                       "WatchJob": pb.WatchJobRequest(job_id=job_id),
                       "StreamLogs": pb.StreamLogsRequest(job_id=job_id, follow=follow)}[rpc]
            probe(rpc, request, stream=rpc in ("WatchJob", "StreamLogs"))

        @settings(max_examples=50, **FUZZ)
        @given(TEXT)
        def models(family):
            probe("ListModels", pb.ListModelsRequest(family=family))
            probe("DescribeCluster", pb.DescribeClusterRequest())

        t0 = time.monotonic()
        for run in (submit, list_jobs, page_tokens, by_id, models):
            run()
        elapsed = time.monotonic() - t0
        print(f"{probe.calls} calls in {elapsed:.0f} s;",
              {k: round(v, 1) for k, v in probe.seconds.items()})

        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:  # still serving, and still itself
            check = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        assert state_name(client.get(queued).state) == "QUEUED"
    assert probe.calls >= 2000, probe.calls
    assert probe.unexpected == [], f"{len(probe.unexpected)} of {probe.calls} calls in {elapsed:.0f} s:\n" + \
        "\n".join(probe.unexpected[:40])
    assert_nothing_written_outside(sandbox, before, (db,))


def test_cancels_racing_submits_and_dispatches_never_let_a_job_run(ray_head, sandbox):
    """Real submits on a dispatching queue, each cancelled while it is queued, being handed to Ray or
    PENDING there, from several threads at once (and a retried submit racing its cancel): every answer
    is allowed, every job ends CANCELLED, Ray ends up running none of them, none wrote a result."""
    storage, db = sandbox / "storage", sandbox / "races"
    db.mkdir(exist_ok=True)
    spec = tiny_spec(str(sandbox / "data"), str(storage), epochs=1000)  # nothing finishes unless a cancel failed
    ray = RayJobsAPI(ray_head.dashboard_url, ray_head.token())
    made: list[str] = []
    try:
        with running_server(ray_head, str(db / "c.db"), max_running=2) as (client, service, _):
            probe = Probe(client)
            msg = client.spec_message(spec)
            handed: list[str] = []  # jobs cancelled only once Ray had them (PENDING or later)

            def submit_and_cancel(key: str, when: str, ids: list[str]) -> None:
                code, answer = probe("SubmitJob", pb.SubmitJobRequest(spec=msg, owner="racer", request_id=key))
                if code != S.OK:
                    return
                ids.append(answer.job.id)
                if when == "handed":  # wait for the dispatch, then cancel while Ray is starting it
                    deadline = time.monotonic() + 30
                    while state_name(client.get(answer.job.id).state) == "QUEUED" and time.monotonic() < deadline:
                        time.sleep(0.05)
                    handed.append(answer.job.id)
                elif when != "now":
                    time.sleep(float(when))  # somewhere in the dispatch
                probe("CancelJob", pb.CancelJobRequest(job_id=answer.job.id))

            for round_ in range(3):
                retried: list[str] = []  # one key, submitted and cancelled from three threads
                runs = [(f"race-{round_}", when, retried) for when in ("now", "now", "0.05")]
                runs += [(f"race-{round_}-{when}", when, made) for when in ("0.2", "handed")]
                threads = [threading.Thread(target=submit_and_cancel, args=run) for run in runs]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                assert len(set(retried)) == 1, retried  # one owner's key: one job, however the submits interleave
                made.append(retried[0])
            assert probe.unexpected == [], "\n".join(probe.unexpected)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # Ray confirms every stop (the reconciler re-asks meanwhile)
                alive = [j for j in made if (rj := ray.job(j)) is not None and rj.status in ("PENDING", "RUNNING")]
                if not alive:
                    break
                time.sleep(0.5)
            assert alive == [], f"Ray still runs cancelled jobs {alive}"
            for job_id in made:
                rec = service.get(job_id)
                print(job_id, [h[0] for h in rec.history], rec.history[-1][2])  # which race each round met
                assert rec.state == "CANCELLED", (job_id, rec.state, rec.history)
                assert not (Path(rec.run_dir) / "result.json").exists()
            for job_id in handed:
                assert "PENDING" in [h[0] for h in service.get(job_id).history]  # these raced Ray, not the queue
    finally:
        for job_id in made:  # whatever happened above, nothing of this test keeps running in Ray
            rj = ray.job(job_id)
            if rj is not None and rj.status not in FINAL + ("STOPPED",):
                ray.stop(job_id)
