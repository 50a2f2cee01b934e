"""A scripted Ray Jobs API for the queue and reconcile tests, and a service over it (the `scripted`
fixture in conftest.py): the races of cancel with dispatch need a Ray whose answers a test can hold and change."""

from __future__ import annotations

from pathlib import Path

from cluster.jobs_api import ClusterSnapshot, NodeInfo, RayJob

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


class ScriptedRay:
    """Ray Jobs as a dict the test drives; `address` and `describe` as the service expects."""

    address = "http://scripted"

    def __init__(self):
        self.table: dict[str, RayJob] = {}
        self.submitted: list[str] = []
        self.stops: list[str] = []
        self.lose_stops = 0  # how many stops of a PENDING job to lose (its supervisor is not up yet)
        self.on_submit = lambda sid: None  # a hook inside submit, to hold a dispatch half-way

    def submit(self, sid, entrypoint, env=None, metadata=None):
        if sid in self.table:
            return False
        self.submitted.append(sid)
        self.table[sid] = RayJob(sid, "RUNNING")
        self.on_submit(sid)
        return True

    def jobs(self):
        return dict(self.table)

    def job(self, sid):
        return self.table.get(sid)

    def stop(self, sid):
        if sid not in self.table:  # as Ray's Jobs API answers for a submission id it never had
            raise RuntimeError(f"Request failed with status code 404: Job {sid} does not exist.")
        self.stops.append(sid)
        if self.table[sid].status == "PENDING" and self.lose_stops:
            self.lose_stops -= 1
            return False
        if self.table[sid].status in ("PENDING", "RUNNING"):
            self.table[sid] = RayJob(sid, "STOPPED")
        return True

    def logs(self, sid):
        return ""

    def describe(self):
        return ClusterSnapshot("x", [NodeInfo("n", "1.2.3.4", True, True, 4, 0, 0, 0)])


