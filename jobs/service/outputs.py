"""What the service reads of a run and of Ray's answers, made safe for a request thread: a run directory
that cannot be read is the job's state (FAILED_PRECONDITION), not an internal error; a failed Ray job's
message is cut to the line a user needs."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

import pyarrow as pa

from cluster.jobs_api import ClusterUnavailable, RayJobsAPI
from jobs.api.spec import SpecError
from jobs.run import readers as run_readers
from jobs.service.catalog import JobRecord

log = logging.getLogger("foveate.service")


class JobStateError(RuntimeError):
    """The job's state forbids the request (cancelling a finished job, trials of a train job)."""


# What reading a run directory raises when it cannot be read at all (a scheme pyarrow has no filesystem
# for, a store that refuses us, a corrupt file): the job's outputs are unreadable, not the request wrong.
_UNREADABLE = (OSError, ValueError, pa.ArrowException)


@contextlib.contextmanager
def reading(rec: JobRecord) -> Iterator[None]:
    """Reading `rec`'s run directory: failures become JobStateError naming it (LookupError, SpecError pass)."""
    try:
        yield
    except SpecError:
        raise
    except _UNREADABLE as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JobStateError(f"job {rec.id}: cannot read its run directory {rec.run_dir}: {first}") from None


def epochs_or_none(rec: JobRecord) -> list[tuple[str, int, dict[str, float]]]:
    """The epochs reported so far; none while the run directory cannot be read (a watch keeps going)."""
    try:
        return run_readers.epoch_metrics(rec.run_dir, rec.kind)
    except _UNREADABLE as exc:
        log.debug("job %s: cannot read %s: %s", rec.id, rec.run_dir, exc)
        return []


_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


def failure_reason(message: str) -> str:
    """A failed Ray job's reason, readable: Ray's first line plus the last exception line of the log."""
    lines = [ln.rstrip() for ln in (message or "").splitlines() if ln.strip()]
    if not lines:
        return "the job failed without a message"
    head = lines[0].split(", last available logs")[0]
    exc = next((ln for ln in reversed(lines[1:]) if _EXC_LINE.match(ln)), "")
    return f"{exc}\n({head})" if exc else head


def log_text(ray: RayJobsAPI, rec: JobRecord, source: str | None) -> tuple[str, str]:
    """(source, text) of `rec`'s driver log: "ray" (the whole driver output, while Ray keeps the job) or
    "run" (the copy in its run directory, which outlives the Ray head). A stream keeps the source it
    started with (their offsets differ by the lines before the copy began) until that one has nothing."""
    from_ray = ""
    if rec.ray_job_id and source in (None, "ray"):
        try:
            from_ray = ray.logs(rec.ray_job_id)
        except (ClusterUnavailable, RuntimeError) as exc:
            log.debug("logs of %s from Ray: %s", rec.id, exc)
    if from_ray:
        return "ray", from_ray
    try:
        return "run", run_readers.driver_log(rec.run_dir)
    except _UNREADABLE as exc:
        log.debug("logs of %s from %s: %s", rec.id, rec.run_dir, exc)
        return source or "run", ""
