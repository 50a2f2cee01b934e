"""Shared fixtures: one local Ray per test session, and the real data beside the project."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


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
