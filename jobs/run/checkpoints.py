"""A trained model read back: from a run directory, one of its checkpoint directories, or a state file.

    trained = load_trained("~/.foveate/runs/ram-demo")   # a train run: its best checkpoint;
                                                         # a tune run: its best trial's
    trained.model, trained.spec, trained.metrics         # the model in eval mode, its spec, its epoch's metrics

`foveate export` (jobs/run/export.py) reads models this way; the state file's contents are what
jobs/run/loop.py checkpoints (weights, optimisers, epoch, spec, metrics, model config).
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import torch

from attention_models import AttentionModel, model_from_config
from attention_models.registry import model_config
from jobs.api.errors import UserError
from jobs.api.spec import JobSpec
from jobs.run import storage
from jobs.run.layout import (
    BEST,
    CHECKPOINT_PREFIX,
    CHECKPOINT_SCORE,
    CHECKPOINT_STATE,
    RESULT,
    RunLayout,
    best_checkpoint,
    checkpoint_score,
    checkpoints_of,
)


@dataclass
class Trained:
    """A trained model and what it came from. `checkpoint`: the state file read; `metrics`: the
    metrics reported with that checkpoint (its epoch's training and validation figures)."""

    model: AttentionModel
    spec: JobSpec
    epoch: int
    metrics: dict[str, Any]
    checkpoint: str
    commit: str  # the code commit that trained it ("" for checkpoints from before it was recorded)


def _kind(fs: pafs.FileSystem, path: str) -> pafs.FileType:
    return fs.get_file_info(path).type


def find_checkpoint(path: str) -> str:
    """The state file that `path` names: itself (a state file), the one in a checkpoint directory, the
    best checkpoint of a train run's directory (its result's, else by the checkpoints' score.json), or the best
    trial's of a tune run (its result, else its best.json). Raises UserError naming the path and what was looked for."""
    fs, where = storage.resolve(path)
    kind = _kind(fs, where)
    if kind == pafs.FileType.File:
        return path
    if kind != pafs.FileType.Directory:
        raise UserError(f"{path}: no such file or directory")
    if _kind(fs, storage.join(where, CHECKPOINT_STATE)) == pafs.FileType.File:
        return storage.join(path, CHECKPOINT_STATE)
    run = RunLayout.at(path)
    for written in (run.result, run.best):  # the driver's result, else (`foveate tune`) the search's best
        if _kind(*storage.resolve(written)) == pafs.FileType.File:
            result = storage.read_json(written, {}) or {}
            # A train run's best epoch by checkpoint.score (else its last), a tune run's best trial's.
            chosen = result.get("best_checkpoint") or result.get("checkpoint_path")
            if not chosen:
                raise UserError(f"{path}: the run ended without a checkpoint ({result.get('error') or 'none reported'})")
            return find_checkpoint(chosen)
    chosen = best_checkpoint(path)
    if chosen:  # a train run still going, or run by `foveate train` (no driver result): its best so far
        return find_checkpoint(chosen)
    raise UserError(f"{path}: not a run directory, a checkpoint directory or a {CHECKPOINT_STATE} file "
                    f"(found no {RESULT}, {BEST}, {CHECKPOINT_STATE} or {CHECKPOINT_PREFIX}* in it)")


def load_state(path: str) -> dict[str, Any]:
    """The checkpoint dict of state file `path` (a local path or URI), on the CPU."""
    fs, where = storage.resolve(path)
    with fs.open_input_stream(where) as f:
        data = f.read()
    try:
        # Our own checkpoints: they hold the spec and metrics as plain Python, not only tensors.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise UserError(f"{path}: not a Foveate checkpoint ({type(exc).__name__}: {exc})") from None
    missing = [k for k in ("model", "spec", "model_config") if not isinstance(state, dict) or k not in state]
    if missing:
        raise UserError(f"{path}: not a Foveate checkpoint (no {', '.join(missing)})")
    return state


def save_checkpoint(train_run: str, state: dict[str, Any], *, keep: int, score: str, mode: str) -> str:
    """Write `state` as a new `checkpoint_<time>/state.pt` of the Ray Train run directory `train_run` (local
    or URI) and prune the others as Ray Train's CheckpointConfig would: the latest, plus the best `keep` by
    `score` (higher is better when `mode` is "max"). Ray Train's local mode (num_workers 0) keeps no
    checkpoint of its own, so the loop keeps its checkpoints here. Returns the new checkpoint directory."""
    # The same sortable name Ray Train gives its checkpoint directories, so `latest_checkpoint` reads both.
    name = CHECKPOINT_PREFIX + dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S.%f")
    directory = storage.join(train_run, name)
    fs, where = storage.resolve(directory)
    fs.create_dir(where, recursive=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with fs.open_output_stream(storage.join(where, CHECKPOINT_STATE)) as f:
        f.write(buffer.getvalue())
    write_score(directory, state, score)
    _prune(train_run, keep, mode)
    return directory


def write_score(directory: str, state: dict[str, Any], score: str) -> None:
    """The checkpoint's score.json: its epoch and its value of metric `score`, what ranks it (layout.py)."""
    metrics = state.get("metrics") or {}
    storage.write_json(storage.join(directory, CHECKPOINT_SCORE),
                       {"epoch": state.get("epoch"), "metric": score, "score": metrics.get(score),
                        "mode": (state.get("spec") or {}).get("checkpoint", {}).get("mode", "max")})


def _prune(train_run: str, keep: int, mode: str) -> None:
    dirs = checkpoints_of(train_run)
    if len(dirs) <= keep:
        return
    # Best first; among equal scores the newer one (Python's sort is stable, so sort newest-first before).
    ranked = sorted(reversed(dirs), key=lambda c: checkpoint_score(c, mode), reverse=True)
    kept = set(ranked[:keep]) | {dirs[-1]}
    for d in dirs:
        if d not in kept:
            fs, where = storage.resolve(d)
            fs.delete_dir(where)


def _as_config_value(value: Any) -> Any:
    # dataclasses.asdict wrote tuples as lists (and JSON would too); the configs take tuples.
    return tuple(_as_config_value(v) for v in value) if isinstance(value, list) else value


def model_from_state(state: dict[str, Any]) -> AttentionModel:
    """The model a checkpoint holds, weights loaded (strict key match), in eval mode."""
    spec = JobSpec.from_dict(state["spec"])
    fields = {k: _as_config_value(v) for k, v in state["model_config"].items()}
    if "weights_path" in fields:
        fields["weights_path"] = None  # the checkpoint has every weight: no pretrained trunk to read first
    model = model_from_config(model_config(spec.model.name, **fields))
    model.load_state_dict(state["model"])
    return model.eval()


def load_trained(path: str) -> Trained:
    """The trained model of a run directory, checkpoint directory or state file (see `find_checkpoint`)."""
    state_file = find_checkpoint(path)
    state = load_state(state_file)
    return Trained(model=model_from_state(state), spec=JobSpec.from_dict(state["spec"]),
                   epoch=int(state.get("epoch", -1)), metrics=dict(state.get("metrics") or {}),
                   checkpoint=state_file, commit=str(state.get("commit") or ""))


def code_commit() -> str:
    """The git commit of the Foveate code running now ("+dirty" with uncommitted changes), or "" when it
    is not a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


