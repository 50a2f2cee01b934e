"""Read what a running or finished job wrote into its run directory (local path or pyarrow URI).

The names of the files are jobs/run/layout.py's (RunLayout); the attention records' are
jobs/run/record_files.py's. Nothing here imports torch or Ray: the job service reads runs through this.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from jobs.api.tables import PARAM_PREFIX
from jobs.run import record_files, storage
from jobs.run.layout import RunLayout


def trial_ids(run_dir: str) -> list[str]:
    """Trials of a tune job that have written anything yet, sorted."""
    fs, path = storage.resolve(RunLayout.at(run_dir).trials_dir)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def numeric(m: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics dict (bools and strings dropped), as floats."""
    return {k: float(v) for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def epoch_metrics(run_dir: str, kind: str) -> list[tuple[str, int, dict[str, float]]]:
    """(trial, epoch, metrics) of every epoch reported so far; trial is "" for train jobs."""
    run = RunLayout.at(run_dir)
    out = []
    for trial in trial_ids(run_dir) if kind == "tune" else [""]:
        try:
            history = storage.read_json(run.for_trial(trial).metrics, [])
        except (OSError, ValueError):  # caught mid-rewrite on a filesystem without atomic moves
            continue
        for m in history:
            if isinstance(m, dict) and "epoch" in m:
                out.append((trial, int(m["epoch"]), numeric(m)))
    return out


def read_result(run_dir: str) -> dict[str, Any] | None:
    """The driver's result (TrainResult or TuneResult as a dict), or None before it wrote one."""
    try:
        return storage.read_json(RunLayout.at(run_dir).result, None)
    except (OSError, ValueError):
        return None


def resume_note(result: dict[str, Any] | None) -> str:
    """What the run's resumes say, for the job's history (workers or a node lost, or the run restarted):
    'resumed 1 time from a checkpoint: at epoch 3 (checkpoint of epoch 2)'; "" when it never resumed."""
    resumes = (result or {}).get("resumes") or []
    if not resumes:
        return ""
    where = ", ".join(f"at epoch {r['epoch']} (checkpoint of epoch {r['from_checkpoint_epoch']})" for r in resumes)
    return f"resumed {len(resumes)} time{'s' if len(resumes) != 1 else ''} from a checkpoint: {where}"


def driver_log(run_dir: str) -> str:
    """The driver's log kept in the run directory (jobs/run/driver_log.py); "" when there is none yet."""
    fs, path = storage.resolve(RunLayout.at(run_dir).driver_log)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return ""
    with fs.open_input_stream(path) as f:
        return f.read().decode(errors="replace")


def trials(run_dir: str) -> tuple[list[dict[str, Any]], bool, str]:
    """(rows, complete, best_trial): the trials table once the search has written it, else rows read
    live from each trial's metrics and parameters."""
    run = RunLayout.at(run_dir)
    fs, path = storage.resolve(run.trials_table)
    if fs.get_file_info(path).type == pafs.FileType.File:
        rows = storage.read_table(run.trials_table).to_pylist()
        best = storage.read_json(run.best, {}) or {}
        return [_clean(r) for r in rows], True, str(best.get("best_trial") or "")
    params = {t: trial_params(run_dir, t) for t in trial_ids(run_dir)}
    rows = [{"trial": t, **params.get(t, {}), "epoch": e, **m} for t, e, m in epoch_metrics(run_dir, "tune")]
    return rows, False, ""


def trial_params(run_dir: str, trial: str) -> dict[str, Any]:
    """A trial's parameters as the trials table names them (`param.<key>`), from the file the trial writes
    as it starts; {} before it has."""
    try:
        params = storage.read_json(RunLayout.at(run_dir, trial).params, {}) or {}
    except (OSError, ValueError):  # caught mid-write on a filesystem without atomic moves
        return {}
    return {f"{PARAM_PREFIX}{k}": v for k, v in params.items()}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def attention(run_dir: str, trial: str, epoch: int | None) -> tuple[list[int], int, pa.Table | None]:
    """(epochs with a record, the epoch chosen, its table); epoch None = the latest. (…, -1, None) when
    nothing is recorded yet; raises LookupError for an epoch without a record."""
    layout = RunLayout.at(run_dir, trial)
    epochs = record_files.record_epochs(layout)
    if not epochs:
        if epoch is not None:
            raise LookupError(f"epoch {epoch} has no attention record yet (none recorded)")
        return [], -1, None
    chosen = epochs[-1] if epoch is None else epoch
    if chosen not in epochs:
        raise LookupError(f"epoch {chosen} has no attention record; recorded epochs: {epochs}")
    return epochs, chosen, record_files.read_records(layout, chosen)
