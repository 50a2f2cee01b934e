"""A pytest plugin for the dashboard's tests: one real job service (over the session's Ray head) with
real finished jobs, shared by tests/test_dashboard.py and tests/test_browser_dashboard.py.

Loaded with `pytest_plugins = ["dashboard_harness"]`, so the session-scoped fixture runs once per
session whichever of the two modules needs it first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from service_harness import TOKEN, running_server, tiny_spec, wait_for

from jobs.api.client import FoveateClient


@dataclass(frozen=True)
class FinishedJobs:
    address: str
    token: str
    client: FoveateClient
    data: str  # the RAM jobs' dataset
    ram: str  # train: RAM on cluttered60, 2 epochs, 3 glimpses
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
        ram = client.submit(tiny_spec(tiny_dataset, out, epochs=2,
                                      model={"name": "ram-cluttered60", "overrides": {"num_glimpses": 3}}),
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
        yield FinishedJobs(f"127.0.0.1:{port}", TOKEN, client, tiny_dataset, ram.id, racnn.id, tune.id)
