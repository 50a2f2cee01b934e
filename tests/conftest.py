"""Shared fixtures: one local Ray per test session, and the real data beside the project."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (derandomize, no example database): a search that
# could find a new failing input on some CI run and not another is a flaky test. To hunt for new inputs
# locally: `pytest --hypothesis-profile=explore`.
settings.register_profile("foveate", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile("foveate")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny ops (`pytestmark = pytest.mark.usefixtures(...)`): on 2
    shared cores OpenMP's second thread costs more than it gives (10x on a busy box)."""
    import torch  # here: the service's tests never load torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real MNIST idx files and the CUB subset); tests that need it skip where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session.

    Started with the dashboard: Train V2's placement-group cleaner needs the State API, and Tune trials
    stopped early otherwise leak their placement groups (see shared/RAY_NOTES.md). More logical CPUs than
    cores so that Tune's driver, Train's workers and Ray Data can be placed together on 2 cores. The temp
    dir stays short: Unix socket paths are limited to 107 bytes.
    """
    import ray

    from cluster import connect

    tmp = tempfile.mkdtemp(prefix="fvray", dir="/tmp")
    connect(address=None, num_cpus=8, object_store_memory=1_000_000_000, temp_dir=tmp)
    yield ray
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head():
    """A real Ray head as `foveate cluster up` starts it (`ray start --head`, token auth on), for the job
    service's tests: the service reaches Ray only through this head's Jobs API (HTTP), so it coexists
    with `ray_session` in one pytest process. 4 logical CPUs; a short temp dir for Ray's sockets."""
    from cluster import local

    state = tempfile.mkdtemp(prefix="fvhead", dir="/tmp")
    head = local.up(state, num_cpus=4, object_store_memory=500_000_000, temp_dir=f"{state}/r")
    yield head
    local.down(state)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    """A 128/32-image cluttered60 dataset built with `foveate data build` (the embedded MNIST digits)."""
    from jobs.cli import main

    out = str(tmp_path_factory.mktemp("data") / "cluttered60-tiny")
    assert main(["data", "build", "cluttered60", "--out", out, "--train", "128", "--test", "32"]) == 0
    return out


@pytest.fixture
def scripted(tmp_path):
    """(JobService, ScriptedRay, spec) over a 4-image dataset, with one slot and a catalog in tmp_path."""
    from scripted_ray import ScriptedRay

    from jobs.api.spec import JobSpec
    from jobs.data import build_recipe, write_dataset
    from jobs.service.job_service import JobService, ServiceConfig

    splits = {s: build_recipe("cluttered60", count=4, seed=0, split=s) for s in ("train", "test")}
    write_dataset(str(tmp_path / "data"), splits, {"recipe": "cluttered60", "seed": 0})
    ray = ScriptedRay()
    svc = JobService(ServiceConfig(db_path=str(tmp_path / "c.db"), max_running=1, poll_interval=3600,
                                   storage_roots=(str(tmp_path / "out"),), data_roots=(str(tmp_path / "data"),)), ray)
    spec = JobSpec.from_dict({"data": {"path": str(tmp_path / "data")}, "storage_path": str(tmp_path / "out"),
                              "scaling": {"num_workers": 1}})
    yield svc, ray, spec
    svc.stop()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, tiny_dataset):
    """The hostile-input tests' sandbox tree (tests/service_fuzzing.make_sandbox), one per module."""
    from service_fuzzing import make_sandbox

    yield from make_sandbox(tmp_path_factory, tiny_dataset)
