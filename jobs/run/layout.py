"""The run layout: every file and directory name of a run, of its trials and of Ray's run directories.

One run of a spec named NAME under the storage base STORAGE (`jobs.api.paths.absolute(spec.storage_path)`,
a local directory or a pyarrow URI):

    STORAGE/NAME/                               the run directory (`root`); also Ray Train's run of a train job
        spec.json                               the spec the job service handed to the driver
        driver.log                              the driver's log (a place kept for it)
        result.json                             the driver's result (TrainResult or TuneResult as a dict)
        metrics.json                            train: one dict per reported epoch (rank 0 rewrites it)
        resumes.json                            train: each resume from a checkpoint after a failure (epoch, time)
        attention/epoch=NNNN.parquet            train: the attention record of each epoch
        checkpoint_*/state.pt                   train: Ray Train's checkpoints (weights, optimisers, spec)
        checkpoint_*/score.json                 ... each with its epoch, the checkpoint.score metric, its value, the mode
        trials/TRIAL/metrics.json               tune: the same per trial ...
        trials/TRIAL/attention/...              ... its attention records ...
        trials/TRIAL/params.json                ... the parameters it was given (written as it starts) ...
        trials/TRIAL/placement_group.json       ... the placement group of its Train workers (freed at its end) ...
        trials/TRIAL/result.json                ... and its trial driver's result (params, checkpoint, error)
        trials.parquet, best.json               tune: written when the search ends
        export/model-mean.onnx (+ .card.json)   exported models (`foveate export`, the ExportModel RPC)
    STORAGE/NAME-TRIAL/checkpoint_*/            tune: Ray Train's run of one trial (its checkpoints)
    STORAGE/NAME-tuner/                         tune: Ray Tune's experiment (restored after a restart)

Ray's runs are named after the job, never a timestamp: a restarted job finds its checkpoints and resumes.
Nothing here imports torch or Ray: the job service reads runs through this.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.api.paths import DEFAULT_STORAGE_ROOT, absolute
from jobs.run import storage

if TYPE_CHECKING:
    from jobs.api.spec import JobSpec

SPEC = "spec.json"
DRIVER_LOG = "driver.log"
RESULT = "result.json"
METRICS = "metrics.json"
RESUMES = "resumes.json"
ATTENTION = "attention"
TRIALS = "trials"
TRIALS_TABLE = "trials.parquet"
BEST = "best.json"
PARAMS = "params.json"
PLACEMENT_GROUP = "placement_group.json"
TUNER_SUFFIX = "-tuner"
EXPORT = "export"
CHECKPOINT_PREFIX = "checkpoint_"  # Ray Train names its checkpoint directories checkpoint_<timestamp>
CHECKPOINT_STATE = "state.pt"  # the weights and co. in each checkpoint directory (jobs/run/loop.py writes it)
CHECKPOINT_SCORE = "score.json"  # beside it: {"epoch", "metric", "score" (its value), "mode"}
DEFAULT_NAME = "run"  # a spec without a name (the CLI and the service always give one)
_RECORD = re.compile(r"epoch=(\d+)\.parquet")


def record_name(epoch: int) -> str:
    """The attention record file of `epoch`: `epoch=0007.parquet` (zero-padded, so names sort by epoch)."""
    return f"epoch={epoch:04d}.parquet"


def latest_checkpoint(train_run: str) -> str | None:
    """The newest `checkpoint_*` directory of a Ray Train run, or None."""
    found = checkpoints_of(train_run)
    return found[-1] if found else None


def checkpoints_of(train_run: str) -> list[str]:
    """The `checkpoint_*` directories of a Ray Train run, oldest first (their names sort by time)."""
    import pyarrow.fs as pafs

    fs, path = storage.resolve(train_run)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    names = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(path))
                   if i.type == pafs.FileType.Directory and i.base_name.startswith(CHECKPOINT_PREFIX))
    return [storage.join(train_run, n) for n in names]


def checkpoint_score(checkpoint: str, mode: str) -> float:
    """How good a checkpoint is, higher better whatever `mode` ("max"/"min"): its score.json's score, -inf
    when it has none (a checkpoint from before scores were kept, or a NaN metric)."""
    import math

    value = (storage.read_json(storage.join(checkpoint, CHECKPOINT_SCORE), {}) or {}).get("score")
    if not isinstance(value, int | float) or not math.isfinite(value):
        return -math.inf
    return value if mode == "max" else -value


def best_checkpoint(train_run: str, mode: str | None = None) -> str | None:
    """The best-scoring checkpoint of a Ray Train run (the newest among equals), or None if it has none.
    `mode` None: the mode the newest checkpoint's score.json records (its spec's checkpoint.mode)."""
    found = checkpoints_of(train_run)
    if not found:
        return None
    if mode is None:
        mode = (storage.read_json(storage.join(found[-1], CHECKPOINT_SCORE), {}) or {}).get("mode", "max")
    # Python's max keeps the first of equals: scan newest first.
    return max(reversed(found), key=lambda c: checkpoint_score(c, mode))


def record_epoch(path: str) -> int | None:
    """The epoch of an attention record's file name (a path or URI), or None if it names no record."""
    m = _RECORD.fullmatch(path.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class RunLayout:
    """Where one run (trial "") or one Tune trial of a run keeps its files.

    `storage` is the storage base (an absolute local path or a URI), `name` the run's name; the run
    directory is `storage/name`, a trial's own outputs go under `storage/name/trials/<trial>`.
    """

    storage: str
    name: str
    trial: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("RunLayout.name: must not be empty")

    @classmethod
    def of(cls, spec: JobSpec, trial: str = "") -> RunLayout:
        """The layout of `spec`'s run (or of its trial `trial`). An empty `storage_path` means the
        runner's default root (the CLI and the service fill in their own before a run starts)."""
        return cls(absolute(spec.storage_path or DEFAULT_STORAGE_ROOT, field="storage_path"),
                   spec.name or DEFAULT_NAME, trial)

    @classmethod
    def at(cls, run_dir: str, trial: str = "") -> RunLayout:
        """The layout of the run whose directory is `run_dir` (as the job catalog keeps it)."""
        head, sep, name = run_dir.rstrip("/").rpartition("/")
        return cls(head or sep, name, trial)  # "/job" lies under "/"; a bare "job" under "" (here)

    def for_trial(self, trial: str) -> RunLayout:
        return dataclasses.replace(self, trial=trial)

    def _in_storage(self, name: str) -> str:
        return storage.join(self.storage, name) if self.storage else name

    # The run's own files (the same for the run and its trials).
    @property
    def root(self) -> str:
        """The run directory."""
        return self._in_storage(self.name)

    @property
    def spec(self) -> str:
        return storage.join(self.root, SPEC)

    @property
    def driver_log(self) -> str:
        return storage.join(self.root, DRIVER_LOG)

    @property
    def trials_dir(self) -> str:
        """Where each trial of a tune run has its directory (named by the trial id)."""
        return storage.join(self.root, TRIALS)

    @property
    def trials_table(self) -> str:
        return storage.join(self.root, TRIALS_TABLE)

    @property
    def best(self) -> str:
        return storage.join(self.root, BEST)

    @property
    def export_dir(self) -> str:
        """Where exports of the run's model are kept (a tune run's: of its best trial)."""
        return storage.join(self.root, EXPORT)

    def export(self, file_name: str) -> str:
        """The exported model `file_name` (`jobs.api.exports.ExportRequest.file_name`) of this run."""
        return storage.join(self.export_dir, file_name)

    # What the run, or the trial, writes as it trains.
    @property
    def dir(self) -> str:
        """The run directory for the run, `trials/<trial>` inside it for a trial."""
        return storage.join(self.trials_dir, self.trial) if self.trial else self.root

    @property
    def metrics(self) -> str:
        return storage.join(self.dir, METRICS)

    @property
    def result(self) -> str:
        return storage.join(self.dir, RESULT)

    @property
    def resumes(self) -> str:
        """Each time the run's workers resumed from a checkpoint (after a worker or node was lost)."""
        return storage.join(self.dir, RESUMES)

    @property
    def params(self) -> str:
        """A trial's parameters, written when it starts."""
        return storage.join(self.dir, PARAMS)

    @property
    def placement_group(self) -> str:
        """The placement group a trial's Train workers run in (rank 0 writes it as they start)."""
        return storage.join(self.dir, PLACEMENT_GROUP)

    @property
    def attention_dir(self) -> str:
        return storage.join(self.dir, ATTENTION)

    def record(self, epoch: int) -> str:
        """The attention record of `epoch`."""
        return storage.join(self.attention_dir, record_name(epoch))

    # Ray's run directories.
    @property
    def train_name(self) -> str:
        """Ray Train's run name: the run's name, or `<name>-<trial>` for a trial."""
        return f"{self.name}-{self.trial}" if self.trial else self.name

    @property
    def train_run(self) -> str:
        """Ray Train's run directory, where its `checkpoint_*` directories are."""
        return self._in_storage(self.train_name)

    @property
    def tuner_name(self) -> str:
        return f"{self.name}{TUNER_SUFFIX}"

    @property
    def tuner_dir(self) -> str:
        """Ray Tune's experiment directory (what `Tuner.restore` reads)."""
        return self._in_storage(self.tuner_name)
