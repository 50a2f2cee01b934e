"""The durable job catalog: SQLite in WAL mode, the service's source of truth for every job.

Ray's job table forgets jobs with its cluster and has no queue; this one keeps each job's spec, state
history with times, Ray submission id, result and error. Every change is one transaction, committed
before the caller goes on (synchronous=FULL), so a SIGKILLed service loses no accepted job.
State changes are compare-and-set (`transition(..., from_states=...)`) so the reconciler and a cancel
racing on one job cannot both win. A client's `request_id` deduplicates per owner: (owner, request_id) is
unique, so one owner's key never returns another owner's job. Every change bumps the job's `rev`, so a
reader can keep what it built from a record (the server's Job messages) until the record changes.
`PRAGMA user_version` is the schema's version; older catalogs are migrated when opened: version 0
(request_id unique across owners) is rebuilt, version 1 (no rev) gains the column.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.api import paths
from jobs.api.states import FINAL, STATES

_JOBS = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- submission order; also the paging key
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,                      -- JobSpec JSON (normalised, name = id)
    run_dir TEXT NOT NULL,
    ray_job_id TEXT NOT NULL DEFAULT '',
    result TEXT,                             -- result.json of the run, as JSON
    error TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    request_id TEXT,                         -- client idempotency key, unique per owner (jobs_request)
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    rev INTEGER NOT NULL DEFAULT 0           -- bumped by every change: what a reader may cache a job's view by
)"""
_SCHEMA = _JOBS + """;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, priority DESC, seq);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_request ON jobs (owner, request_id);
-- ListJobs pages newest first within a filter: without these a filtered page sorts every matching job.
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, seq);
CREATE INDEX IF NOT EXISTS jobs_kind ON jobs (kind, seq);
CREATE INDEX IF NOT EXISTS jobs_model ON jobs (model, seq);
CREATE TABLE IF NOT EXISTS history (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    state TEXT NOT NULL,
    time REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_job ON history (job_id, time);
"""
SCHEMA_VERSION = 2
# The columns every version has, in the order of _SCHEMA (what a migration copies across).
_COLUMNS = ("seq, id, kind, model, owner, priority, state, spec, run_dir, ray_job_id, result, error, "
            "cancel_requested, request_id, created, started, finished")


class JobNotFound(KeyError):
    """No job with this id."""

    def __str__(self) -> str:
        return f"job {self.args[0]!r} not found"


@dataclass
class JobRecord:
    id: str
    kind: str
    model: str
    owner: str
    priority: int
    state: str
    spec: dict[str, Any]
    run_dir: str
    ray_job_id: str = ""
    result: dict[str, Any] | None = None
    error: str = ""
    cancel_requested: bool = False
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    seq: int = 0
    rev: int = 0  # the catalog bumps it on every change to the job
    history: list[tuple[str, float, str]] = field(default_factory=list)  # (state, time, reason)


