"""Jobs through the real job service on a real Ray head: submit and follow, logs, attention records,
the queue with priorities and cancels, a tune job's trials, and a SIGKILLed service that restarts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
import yaml
from service_harness import TOKEN, running_server, tiny_spec, wait_for

from jobs.api.client import ClientError, FoveateClient
from jobs.api.states import state_name

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _codes(fn):
    try:
        fn()
    except ClientError as exc:
        return exc.code
    return grpc.StatusCode.OK


def test_train_job_submitted_by_the_cli_is_watched_to_the_end(ray_head, tiny_dataset, tmp_path):
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(tiny_dataset, str(tmp_path / "out"), epochs=2)))
    with running_server(ray_head, str(tmp_path / "c.db")) as (client, _, port):
        # Valid at submission (its manifest is sound), but a shard is cut short, which only the run's reader
        # sees: it fails in the driver, beside the good job (max_running=2).
        broken = tmp_path / "broken"
        shutil.copytree(tiny_dataset, broken)
        shard = sorted(broken.glob("train-*.parquet"))[0]
        shard.write_bytes(shard.read_bytes()[:100])
        doomed = client.submit(tiny_spec(str(broken), str(tmp_path / "out")))
        cli = subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "submit", str(spec_file), "--wait", "--server", f"127.0.0.1:{port}",
             "--token", TOKEN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = cli.stdout.readline()
        assert first.startswith("submitted job-"), first + cli.stderr.read()
        job_id = first.split()[1]

        events = list(client.watch(job_id))  # live, while the CLI follows the same job
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, out + err

        states = [state_name(e.state_change.state) for e in events if e.WhichOneof("event") == "state_change"]
        assert states == ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"]
        epochs = [(i, e.epoch.epoch) for i, e in enumerate(events) if e.WhichOneof("event") == "epoch"]
        assert [ep for _, ep in epochs] == [0, 1]
        assert all(i < len(events) - 1 for i, _ in epochs)  # every epoch arrives before the final state
        assert 0.0 <= events[epochs[-1][0]].epoch.metrics["val_accuracy"] <= 1.0
        assert "SUCCEEDED" in out and "final metrics:" in out and "val_accuracy=" in out
        assert "2/2" in err  # the progress bar reached the last epoch

        job = client.get(job_id)
        assert job.result.metrics["epoch"] == 1 and job.started.seconds and job.finished.seconds
        times = [h.time.ToNanoseconds() for h in job.history]
        assert times == sorted(times)

        log = "".join(client.logs(job_id, follow=True))  # follow on a finished job returns
        assert "Running entrypoint" in log and "result:" in log
        # The driver's output is kept with the run ...
        kept = Path(job.run_dir, "driver.log").read_text()
        assert "result:" in kept and kept in log
        # ... and served from there once the Ray head that ran the job is gone (the same catalog, a dead
        # cluster address: what a restarted service sees after the cluster went away).
        from cluster.jobs_api import RayJobsAPI
        from jobs.service.job_service import JobService, ServiceConfig

        orphan = JobService(ServiceConfig(db_path=str(tmp_path / "c.db")), RayJobsAPI("http://127.0.0.1:9", "x"))
        after = "".join(orphan.logs(job_id, follow=True))
        assert after == kept and "result:" in after

        att = client.attention_response(job_id)
        assert list(att.epochs) == [0, 1] and att.epoch == 1 and len(att.records) == 4
        r = att.records[0]
        assert len(r.image) == r.height * r.width * r.channels == 60 * 60
        assert len(r.boxes) == r.steps * r.patches * 4 and r.kind == "glimpse"
        assert client.attention(job_id, epoch=0, max_records=2).num_rows == 2
        assert _codes(lambda: client.attention(job_id, epoch=7)) == grpc.StatusCode.NOT_FOUND
        assert _codes(lambda: client.attention(job_id, trial="t1")) == grpc.StatusCode.INVALID_ARGUMENT
        assert _codes(lambda: client.cancel(job_id)) == grpc.StatusCode.FAILED_PRECONDITION
        assert _codes(lambda: client.trials(job_id)) == grpc.StatusCode.FAILED_PRECONDITION

        info = client.cluster()
        assert info.cpus == 4 and [n.is_head and n.alive for n in info.nodes] == [True]

        failed = client.wait(doomed.id)
        assert state_name(failed.state) == "FAILED"
        assert failed.error.startswith("ValueError:") and "not a readable Parquet file" in failed.error
        assert "not a readable Parquet file" in failed.history[-1].reason


def test_queue_runs_by_priority_and_cancels_running_and_queued_jobs(ray_head, tiny_dataset, tmp_path):
    out = str(tmp_path / "out")
    with running_server(ray_head, str(tmp_path / "c.db"), max_running=1) as (client, _, _):
        long = client.submit(tiny_spec(tiny_dataset, out, epochs=1000))
        # The slot is taken before the others arrive: else the queue would rightly start `high` first.
        wait_for(client, long.id, ("PENDING", "RUNNING"))
        low = client.submit(tiny_spec(tiny_dataset, out), priority=0)
        high = client.submit(tiny_spec(tiny_dataset, out), priority=5)
        wait_for(client, long.id, ("RUNNING",))
        assert [state_name(client.get(j.id).state) for j in (low, high)] == ["QUEUED", "QUEUED"]
        info = client.cluster()
        assert (info.running_jobs, info.queued_jobs, info.max_running) == (1, 2, 1)

        followed: list[str] = []
        follower = threading.Thread(target=lambda: followed.extend(client.logs(long.id, follow=True)))
        follower.start()
        wait_for_log = time.monotonic() + 60
        while "Running entrypoint" not in "".join(followed) and time.monotonic() < wait_for_log:
            time.sleep(0.3)

        cancelled = client.cancel(long.id)
        assert state_name(cancelled.state) == "CANCELLED"
        assert cancelled.history[-1].reason == "cancelled by request"
        follower.join(timeout=15)
        assert not follower.is_alive() and "Running entrypoint" in "".join(followed)

        wait_for(client, high.id, ("PENDING", "RUNNING", "SUCCEEDED"))
        assert state_name(client.get(low.id).state) == "QUEUED"  # the higher priority went first
        queued_cancel = client.cancel(low.id)
        assert state_name(queued_cancel.state) == "CANCELLED"
        assert queued_cancel.history[-1].reason == "cancelled while queued" and not queued_cancel.ray_job_id
        assert state_name(client.wait(high.id).state) == "SUCCEEDED"


def _serve(head, db: str, port_file: Path, roots: list[str], embedded: bool = False) -> subprocess.Popen:
    """`foveate serve` in its own process: on the head's address, or (embedded) with no address, where it
    finds the local head recorded in FOVEATE_CLUSTER_DIR as `foveate cluster up` left it. `roots`: its
    --storage-root / --data-root arguments."""
    port_file.unlink(missing_ok=True)
    where = [] if embedded else ["--address", head.dashboard_url, "--ray-token-file", head.token_path]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve", *where, *roots, "--db", db, "--port", "0", "--port-file",
         str(port_file), "--token", TOKEN, "--max-running", "1", "--poll-interval", "0.5"],
        env={**os.environ, "FOVEATE_CLUSTER_DIR": head.state_dir},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert proc.poll() is None, "foveate serve exited"
        assert time.monotonic() < deadline, "foveate serve did not start"
        time.sleep(0.2)
    return proc


def test_sigkilled_service_restarts_and_finds_its_jobs(ray_head, tiny_dataset, tmp_path, capsys):
    db, port_file, out = str(tmp_path / "c.db"), tmp_path / "port", str(tmp_path / "out")
    roots = ["--storage-root", out, "--data-root", tiny_dataset]
    proc = _serve(ray_head, db, port_file, roots)
    try:
        with FoveateClient(f"127.0.0.1:{port_file.read_text()}", TOKEN) as client:
            running = client.submit(tiny_spec(tiny_dataset, out, epochs=3))
            queued = client.submit(tiny_spec(tiny_dataset, out))
            wait_for(client, running.id, ("RUNNING",))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

        proc = _serve(ray_head, db, port_file, roots, embedded=True)  # and reuses the running local head
        address = f"127.0.0.1:{port_file.read_text()}"
        with FoveateClient(address, TOKEN) as client:
            assert state_name(client.get(queued.id).state) in ("QUEUED", "PENDING")  # nothing lost
            job = client.wait(running.id)  # the job kept running in Ray; the new service reconciles it
            assert state_name(job.state) == "SUCCEEDED" and job.result.metrics["epoch"] == 2
            assert [state_name(h.state) for h in job.history] == ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"]
            client.cancel(queued.id)

        from jobs.cli import main

        assert main(["status", running.id, "--server", address, "--token", TOKEN]) == 0
        shown = capsys.readouterr().out
        assert f"{running.id}  SUCCEEDED" in shown and "final metrics:" in shown
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_tune_job_lists_its_trials_and_their_attention(ray_head, tiny_dataset, tmp_path, capsys):
    spec = tiny_spec(tiny_dataset, str(tmp_path / "out"), kind="tune", scaling={"num_workers": 1},
                     tune={"space": "none", "params": {"lr": {"choice": [0.001, 0.002]}}, "num_trials": 1,
                           "search": "grid", "scheduler": "fifo", "max_concurrent_trials": 2})
    with running_server(ray_head, str(tmp_path / "c.db")) as (client, _, port):
        job = client.submit(spec)
        done = client.wait(job.id)
        assert state_name(done.state) == "SUCCEEDED", done.error

        trials = client.trials(job.id)
        assert trials.complete and len(trials.rows) == 2
        assert {"trial", "epoch", "param.optim.lr", "val_accuracy"} <= set(trials.columns)
        ids = {r.trial for r in trials.rows}
        assert trials.best_trial in ids and done.result.best_trial == trials.best_trial
        assert {r.values["param.optim.lr"].float_value for r in trials.rows} == {0.001, 0.002}

        trial = sorted(ids)[0]
        att = client.attention_response(job.id, trial=trial)
        assert list(att.epochs) == [0] and len(att.records) == 4 and att.records[0].trial == trial
        assert _codes(lambda: client.attention(job.id)) == grpc.StatusCode.INVALID_ARGUMENT
        assert _codes(lambda: client.attention(job.id, trial="nope")) == grpc.StatusCode.NOT_FOUND

        epochs = [e.epoch for e in client.watch(job.id) if e.WhichOneof("event") == "epoch"]
        assert {e.trial for e in epochs} == ids

        from jobs.cli import main

        assert main(["trials", job.id, "--server", f"127.0.0.1:{port}", "--token", TOKEN]) == 0
        table = capsys.readouterr().out
        assert "param.optim.lr" in table and all(t in table for t in ids)
