"""The job service in plain Python: validate and queue jobs, run them as Ray Jobs, keep the catalog true.

    submit ──▶ catalog: QUEUED ──(a slot is free)──▶ Ray Jobs submit ──▶ PENDING ──▶ RUNNING ──▶ final
                                                 (submission_id = job id)

One background thread (the reconciler) does every Ray-side transition: it polls Ray's job table, maps
Ray's states onto ours (STOPPED → CANCELLED; a job Ray no longer knows → FAILED) and starts queued jobs
while fewer than `max_running` are handed to Ray, highest priority first. It runs once at start, so a
restarted service picks up where the last one stopped. Submitting to Ray before recording PENDING makes a
crash in between harmless: the retry finds the submission id taken and records PENDING then.
The gRPC layer (jobs/service/server.py) only translates; errors here are typed for it:
SpecError / UserError → INVALID_ARGUMENT, JobNotFound / LookupError → NOT_FOUND, JobStateError →
FAILED_PRECONDITION, ClusterUnavailable → UNAVAILABLE (and the export errors of jobs/service/exports.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cluster.jobs_api import ClusterSnapshot, ClusterUnavailable, RayJob, RayJobsAPI
from jobs.api import paths
from jobs.api.exports import ExportRequest
from jobs.api.spec import PRETRAINED, JobSpec, SpecError
from jobs.api.states import FINAL, WITH_RAY
from jobs.run import readers as run_readers
from jobs.run import storage
from jobs.run.layout import RunLayout
from jobs.service.catalog import Catalog, JobNotFound, JobRecord
from jobs.service.exports import Exported, Exporter
from jobs.service.outputs import JobStateError, epochs_or_none, failure_reason, log_text, reading

log = logging.getLogger("foveate.service")

RAY_ALIVE = ("PENDING", "RUNNING")  # Ray's job states in which a driver may still run
STRAY_NOTE = "Ray started this job after it had finished here"

__all__ = ["ClusterUnavailable", "JobNotFound", "JobService", "JobStateError", "ServiceConfig", "SpecError"]


@dataclass(frozen=True)
class ServiceConfig:
    db_path: str = "~/.foveate/catalog.db"
    # Where jobs may write (storage_path) and read datasets (data.path): directories or s3:// / gs://
    # prefixes. A spec outside them is refused at submission; nothing is ever written outside a storage
    # root. A spec with an empty storage_path gets the first. data_roots None: the current directory
    # and the storage roots. Made absolute once, here (see jobs.api.paths.roots).
    storage_roots: tuple[str, ...] = (paths.DEFAULT_STORAGE_ROOT,)
    data_roots: tuple[str, ...] | None = None
    max_running: int = 2  # jobs handed to Ray at once; more wait as QUEUED
    poll_interval: float = 2.0  # seconds between reconciles with Ray
    watch_interval: float = 1.0  # seconds between reads of a running job's metrics / logs
    # The driver command; the cluster's nodes must have Foveate installed (the local head shares this venv).
    driver: str = "python -m jobs.run.entrypoint"
    cluster_cache_s: float = 5.0  # how long a cluster description is reused for placement checks
    # One model export (ExportModel) is stopped past this: a big model traced on a busy CPU takes minutes.
    export_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.export_timeout_s > 0:
            raise ValueError(f"export_timeout_s: must be > 0, got {self.export_timeout_s}")
        storage = paths.roots("storage_roots", self.storage_roots)
        data = paths.roots("data_roots", (".", *storage) if self.data_roots is None else self.data_roots)
        object.__setattr__(self, "storage_roots", storage)
        object.__setattr__(self, "data_roots", data)


class JobService:
    def __init__(self, config: ServiceConfig, ray: RayJobsAPI):
        self.config = config
        self.ray = ray
        self.catalog = Catalog(config.db_path)
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ray_lock = threading.RLock()  # one Ray-side transition at a time
        self._thread: threading.Thread | None = None
        self._cluster: tuple[float, ClusterSnapshot] | None = None
        self._strays: set[str] = set()  # final here, alive in Ray: being stopped, still taking a slot
        # Exports of runs on object storage are cached beside the catalog (the temp dir for a bare file name).
        db_dir = os.path.dirname(os.path.expanduser(config.db_path))
        self.exporter = Exporter(config.export_timeout_s, config.storage_roots,
                                 cache_dir=os.path.join(db_dir, "export-cache") if db_dir else None)

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> JobService:
        """Reconcile once (a restarted service catches up), then keep reconciling in the background."""
        self._tick()
        self._thread = threading.Thread(target=self._loop, name="foveate-reconciler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread:
            self._thread.join(timeout=30)
        self.catalog.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.poll_interval)
            self._wake.clear()
            if not self._stop.is_set():
                self._tick()

    def _tick(self) -> None:
        try:
            self.reconcile()
            self._start_queued()
        except ClusterUnavailable as exc:
            log.warning("Ray unreachable; jobs keep their states until it answers: %s", exc)
        except Exception:
            log.exception("reconcile failed")

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _transition(self, job_id: str, state: str, **kw: Any) -> JobRecord | None:
        rec = self.catalog.transition(job_id, state, **kw)
        if rec is not None:
            log.info("job %s -> %s %s", job_id, state, kw.get("reason", ""))
            self._notify()
        return rec

    # -------------------------------------------------------------------------------- submit

    def validate(self, spec: JobSpec) -> JobSpec:
        """The spec as it will run (the default storage root filled in, absolute local paths), or
        SpecError naming the field: first the path policy (a served scheme, under this service's roots),
        before anything reads the dataset; then the one validation (jobs.run.checks) with the dataset
        and the cluster's size as this service sees them."""
        from jobs.run.checks import check_spec

        if not spec.storage_path:  # "the runner's default": this service's first storage root
            spec = spec.replace(storage_path=self.config.storage_roots[0])
        paths.under_roots("storage_path", spec.storage_path, self.config.storage_roots)
        paths.under_roots("data.path", spec.data.path, self.config.data_roots)
        if spec.model.init_from and spec.model.init_from != PRETRAINED:  # another run's weights: one of ours
            paths.under_roots("model.init_from", spec.model.init_from, self.config.storage_roots)
        spec = spec.with_absolute_paths()
        return check_spec(spec, data=True, resources=self._resources())

    def _resources(self):
        from cluster.connect import ClusterResources

        snap = self.cluster()
        if not any(n.alive for n in snap.nodes):
            return None  # Ray has not reported its nodes yet: the driver checks again before training
        return ClusterResources(nodes=sum(n.alive for n in snap.nodes), cpus=snap.cpus, gpus=snap.gpus, free_cpus=0, free_gpus=0)

    def cluster(self) -> ClusterSnapshot:
        now = time.monotonic()
        if self._cluster is None or now - self._cluster[0] > self.config.cluster_cache_s:
            self._cluster = (now, self.ray.describe())
        return self._cluster[1]

    def submit(self, spec: JobSpec, *, owner: str = "", priority: int = 0, request_id: str = "") -> JobRecord:
        """Validate and queue a job; it starts as soon as a slot is free."""
        spec = self.validate(spec)
        job_id = f"job-{uuid.uuid4().hex[:12]}"
        spec = spec.replace(name=job_id)  # the run is named after the job: a resubmitted run resumes
        rec = JobRecord(id=job_id, kind=spec.kind, model=spec.model.name, owner=owner, priority=priority,
                        state="QUEUED", spec=spec.to_dict(), run_dir=RunLayout.of(spec).root)
        rec = self.catalog.insert(rec, request_id=request_id or None)
        self._notify()
        self._wake.set()
        return rec

    def _start_queued(self) -> None:
        with self._ray_lock:
            while True:
                counts = self.catalog.counts()
                if sum(counts[s] for s in WITH_RAY) + len(self._strays) >= self.config.max_running:
                    return
                rec = self.catalog.next_queued()
                if rec is None:
                    return
                self._start(rec)

    def _start(self, rec: JobRecord) -> None:
        """Write the spec beside the run and hand the job to Ray. A job that cannot start (its run
        directory outside the roots or not writable, Ray refusing it) goes FAILED with the reason at once,
        so it never blocks the queue; only an unreachable Ray leaves it QUEUED for the next tick."""
        try:
            # Again here: a job queued under an earlier service's roots must not write outside these.
            paths.under_roots("storage_path", rec.spec.get("storage_path") or rec.run_dir, self.config.storage_roots)
            paths.under_roots("storage_path", rec.run_dir, self.config.storage_roots)
            spec_uri = RunLayout.at(rec.run_dir).spec
            storage.write_json(spec_uri, rec.spec)
        except SpecError as exc:
            self._transition(rec.id, "FAILED", from_states=("QUEUED",), reason="outside the storage roots",
                             error=str(exc))
            return
        except Exception as exc:  # OSError and pyarrow's errors: a retry would fail the same way
            self._transition(rec.id, "FAILED", from_states=("QUEUED",), reason="run directory not writable",
                             error=f"cannot write {RunLayout.at(rec.run_dir).spec}: {type(exc).__name__}: {exc}")
            return
        entrypoint = f"{self.config.driver} {shlex.quote(spec_uri)}"
        try:
            self.ray.submit(rec.id, entrypoint, env={"PYTHONUNBUFFERED": "1"},
                            metadata={"foveate_job": rec.id, "owner": rec.owner})
        except ClusterUnavailable:
            raise
        except Exception as exc:  # Ray refused the submission itself: it will not succeed on retry
            self._transition(rec.id, "FAILED", from_states=("QUEUED",), reason="Ray refused the job",
                             error=f"Ray Jobs refused the submission: {exc}")
            return
        if self._transition(rec.id, "PENDING", from_states=("QUEUED",), ray_job_id=rec.id,
                            reason="submitted to Ray") is None:
            self.ray.stop(rec.id)  # cancelled while we were submitting it

    # ----------------------------------------------------------------------------- reconcile

    def reconcile(self) -> None:
        """Bring every PENDING/RUNNING record in line with what Ray reports, and stop in Ray any job of
        ours that Ray runs although the catalog has it finished (see `_stop_strays`)."""
        with self._ray_lock:
            active = self.catalog.in_states(WITH_RAY)
            try:
                ray_jobs = self.ray.jobs()
            except ClusterUnavailable:
                if active or self._strays:
                    raise
                return  # nothing of ours is with Ray: an idle service need not hear from it
            for rec in active:
                self._apply(rec, ray_jobs.get(rec.id))
            self._stop_strays(ray_jobs, {rec.id for rec in active})

    def _apply(self, rec: JobRecord, rj: RayJob | None) -> None:
        if rj is None:
            self._transition(rec.id, "FAILED", from_states=WITH_RAY, reason="lost",
                             error="Ray has no record of this job: its cluster was restarted or replaced")
            return
        if rec.cancel_requested and rj.status in RAY_ALIVE:
            # Ray's stop is fire-and-forget and is lost on a job whose supervisor is not up yet (PENDING):
            # ask again on every pass until Ray reports the job stopped.
            self.ray.stop(rec.id)
        if rj.status == "PENDING":
            return
        if rj.status in ("RUNNING", "SUCCEEDED", "FAILED") and rec.state == "PENDING":
            started = rj.start_time_ms / 1000 if rj.start_time_ms else time.time()
            self._transition(rec.id, "RUNNING", from_states=("PENDING",), started=started)
        if rj.status == "SUCCEEDED":
            result = run_readers.read_result(rec.run_dir)
            self._transition(rec.id, "SUCCEEDED", from_states=WITH_RAY, result=result,
                             reason=run_readers.resume_note(result))
        elif rj.status == "FAILED":
            result = run_readers.read_result(rec.run_dir)
            # The driver's own account (a worker's error, a placement that never came) says more than Ray's
            # "entrypoint command failed with exit code 1"; Ray's message where the driver wrote none.
            reason = (result or {}).get("error") or failure_reason(rj.message)
            self._transition(rec.id, "FAILED", from_states=WITH_RAY, reason=reason.splitlines()[0][:200],
                             error=reason, result=result)
        elif rj.status == "STOPPED":
            why = "cancelled by request" if rec.cancel_requested else "stopped in Ray outside the service"
            self._transition(rec.id, "CANCELLED", from_states=WITH_RAY, reason=why)

    def _stop_strays(self, ray_jobs: dict[str, RayJob], active: set[str]) -> None:
        """Jobs Ray has alive whose catalog record is final (Ray started a job after it was cancelled, or
        one it had been reported lost): stop them in Ray, say so once in their history, and count them as
        taking a slot (`self._strays`) until Ray reports them ended. Ray's other jobs are not ours."""
        alive = [sid for sid, rj in ray_jobs.items() if rj.status in RAY_ALIVE and sid not in active]
        strays = {rec.id: rec for rec in self.catalog.get_many(alive) if rec.state in FINAL}
        for job_id, rec in strays.items():
            log.warning("job %s is %s but Ray runs it (%s): stopping it in Ray", job_id, rec.state,
                        ray_jobs[job_id].status)
            self.ray.stop(job_id)
            if not rec.history or not rec.history[-1][2].startswith(STRAY_NOTE):
                self.catalog.note(job_id, f"{STRAY_NOTE} ({ray_jobs[job_id].status} there); stopped it in Ray")
                self._notify()
        self._strays = set(strays)

    # -------------------------------------------------------------------------------- cancel

    def cancel(self, job_id: str, wait_s: float = 10.0) -> JobRecord:
        """Cancel a queued job at once, or stop a running one in Ray and wait (briefly) for Ray to
        confirm. Cancelling a CANCELLED job returns it (so concurrent cancels agree); a job that
        finished otherwise is JobStateError (FAILED_PRECONDITION)."""
        # Under the Ray lock a dispatch of this job is either done (it is PENDING, Ray has it) or not
        # begun (it stays QUEUED and never starts): cancel cannot slip between Ray's submit and PENDING.
        with self._ray_lock:
            rec = self.catalog.get(job_id)
            if rec.state == "QUEUED":
                rec = self._transition(job_id, "CANCELLED", from_states=("QUEUED",),
                                       reason="cancelled while queued") or self.catalog.get(job_id)
            if rec.state == "CANCELLED":
                return rec
            if rec.state in FINAL:
                raise JobStateError(f"job {job_id} has already finished ({rec.state}); nothing to cancel")
            self.catalog.update(job_id, cancel_requested=1)
            # _apply stops it only where Ray reports it alive: never a job Ray does not have.
            self._apply(self.catalog.get(job_id), self.ray.job(job_id))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            rec = self.catalog.get(job_id)
            if rec.state in FINAL:
                break
            time.sleep(0.3)
            with self._ray_lock:
                self._apply(self.catalog.get(job_id), self.ray.job(job_id))
        self._wake.set()  # a slot may be free now
        return self.catalog.get(job_id)

    # --------------------------------------------------------------------------------- reads

    def get(self, job_id: str) -> JobRecord:
        return self.catalog.get(job_id)

    def list(self, **filters: Any) -> list[JobRecord]:
        return self.catalog.list(**filters)

    def list_keys(self, **filters: Any) -> list[tuple[str, int, int]]:
        return self.catalog.list_keys(**filters)

    def get_many(self, ids: list[str]) -> list[JobRecord]:
        return self.catalog.get_many(ids)

    def watch(self, job_id: str, cancelled: Callable[[], bool] = lambda: False) -> Iterator[tuple]:
        """("state", record, (state, time, reason)) and ("epoch", record, trial, epoch, metrics) events:
        the history and epochs so far, then new ones as they happen, ending with the final state."""
        sent_states, sent_epochs = 0, set()
        while True:
            rec = self.catalog.get(job_id)
            final = rec.state in FINAL
            history = rec.history[:-1] if final else rec.history  # the final state goes out last
            for change in history[sent_states:]:
                yield ("state", rec, change)
            sent_states = max(sent_states, len(history))
            if rec.state != "QUEUED":
                for trial, epoch, metrics in epochs_or_none(rec):
                    if (trial, epoch) not in sent_epochs:
                        sent_epochs.add((trial, epoch))
                        yield ("epoch", rec, trial, epoch, metrics)
            if final:
                for change in rec.history[sent_states:]:
                    yield ("state", rec, change)
                return
            if cancelled() or self._stop.is_set():
                return
            with self._changed:
                self._changed.wait(self.config.watch_interval)

    def wake_watchers(self) -> None:
        """Wake every waiting watch/logs loop now (a stream's client went away: its thread returns at once)."""
        self._notify()

    def logs(self, job_id: str, follow: bool, cancelled: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """The driver's log; with `follow`, new output until the job ends. From Ray while it has the job,
        else the copy kept in the run directory (after a restart of the service or of the cluster)."""
        sent, source = 0, None
        while True:
            rec = self.catalog.get(job_id)
            done = rec.state in FINAL
            source, text = log_text(self.ray, rec, source)
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
            if not follow or done or cancelled() or self._stop.is_set():
                return
            with self._changed:
                self._changed.wait(self.config.watch_interval)

    def trials(self, job_id: str) -> tuple[list[dict[str, Any]], bool, str]:
        rec = self.catalog.get(job_id)
        if rec.kind != "tune":
            raise JobStateError(f"job {job_id} is a train job; only tune jobs have trials")
        with reading(rec):
            return run_readers.trials(rec.run_dir)

    def attention(self, job_id: str, trial: str = "", epoch: int | None = None):
        """(epochs, epoch, table or None) of the attention records of a job (and trial)."""
        rec = self.catalog.get(job_id)
        with reading(rec):
            if rec.kind == "tune":
                known = run_readers.trial_ids(rec.run_dir)
                if not trial:
                    raise SpecError(f"trial: required for tune job {job_id}; its trials: {', '.join(known) or 'none yet'}")
                if trial not in known:
                    raise LookupError(f"trial {trial!r} of job {job_id} not found; "
                                      f"its trials: {', '.join(known) or 'none yet'}")
            elif trial:
                raise SpecError(f"trial: job {job_id} is a train job; leave trial empty")
            return run_readers.attention(rec.run_dir, trial, epoch)

    def export(self, job_id: str, format: str, samples: int) -> Exported:
        """A SUCCEEDED job's model as an exported file and card (jobs/service/exports.py), built on the
        first request and kept in its run directory. UserError for a format or samples out of the rules."""
        request = ExportRequest(format, samples)
        return self.exporter.export(self.catalog.get(job_id), request)

    def describe(self) -> tuple[ClusterSnapshot, dict[str, int]]:
        self._cluster = (time.monotonic(), self.ray.describe())
        return self._cluster[1], self.catalog.counts()
