"""A pytest plugin for the dashboard's tests: one real job service (over the session's Ray head) with
real finished jobs, a tune job kept running, and an AppTest of the dashboard on that service (`app`),
shared by tests/test_dashboard*.py and tests/test_browser_dashboard.py.

Loaded with `pytest_plugins = ["dashboard_harness"]`, so the session-scoped fixtures run once per
session whichever module needs them first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from service_harness import TOKEN, running_server, tiny_spec, wait_for

from jobs.api.client import ClientError, FoveateClient
from jobs.api.states import is_final, state_name

DASHBOARD_APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@dataclass(frozen=True)
class FinishedJobs:
    address: str
    token: str
    client: FoveateClient
    data: str  # the RAM jobs' dataset
    runs: str  # where every job's outputs go
    ram: str  # train: RAM on cluttered60, 2 epochs, 6 glimpses at 3 scales
    racnn: str  # train: RA-CNN on zoom, 2 epochs
    tune: str  # tune: RAM, grid over 1 and 2 glimpses, 2 trials x 1 epoch


def _agent_log(head) -> str:
    """The head's job agent log tail: a job stuck in QUEUED usually means the agent never started
    (another Ray on this machine holds its fixed port, 52365)."""
    from pathlib import Path

    log = Path(head.temp_dir) / "session_latest" / "logs" / "dashboard_agent.log"
    return "dashboard_agent.log: " + (log.read_text(errors="replace")[-1500:] if log.exists() else "(absent)")


@pytest.fixture(scope="session")
def finished_jobs(ray_head, tiny_dataset, tmp_path_factory) -> FinishedJobs:
    """A train job of RAM and of RA-CNN and a tune job of RAM, all run to SUCCEEDED through the service."""
    from jobs.data.recipes import build_recipe
    from jobs.data.store import write_dataset

    root = tmp_path_factory.mktemp("dashboard")
    splits = {s: build_recipe("zoom", count=n, seed=0, split=s) for s, n in (("train", 64), ("test", 16))}
    zoom = write_dataset(str(root / "zoom"), splits, {"recipe": "zoom", "seed": 0})
    out = str(root / "runs")
    with running_server(ray_head, str(root / "catalog.db"), max_running=3) as (client, _, port):
        # 6 glimpses at the variant's 3 retina scales: the attention detail must stay readable with 18 patches.
        ram = client.submit(tiny_spec(tiny_dataset, out, epochs=2,
                                      model={"name": "ram-cluttered60", "overrides": {"num_glimpses": 6}}),
                            owner="ann")
        racnn = client.submit(tiny_spec(zoom, out, epochs=2, model={"name": "racnn-zoom", "overrides": {}},
                                        optim={"attention_init_steps": 1, "alternate_every": 1, "batch_size": 16}),
                              owner="bob")
        tune = client.submit(tiny_spec(tiny_dataset, out, epochs=1, kind="tune", data={"probe_count": 2},
                                       scaling={"num_workers": 1},  # Tune needs a Train worker to report
                                       tune={"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2]}},
                                             "search": "grid", "num_trials": 1, "scheduler": "fifo"}),
                             owner="ann")
        for job in (ram, racnn, tune):
            try:
                wait_for(client, job.id, ("SUCCEEDED",), timeout=300)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_agent_log(ray_head)}") from None
        yield FinishedJobs(f"127.0.0.1:{port}", TOKEN, client, tiny_dataset, out, ram.id, racnn.id, tune.id)


def long_train_job(jobs: FinishedJobs, owner: str = "dee") -> str:
    """A train job that runs until cancelled (500 epochs in the driver), once the service reports it RUNNING."""
    job = jobs.client.submit(tiny_spec(jobs.data, jobs.runs, epochs=500), owner=owner)
    wait_for(jobs.client, job.id, ("RUNNING",), timeout=120)
    return job.id


def _first_record(client: FoveateClient, job_id: str, timeout: float = 300.0) -> str:
    """The trial of a tune job that first has an epoch and an attention record; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(job_id)
        assert not is_final(job.state), f"{job_id} ended {state_name(job.state)}: {job.error}"
        for trial in sorted({r.trial for r in client.trials(job_id).rows}):
            try:
                if client.attention_response(job_id, trial=trial).epochs:
                    return trial
            except ClientError:  # the trial's directory appears before its first record
                pass
        time.sleep(0.5)
    raise AssertionError(f"{job_id}: no trial reported an epoch with its attention in {timeout} s")


@pytest.fixture(scope="session")
def running_tune(finished_jobs) -> str:
    """A tune job that stays RUNNING: a grid of 3 glimpse counts (3 trials planned with tune.num_trials 1), one
    trial at a time over 500 epochs of 32 images; yielded once its first trial has reported an epoch and its
    attention, cancelled when the session ends."""
    client = finished_jobs.client
    job = client.submit(tiny_spec(finished_jobs.data, finished_jobs.runs, epochs=500, kind="tune",
                                  data={"probe_count": 2, "max_train_samples": 32, "max_val_samples": 16},
                                  scaling={"num_workers": 1},
                                  tune={"space": "none", "params": {"model.num_glimpses": {"grid": [1, 2, 3]}},
                                        "search": "grid", "num_trials": 1, "scheduler": "fifo",
                                        "max_concurrent_trials": 1}),
                        owner="cy")
    try:
        _first_record(client, job.id)
        yield job.id
    finally:
        if not is_final(client.get(job.id).state):
            client.cancel(job.id)
        wait_for(client, job.id, ("CANCELLED",), timeout=120)


@pytest.fixture
def app(finished_jobs, monkeypatch):
    """An AppTest of the dashboard pointed at the fixture's service (address and token from the environment,
    as `foveate dashboard` passes them)."""
    monkeypatch.setenv("FOVEATE_SERVER", finished_jobs.address)
    monkeypatch.setenv("FOVEATE_TOKEN", finished_jobs.token)

    from streamlit.testing.v1 import AppTest

    def open_page(page: str = "views/jobs.py", **query: str):
        # A deadline, not a pause: exports and cold caches take long on a loaded machine.
        at = AppTest.from_file(DASHBOARD_APP, default_timeout=180)
        at.run()
        if page != "views/jobs.py":
            at.query_params.update(query)
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return open_page
