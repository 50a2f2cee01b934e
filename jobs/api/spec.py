"""The job spec: one typed structure for a train or tune job, loaded from YAML/JSON and validated.

Every error is a `SpecError` whose message names the field as a dotted path and the rule it broke
(`model.num_glimpses: must be >= 1`), so the CLI, the gRPC service and the dashboard can show it as is.
`JobSpec.from_dict(d).to_dict() == normalised d` (the round trip the proto mirrors).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class SpecError(ValueError):
    """An invalid job spec; the message starts with the dotted path of the offending field."""


def _check(cond: bool, path: str, rule: str) -> None:
    if not cond:
        raise SpecError(f"{path}: {rule}")


@dataclass(frozen=True)
class ModelSpec:
    name: str = "ram-cluttered60"
    # Config fields of the registered variant to override (validated by the model's own config).
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSpec:
    # A dataset directory written by `foveate data build` (local path or pyarrow URI such as s3://...).
    path: str = ""
    train_split: str = "train"
    val_split: str = "test"
    # Fixed validation images whose attention is written every epoch (what the dashboard draws).
    probe_count: int = 16
    # Cap on training/validation samples per epoch (0 = all): keeps tiny jobs tiny.
    max_train_samples: int = 0
    max_val_samples: int = 0
    # Training-time augmentation (jobs/data/augment.py), boxes moved with the pixels: mirror at random
    # (refused for digit sequences, which read left to right), zoom onto a random window of at least
    # min_crop of the side (moves the object off-centre without a telltale border), shift by up to max_shift px.
    hflip: bool = False
    max_shift: int = 0
    min_crop: float = 1.0

    def validate(self, p: str) -> None:
        _check(bool(self.path), f"{p}.path", "must name a dataset directory or URI")
        _check(self.max_shift >= 0, f"{p}.max_shift", "must be >= 0")
        _check(0 < self.min_crop <= 1, f"{p}.min_crop", "must be > 0 and <= 1 (1 = off)")
        _check(self.probe_count >= 0, f"{p}.probe_count", "must be >= 0")
        _check(self.max_train_samples >= 0, f"{p}.max_train_samples", "must be >= 0")
        _check(self.max_val_samples >= 0, f"{p}.max_val_samples", "must be >= 0")


@dataclass(frozen=True)
class OptimSpec:
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: Literal["constant", "cosine", "step"] = "constant"
    step_every: int = 10  # epochs between x0.1 decays with schedule=step
    batch_size: int = 64  # per worker
    epochs: int = 5
    seed: int = 0
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    # Families that train in alternating phases (RA-CNN) switch phase every this many steps.
    alternate_every: int = 50
    # Warm-up steps for a family's attention initialisation (RA-CNN's APN), before the main loop.
    attention_init_steps: int = 0
    # Monte Carlo glimpse paths averaged at evaluation (RAM/DRAM); 1 = a single sampled path.
    eval_samples: int = 1
    mixed_precision: bool = False  # bf16 autocast (CUDA); ignored on CPU

    def validate(self, p: str) -> None:
        _check(self.lr > 0, f"{p}.lr", "must be > 0")
        _check(self.weight_decay >= 0, f"{p}.weight_decay", "must be >= 0")
        _check(self.batch_size >= 1, f"{p}.batch_size", "must be >= 1")
        _check(self.epochs >= 1, f"{p}.epochs", "must be >= 1")
        _check(self.step_every >= 1, f"{p}.step_every", "must be >= 1")
        _check(self.grad_clip >= 0, f"{p}.grad_clip", "must be >= 0")
        _check(self.alternate_every >= 1, f"{p}.alternate_every", "must be >= 1")
        _check(self.attention_init_steps >= 0, f"{p}.attention_init_steps", "must be >= 0")
        _check(self.eval_samples >= 1, f"{p}.eval_samples", "must be >= 1")


@dataclass(frozen=True)
class ScalingSpec:
    num_workers: int = 2  # 0 runs the loop in the driver process (Ray Train local mode)
    use_gpu: bool = False
    cpus_per_worker: float = 1.0

    def validate(self, p: str) -> None:
        _check(self.num_workers >= 0, f"{p}.num_workers", "must be >= 0")
        _check(self.cpus_per_worker > 0, f"{p}.cpus_per_worker", "must be > 0")


@dataclass(frozen=True)
class CheckpointSpec:
    keep: int = 2  # checkpoints kept, best by `score` (plus the latest)
    score: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"
    max_failures: int = 1  # worker failures the run survives, resuming from its last checkpoint

    def validate(self, p: str) -> None:
        _check(self.keep >= 1, f"{p}.keep", "must be >= 1")
        _check(self.max_failures >= -1, f"{p}.max_failures", "must be >= -1 (-1 = unlimited)")


@dataclass(frozen=True)
class TuneSpec:
    # Named search space of the model's family (see jobs.run.tune.SEARCH_SPACES), then per-key overrides:
    # {"lr": {"loguniform": [1e-4, 1e-2]}, "model.num_glimpses": {"choice": [4, 6, 8]}}.
    space: str = "default"
    params: dict[str, Any] = field(default_factory=dict)
    num_trials: int = 4
    metric: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"
    scheduler: Literal["asha", "fifo"] = "asha"
    search: Literal["random", "grid", "optuna"] = "random"
    grace_period: int = 1  # epochs before ASHA may stop a trial
    max_concurrent_trials: int = 0  # 0 = as many as the cluster's CPUs allow

    def validate(self, p: str) -> None:
        _check(self.num_trials >= 1, f"{p}.num_trials", "must be >= 1")
        _check(self.grace_period >= 1, f"{p}.grace_period", "must be >= 1")
        _check(self.max_concurrent_trials >= 0, f"{p}.max_concurrent_trials", "must be >= 0")


@dataclass(frozen=True)
class JobSpec:
    kind: Literal["train", "tune"] = "train"
    name: str = ""  # run name; the service sets it to the job id so a restarted run resumes
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    scaling: ScalingSpec = field(default_factory=ScalingSpec)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    tune: TuneSpec | None = None
    storage_path: str = "~/foveate_results"  # local dir or pyarrow URI (s3://, gs://)

    def validate(self) -> JobSpec:
        """The spec's own rules; the model, data and cluster are checked by jobs.run.checks.check_spec."""
        _check(self.kind in ("train", "tune"), "kind", "must be 'train' or 'tune'")
        self.data.validate("data")
        self.optim.validate("optim")
        self.scaling.validate("scaling")
        self.checkpoint.validate("checkpoint")
        if self.kind == "tune":
            _check(self.tune is not None, "tune", "required when kind is 'tune'")
            self.tune.validate("tune")
            # Train's local mode (0 workers) reports nothing that Tune's callback can forward.
            _check(self.scaling.num_workers >= 1, "scaling.num_workers", "must be >= 1 for a tune job")
        _check(bool(self.storage_path), "storage_path", "must not be empty")
        _check(bool(self.model.name), "model.name", "must name a model variant (`foveate models`)")
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        """Build and validate a spec from plain data; unknown or mistyped fields raise SpecError."""
        return _build(cls, d, "").validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> JobSpec:
        return dataclasses.replace(self, **changes)

    def with_absolute_paths(self, base: str | Path | None = None) -> JobSpec:
        """Local data and storage paths made absolute against `base` (default: the current directory).

        Ray workers and Ray Job drivers run in other directories, so a relative path must be resolved
        where the user wrote it: in the CLI or the service, before the spec leaves for the cluster.
        """
        from jobs.api.paths import absolute

        return dataclasses.replace(self, data=dataclasses.replace(self.data, path=absolute(self.data.path, base)),
                                   storage_path=absolute(self.storage_path, base))


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """A spec file's fields (.yaml/.yml or JSON), parsed but not validated: callers may still apply
    overrides (`--set`, the job kind) before `JobSpec.from_dict` checks the whole."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such spec file")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # parse errors of either format: one line naming the file
        raise SpecError(f"{p}: not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise SpecError(f"{p}: must hold a mapping of spec fields")
    return data


def apply_overrides(d: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """Write KEY=VALUE pairs (dotted keys, YAML values) into a spec dict."""
    import yaml

    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"--set {pair!r}: must be KEY=VALUE")
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {key}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return d


def load_spec(path: str | Path) -> JobSpec:
    """Read and validate a spec from a .yaml/.yml/.json file."""
    return JobSpec.from_dict(read_spec_file(path))


def _build(cls: type, data: Any, path: str) -> Any:
    """Dataclass `cls` from a dict, type-checking each field and naming it by dotted path on error."""
    where = path or "spec"
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise SpecError(f"{where}: must be a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(f"{_join(path, unknown[0])}: unknown field; known fields: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(hints[k], v, _join(path, k)) for k, v in data.items()}
    return cls(**kwargs)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # get_type_hints evaluates every annotation string: ~2 ms a spec, which the service pays per message.
    return typing.get_type_hints(cls)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, path)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        _check(value in allowed, path, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is dict:
        _check(isinstance(value, dict), path, "must be a mapping")
        return dict(value)
    if tp is bool:
        _check(isinstance(value, bool), path, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        _check(ok, path, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, path, f"must be a number, got {value!r}")
        _check(value == value and abs(value) != float("inf"), path, "must be finite")
        return float(value)
    if tp is str:
        _check(isinstance(value, str), path, f"must be a string, got {value!r}")
        return value
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
