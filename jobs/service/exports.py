"""Model export in the job service: a SUCCEEDED job's model as an ONNX or TorchScript file and its model
card, built by `python -m jobs.run.export` in a subprocess (the service process never imports torch) and
kept in the run directory (`RunLayout.export`), so a second request sends the same file at once. A run
on object storage (s3://, gs://) is exported here into a local cache (`cache_dir`), uploaded to its
export/ directory in the bucket, and sent from the cache; a later service finds it in the bucket.

    exporter = Exporter(timeout_s=600, storage_roots=config.storage_roots)
    exported = exporter.export(rec, ExportRequest("onnx", samples=0))   # Exported(path, card_json)

One export runs at a time per target file: a caller that finds one under way waits for it and gets its
outcome (file or error), so two calls never write the same file or run the same export twice. The
exporter writes into a fresh temporary directory beside the exports; after it exits 0 its card and then
its model are renamed into place, so a model file present means both are whole and a half-written file is
never served (not even after a crash mid-export: the temporary directory is all that is left).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jobs
from jobs.api import paths
from jobs.api.exports import ExportRequest, card_path
from jobs.api.spec import SpecError
from jobs.run import storage
from jobs.run.layout import RunLayout
from jobs.service.catalog import JobRecord
from jobs.service.outputs import JobStateError

log = logging.getLogger("foveate.service")

EXPORTER = "jobs.run.export"  # `python -m` module: exit 0 written, 2 the request refused, else failed
CHUNK_BYTES = 1 << 20  # one stream message's slice of the file, far below gRPC's 4 MB message limit
TMP_PREFIX = ".tmp-"  # the exporter's scratch directories inside export/ (never served)
_CLI_PREFIX = re.compile(r"^foveate [\w-]+: error: ")  # the exporter's one-line error, as its CLI prints it
# The source checkout this service runs from (tests, `PYTHONPATH=.`), or None for an installed package.
_ROOT = Path(jobs.__file__).resolve().parents[1]
_CHECKOUT = str(_ROOT) if (_ROOT / "pyproject.toml").is_file() else None


class ExportRefused(ValueError):
    """The exporter refused the request (it exited 2: e.g. sampled paths for a deterministic family);
    the message is its one line naming the field and the rule. INVALID_ARGUMENT."""


class ExportFailed(RuntimeError):
    """The exporter failed otherwise; the message ends with its last line of stderr. INTERNAL."""


class ExportTimedOut(TimeoutError):
    """The exporter ran past the service's limit and was killed. DEADLINE_EXCEEDED."""


@dataclass(frozen=True)
class Exported:
    """An exported model on local disk: its file and its model card (JSON text)."""

    path: str
    card_json: str

    @property
    def file_name(self) -> str:
        return os.path.basename(self.path)


@dataclass
class _Flight:
    """One export under way: whoever asks for the same file meanwhile waits for `done` and shares the outcome."""

    done: threading.Event = field(default_factory=threading.Event)
    result: Exported | None = None
    error: BaseException | None = None


