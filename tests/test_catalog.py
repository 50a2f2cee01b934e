"""The SQLite catalog: compare-and-set transitions with history, pages, per-owner request ids, the
migration of an old catalog, a SIGKILLed writer; and the failure reason the service keeps."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jobs.service.catalog import SCHEMA_VERSION, Catalog, JobRecord
from jobs.service.outputs import failure_reason

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


# ------------------------------------------------------------------------------------------ catalog


def _rec(job_id: str, **kw) -> JobRecord:
    base = dict(id=job_id, kind="train", model="ram-cluttered60", owner="ann", priority=0, state="QUEUED",
                spec={"name": job_id}, run_dir=f"/r/{job_id}")
    return JobRecord(**{**base, **kw})


def test_catalog_transitions_are_compare_and_set_with_history(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    cat.insert(_rec("a"))
    assert cat.transition("a", "RUNNING", from_states=("PENDING",)) is None  # not PENDING yet
    cat.transition("a", "PENDING", from_states=("QUEUED",), reason="submitted")
    rec = cat.transition("a", "SUCCEEDED", from_states=("PENDING", "RUNNING"), result={"metrics": {"x": 1}})
    assert [h[0] for h in rec.history] == ["QUEUED", "PENDING", "SUCCEEDED"]
    assert rec.result == {"metrics": {"x": 1}} and rec.finished is not None
    assert cat.transition("a", "CANCELLED", from_states=("QUEUED", "PENDING", "RUNNING")) is None


def test_catalog_pages_newest_first_and_dedupes_request_ids(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    for i in range(5):
        cat.insert(_rec(f"j{i}", owner="ann" if i % 2 else "bob"))
    assert cat.insert(_rec("dup"), request_id="k").id == "dup"
    assert cat.insert(_rec("dup2"), request_id="k").id == "dup"  # a retried submit
    first = cat.list(limit=3)
    rest = cat.list(before_seq=first[-1].seq, limit=10)
    assert [r.id for r in first + rest] == ["dup", "j4", "j3", "j2", "j1", "j0"]
    assert {r.id for r in cat.list(owner="ann")} == {"j1", "j3", "dup"}


def test_request_ids_deduplicate_per_owner(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    assert cat.insert(_rec("a1", owner="ann"), request_id="k").id == "a1"
    assert cat.insert(_rec("b1", owner="bob"), request_id="k").id == "b1"  # bob's key is his own
    assert cat.insert(_rec("a2", owner="ann"), request_id="k").id == "a1"
    assert cat.insert(_rec("b2", owner="bob"), request_id="k").id == "b1"
    assert {r.id for r in cat.list()} == {"a1", "b1"}


# The catalog as the service before SCHEMA_VERSION 1 wrote it: request_id unique across owners.
_SCHEMA_V0 = """
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, model TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '', priority INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, spec TEXT NOT NULL,
    run_dir TEXT NOT NULL, ray_job_id TEXT NOT NULL DEFAULT '', result TEXT, error TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0, request_id TEXT UNIQUE, created REAL NOT NULL, started REAL,
    finished REAL);
CREATE INDEX jobs_state ON jobs (state, priority DESC, seq);
CREATE TABLE history (job_id TEXT NOT NULL REFERENCES jobs (id), state TEXT NOT NULL, time REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '');
CREATE INDEX history_job ON history (job_id, time);
INSERT INTO jobs (id, kind, model, owner, state, spec, run_dir, request_id, created, finished, result)
    VALUES ('old1', 'train', 'ram-cluttered60', 'ann', 'SUCCEEDED', '{"name": "old1"}', '/r/old1', 'k', 1.0, 2.0,
            '{"metrics": {"val_accuracy": 0.5}}');
INSERT INTO jobs (id, kind, model, owner, state, spec, run_dir, created) VALUES
    ('old2', 'tune', 'ram-cluttered60', 'bob', 'QUEUED', '{"name": "old2"}', '/r/old2', 3.0);