class Catalog:
    """Job records in one SQLite file (WAL). Thread-safe: writes go through one connection behind a lock;
    reads go through a connection of the reading thread's own, each in one read transaction, so readers
    see a consistent snapshot and neither wait for each other nor for a writer's fsync (WAL's readers
    never block). An in-memory catalog has one connection only, so there reads take the lock too."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            self.path = paths.absolute(self.path, field="--db")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._local = threading.local()
        self._readers: list[tuple[sqlite3.Connection, threading.Lock]] = []
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A connection to read from, inside one read transaction (rows and their history agree)."""
        if self.path == ":memory:":
            with self._lock:
                yield self._db
            return
        reader = getattr(self._local, "reader", None)
        if reader is None:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                reader = self._local.reader = (self._connect(), threading.Lock())
                self._readers.append(reader)
        db, in_use = reader
        # Held while reading, so close() (from another thread) never closes a connection mid-query:
        # SQLite would crash the process, not raise.
        with in_use:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def _migrate(self) -> None:
        """Bring a catalog written by an older service up to SCHEMA_VERSION, in one transaction.

        Version 0 declared `request_id TEXT UNIQUE` (one key across all owners). SQLite cannot drop a
        column constraint, so the table is rebuilt (SQLite's documented 12-step ALTER): copy into a new
        table, drop the old, rename; foreign keys are off meanwhile and checked before the commit.
        Version 1 had no `rev`: the column is added (every job at rev 0)."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        has_jobs = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
        if version >= SCHEMA_VERSION or not has_jobs:
            return
        self._db.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set it first
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                self._db.execute(_JOBS.replace("CREATE TABLE IF NOT EXISTS jobs", "CREATE TABLE jobs_v1"))
                self._db.execute(f"INSERT INTO jobs_v1 ({_COLUMNS}) SELECT {_COLUMNS} FROM jobs")
                self._db.execute("DROP TABLE jobs")  # its indexes go with it; _SCHEMA makes them anew
                self._db.execute("ALTER TABLE jobs_v1 RENAME TO jobs")
            else:
                self._db.execute("ALTER TABLE jobs ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")
            bad = self._db.execute("PRAGMA foreign_key_check").fetchall()
            if bad:
                raise sqlite3.IntegrityError(f"catalog {self.path}: {len(bad)} history rows name no job")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            readers = list(self._readers)
        for db, in_use in readers:
            with in_use:  # a read in flight ends first; the next one on it raises ProgrammingError
                db.close()
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------------------ writes

    def insert(self, rec: JobRecord, request_id: str | None = None) -> JobRecord:
        """Add a new QUEUED job; with a `request_id` this owner already used, return that job instead."""
        now = time.time()
        with self._lock:
            if request_id:
                row = self._db.execute("SELECT id FROM jobs WHERE owner = ? AND request_id = ?",
                                       (rec.owner, request_id)).fetchone()
                if row:
                    return self._get(row["id"])
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO jobs (id, kind, model, owner, priority, state, spec, run_dir, request_id, created)"
                    " VALUES (?, ?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?)",
                    (rec.id, rec.kind, rec.model, rec.owner, rec.priority, json.dumps(rec.spec, sort_keys=True),
                     rec.run_dir, request_id or None, now))
                self._db.execute("INSERT INTO history (job_id, state, time) VALUES (?, 'QUEUED', ?)", (rec.id, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._get(rec.id)

    def transition(self, job_id: str, state: str, *, from_states: Iterable[str] | None = None,
                   reason: str = "", **fields: Any) -> JobRecord | None:
        """Move a job to `state` (recording it in the history) and set `fields`, if its current state
        is in `from_states` (any state when None). Returns the updated record, or None when the
        compare failed. Entering RUNNING sets `started`; entering a terminal state sets `finished`."""
        assert state in STATES, state
        now = time.time()
        sets = {k: (json.dumps(v) if k == "result" and v is not None else v) for k, v in fields.items()}
        sets["state"] = state
        if state == "RUNNING":
            sets.setdefault("started", now)
        if state in FINAL:
            sets.setdefault("finished", now)
            sets.setdefault("cancel_requested", 0)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if row is None:
                    self._db.execute("ROLLBACK")
                    raise JobNotFound(job_id)
                if from_states is not None and row["state"] not in tuple(from_states):
                    self._db.execute("ROLLBACK")
                    return None
                if state == "RUNNING" and row["state"] == "RUNNING":
                    sets.pop("started", None)  # keep the first start time
                cols = ", ".join(f"{k} = ?" for k in sets)
                self._db.execute(f"UPDATE jobs SET {cols}, rev = rev + 1 WHERE id = ?", (*sets.values(), job_id))
                if row["state"] != state:
                    self._db.execute("INSERT INTO history (job_id, state, time, reason) VALUES (?, ?, ?, ?)",
                                     (job_id, state, now, reason))
                self._db.execute("COMMIT")
            except JobNotFound:
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._get(job_id)

    def note(self, job_id: str, reason: str) -> JobRecord:
        """Add `reason` to the history under the job's current state (something happened to a job
        that changes nothing in the catalog, e.g. Ray started a cancelled job and was told to stop it)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO history (job_id, state, time, reason) VALUES (?, ?, ?, ?)",
                                 (job_id, row["state"], time.time(), reason))
                self._db.execute("UPDATE jobs SET rev = rev + 1 WHERE id = ?", (job_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._get(job_id)

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields without a state change (e.g. cancel_requested)."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            cur = self._db.execute(f"UPDATE jobs SET {cols}, rev = rev + 1 WHERE id = ?", (*fields.values(), job_id))
            if cur.rowcount == 0:
                raise JobNotFound(job_id)

    # ------------------------------------------------------------------------------------- reads

    def get(self, job_id: str) -> JobRecord:
        with self._snapshot() as db:
            return self._get(job_id, db)

    def _get(self, job_id: str, db: sqlite3.Connection | None = None) -> JobRecord:
        db = self._db if db is None else db  # a writer reads its own change on its own connection
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return self._record(row, self._history([job_id], db)[job_id])

    @staticmethod
    def _history(ids: list[str], db: sqlite3.Connection) -> dict[str, list[tuple[str, float, str]]]:
        out: dict[str, list[tuple[str, float, str]]] = {i: [] for i in ids}
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT job_id, state, time, reason FROM history WHERE job_id IN ({marks}) ORDER BY time, rowid", ids)
        for r in rows:
            out[r["job_id"]].append((r["state"], r["time"], r["reason"]))
        return out

    @staticmethod
    def _record(row: sqlite3.Row, history: list[tuple[str, float, str]]) -> JobRecord:
        return JobRecord(
            id=row["id"], kind=row["kind"], model=row["model"], owner=row["owner"], priority=row["priority"],
            state=row["state"], spec=json.loads(row["spec"]), run_dir=row["run_dir"], ray_job_id=row["ray_job_id"],
            result=json.loads(row["result"]) if row["result"] else None, error=row["error"],
            cancel_requested=bool(row["cancel_requested"]), created=row["created"], started=row["started"],
            finished=row["finished"], seq=row["seq"], rev=row["rev"], history=history)

    @staticmethod
    def _filters(states: Iterable[str], kind: str, model: str, owner: str,
                 before_seq: int | None) -> tuple[str, list[Any]]:
        where, args = [], []
        states = list(states)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += states
        for col, val in (("kind", kind), ("model", model), ("owner", owner)):
            if val:
                where.append(f"{col} = ?")
                args.append(val)
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        return (" WHERE " + " AND ".join(where) if where else ""), args

    def list(self, *, states: Iterable[str] = (), kind: str = "", model: str = "", owner: str = "",
             before_seq: int | None = None, limit: int = 50) -> list[JobRecord]:
        """Jobs matching every given filter, newest first; `before_seq` pages past a previous page."""
        keys = self.list_keys(states=states, kind=kind, model=model, owner=owner, before_seq=before_seq, limit=limit)
        found = {rec.id: rec for rec in self.get_many(k[0] for k in keys)}
        return [found[job_id] for job_id, _, _ in keys]  # jobs are never deleted: every key is found

    def list_keys(self, *, states: Iterable[str] = (), kind: str = "", model: str = "", owner: str = "",
                  before_seq: int | None = None, limit: int = 50) -> list[tuple[str, int, int]]:
        """(id, rev, seq) of the jobs `list` returns for the same arguments: a reader that keeps what it
        built per (id, rev) fetches whole records (specs to decode, history) only for the others."""
        where, args = self._filters(states, kind, model, owner, before_seq)
        with self._snapshot() as db:
            rows = db.execute(f"SELECT id, rev, seq FROM jobs{where} ORDER BY seq DESC LIMIT ?", (*args, limit))
            return [(r["id"], r["rev"], r["seq"]) for r in rows]

    def get_many(self, ids: Iterable[str]) -> list[JobRecord]:
        """The jobs among `ids` that the catalog has (others are left out), in submission order."""
        ids = list(ids)
        out: list[JobRecord] = []
        with self._snapshot() as db:
            for i in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
                chunk = ids[i:i + 500]
                rows = db.execute(
                    f"SELECT * FROM jobs WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk).fetchall()
                hist = self._history([r["id"] for r in rows], db)
                out += [self._record(r, hist[r["id"]]) for r in rows]
        return sorted(out, key=lambda r: r.seq)

    def next_queued(self) -> JobRecord | None:
        """The queued job to start next: highest priority, then oldest."""
        with self._snapshot() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE state = 'QUEUED' ORDER BY priority DESC, seq LIMIT 1").fetchone()
            return self._record(row, self._history([row["id"]], db)[row["id"]]) if row else None

    def in_states(self, states: Iterable[str]) -> list[JobRecord]:
        states = list(states)
        with self._snapshot() as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(states))}) ORDER BY seq", states).fetchall()
            hist = self._history([r["id"] for r in rows], db)
        return [self._record(r, hist[r["id"]]) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._snapshot() as db:
            rows = db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
            return {s: 0 for s in STATES} | {r["state"]: r["n"] for r in rows}