class Exporter:
    """Exports of finished jobs' models, each built once (see the module docstring); `timeout_s` bounds
    one export, `storage_roots` are the only places an export is written (inside the job's run directory)."""

    def __init__(self, timeout_s: float, storage_roots: tuple[str, ...], python: str = sys.executable,
                 cache_dir: str | None = None):
        self.timeout_s = timeout_s
        self.storage_roots = storage_roots
        self.python = python
        # Local copies of exports of runs on object storage (the file a stream is sent from).
        self.cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), f"foveate-exports-{os.getuid()}")
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}  # target path -> the export building it; gone once it ends

    def export(self, rec: JobRecord, request: ExportRequest) -> Exported:
        """`rec`'s model exported as `request` asks, from the run's export/ directory when it is there.
        JobStateError (FAILED_PRECONDITION) for a job that has not succeeded or whose run directory this
        service cannot write; ExportRefused, ExportFailed, ExportTimedOut from the exporter."""
        run_dir = self._run_dir(rec)
        kept = RunLayout.at(run_dir).export(request.file_name)  # where the export is kept with the run
        # The file the exporter writes and the stream reads: local, for a run on object storage a cache copy.
        target = os.path.join(self.cache_dir, rec.id, request.file_name) if paths.is_uri(run_dir) else kept
        with self._lock:
            flight = self._flights.get(target)
            leader = flight is None
            if leader:
                flight = self._flights[target] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result
        try:
            flight.result = cached(target) or (self._fetch(kept, target) if kept != target else None) \
                or self._build(rec.id, run_dir, request, target)
            if kept != target and not storage.exists(kept):
                # Card first, model last: a model present in the bucket means both are whole (as here).
                storage.copy_file(card_path(target), card_path(kept))
                storage.copy_file(target, kept)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[target]
            flight.done.set()

    def _run_dir(self, rec: JobRecord) -> str:
        """The job's run directory, if an export may be written there; else JobStateError saying why."""
        if rec.state != "SUCCEEDED":
            raise JobStateError(f"job {rec.id} is {rec.state}; only a SUCCEEDED job has a model to export")
        try:  # a job finished under an earlier service's roots: nothing is written outside these
            paths.under_roots("storage_path", rec.run_dir, self.storage_roots)
        except SpecError as exc:
            raise JobStateError(f"job {rec.id}: cannot export into its run directory: {exc}") from None
        if paths.is_uri(rec.run_dir):
            try:
                found = storage.exists(RunLayout.at(rec.run_dir).result)
            except OSError as exc:
                raise JobStateError(f"job {rec.id}: cannot read its run directory {rec.run_dir}: "
                                    f"{str(exc).splitlines()[0]}") from None
            if not found:
                raise JobStateError(f"job {rec.id}: its run directory {rec.run_dir} holds no result any more")
        elif not os.path.isdir(rec.run_dir):
            raise JobStateError(f"job {rec.id}: its run directory {rec.run_dir} no longer exists")
        return rec.run_dir

    @staticmethod
    def _fetch(kept: str, target: str) -> Exported | None:
        """The export kept in the bucket (by an earlier service, say), copied into the cache; None if absent."""
        if not (storage.exists(kept) and storage.exists(card_path(kept))):
            return None
        storage.copy_file(card_path(kept), card_path(target))
        storage.copy_file(kept, target)
        return cached(target)

    def _build(self, job_id: str, run_dir: str, request: ExportRequest, target: str) -> Exported:
        export_dir = os.path.dirname(target)
        os.makedirs(export_dir, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=export_dir)
        out = os.path.join(scratch, request.file_name)
        cmd = [self.python, "-m", EXPORTER, run_dir, "--format", request.format, "--out", out,
               "--samples", str(request.samples)]
        env = dict(os.environ)
        if _CHECKOUT:  # the exporter is this checkout's code, not whatever an editable install points at
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [_CHECKOUT, os.environ.get("PYTHONPATH")]))
        log.info("job %s: exporting %s", job_id, request.file_name)
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                    start_new_session=True)  # its own process group: a timeout kills it all
            try:
                stdout, stderr = proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise ExportTimedOut(f"export: {request.file_name} of job {job_id} took longer than this service's "
                                     f"limit of {self.timeout_s:g} s and was stopped (foveate serve --export-timeout)") from None
            log.debug("job %s: exporter said: %s", job_id, stdout.strip())
            if proc.returncode != 0:
                line = last_line(stderr)
                log.warning("job %s: export of %s exited %d: %s", job_id, request.file_name, proc.returncode,
                            stderr.strip()[-4000:])
                if proc.returncode == 2:
                    raise ExportRefused(line)
                raise ExportFailed(f"export of {request.file_name} failed (exit {proc.returncode}): {line}")
            missing = [os.path.basename(p) for p in (out, card_path(out)) if not os.path.isfile(p)]
            if missing:
                raise ExportFailed(f"export of {request.file_name}: the exporter exited 0 but wrote no "
                                   f"{' and no '.join(missing)}")
            os.replace(card_path(out), card_path(target))
            os.replace(out, target)  # last: the model's presence is what `cached` trusts
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        exported = cached(target)
        if exported is None:
            raise ExportFailed(f"export of {request.file_name}: the exporter's model card is not JSON")
        log.info("job %s: exported %s (%d bytes) in %.1f s", job_id, request.file_name, os.path.getsize(target),
                 time.monotonic() - t0)
        return exported


def cached(target: str) -> Exported | None:
    """The export at `target` if it and its card are there (and the card is JSON), else None."""
    if not (os.path.isfile(target) and os.path.isfile(card_path(target))):
        return None
    text = Path(card_path(target)).read_text()
    try:
        json.loads(text)
    except ValueError:
        log.warning("%s is not JSON: exporting again", card_path(target))
        return None
    return Exported(target, text)


def last_line(stderr: str) -> str:
    """The exporter's last line of stderr without its CLI prefix (the rule, as a status message says it)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return _CLI_PREFIX.sub("", lines[-1]) if lines else "the exporter said nothing on stderr"


def chunks(path: str, size: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """(the file's total size, the next slice of it) until the file ends; one (size, b"") for an empty
    file. The size is the open file's: a rename onto `path` meanwhile does not change what is sent."""
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        data = f.read(size)
        yield total, data
        while data := f.read(size):
            yield total, data