INSERT INTO history VALUES ('old1', 'QUEUED', 1.0, ''), ('old1', 'SUCCEEDED', 2.0, 'done'), ('old2', 'QUEUED', 3.0, '');
"""


def test_a_catalog_of_the_old_schema_is_migrated_with_its_jobs(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:
        old.executescript(_SCHEMA_V0)
    cat = Catalog(db)
    old1 = cat.get("old1")
    assert (old1.state, old1.owner, old1.result, old1.finished) == ("SUCCEEDED", "ann", {"metrics": {"val_accuracy": 0.5}}, 2.0)
    assert old1.history == [("QUEUED", 1.0, ""), ("SUCCEEDED", 2.0, "done")]
    assert [r.id for r in cat.list()] == ["old2", "old1"] and cat.next_queued().id == "old2"
    assert cat.insert(_rec("new-ann", owner="ann"), request_id="k").id == "old1"  # ann's key still dedupes
    assert cat.insert(_rec("new-bob", owner="bob"), request_id="k").id == "new-bob"  # and is no longer global
    assert cat.list(limit=1)[0].seq > old1.seq  # AUTOINCREMENT carries on after the old jobs
    cat.close()
    again = Catalog(db)  # opening a migrated catalog changes nothing
    assert [r.id for r in again.list()] == ["new-bob", "old2", "old1"]
    assert again._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_catalog_of_version_1_gains_rev_and_keeps_its_jobs(tmp_path):
    import sqlite3

    db = tmp_path / "v1.db"
    v1 = _SCHEMA_V0.replace("request_id TEXT UNIQUE", "request_id TEXT")
    v1 += "CREATE UNIQUE INDEX jobs_request ON jobs (owner, request_id); PRAGMA user_version = 1;"
    with sqlite3.connect(db) as old:
        old.executescript(v1)
    cat = Catalog(db)
    old1 = cat.get("old1")
    assert (old1.state, old1.rev, old1.history[-1]) == ("SUCCEEDED", 0, ("SUCCEEDED", 2.0, "done"))
    assert cat._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert cat.transition("old2", "PENDING", from_states=("QUEUED",)).rev == 1


def test_every_change_bumps_the_rev_and_a_refused_one_does_not(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    revs = [cat.insert(_rec("j")).rev]
    revs.append(cat.transition("j", "PENDING", from_states=("QUEUED",)).rev)
    assert cat.transition("j", "RUNNING", from_states=("QUEUED",)) is None  # the compare failed: no change
    revs.append(cat.get("j").rev)
    cat.update("j", cancel_requested=1)
    revs.append(cat.get("j").rev)
    revs.append(cat.note("j", "told Ray to stop it").rev)
    assert revs == [0, 1, 1, 2, 3]


def _append_rev(cat: Catalog, out: list[int]) -> None:
    out.append(cat.get("j").rev)


def test_readers_on_other_threads_see_each_committed_change_and_a_consistent_job_until_closed(tmp_path):
    # Readers have connections of their own: each must see a change once the writer returned, and a
    # job's row and history from one snapshot (the rev counts the history rows the job has).
    cat = Catalog(tmp_path / "c.db")
    cat.insert(_rec("j"))
    seen: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                rec = cat.get("j")
            except sqlite3.ProgrammingError:  # closed under it (below): refused, never a crash
                return
            if rec.rev + 1 != len(rec.history):
                seen.append(f"rev {rec.rev} with {len(rec.history)} history rows")

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    for i in range(30):
        cat.note("j", f"event {i}")
        got: list[int] = []
        probe = threading.Thread(target=_append_rev, args=(cat, got))  # a thread that never read before
        probe.start()
        probe.join()
        assert got == [i + 1]
        assert [r.rev for r in cat.list()] == [i + 1]
    cat.close()  # while the readers read: each read in flight ends first, the next is refused
    with pytest.raises(sqlite3.ProgrammingError):
        cat.get("j")
    stop.set()
    for t in readers:
        t.join()
    assert seen == []


def test_catalog_survives_sigkill_of_the_writer(tmp_path):
    db = tmp_path / "c.db"
    code = ("import os, signal\nfrom jobs.service.catalog import SCHEMA_VERSION, Catalog, JobRecord\n"
            f"c = Catalog({str(db)!r})\n"
            "c.insert(JobRecord(id='k', kind='train', model='m', owner='', priority=0, state='QUEUED', spec={}, run_dir='/r'))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert Catalog(db).get("k").state == "QUEUED"


def test_failure_reason_keeps_the_exception_line():
    msg = ("Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):\n"
           "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
           "jobs.api.spec.SpecError: scaling: 64 workers x 1 CPUs = 64 CPUs, but the cluster has 4\n")
    reason = failure_reason(msg)
    assert reason.startswith("jobs.api.spec.SpecError: scaling: 64 workers")
    assert "exit code 1" in reason
