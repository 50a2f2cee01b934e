"""What a tune job searches and how it names its best trial, as plain data (no torch, no Ray).

Search spaces are keyed by dotted spec paths ("lr" is short for "optim.lr"; "model.num_glimpses" is a
model override), so a spec, the CLI and the dashboard all speak the same keys:
    {"model.num_glimpses": {"choice": [4, 6, 8]}, "lr": {"loguniform": [1e-4, 3e-3]}}
jobs/run/tune.py turns a space into Ray Tune's samplers; jobs/run/checks.py validates it at submission.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from attention_models.registry import model_config, model_family
from jobs.api.spec import JobSpec, OptimSpec, SpecError

# The hyperparameters that matter for each family (papers.md), ready to use by name.
SEARCH_SPACES: dict[str, dict[str, dict[str, list]]] = {
    "ram": {
        "model.num_glimpses": {"choice": [4, 6, 8]},
        "model.patch_size": {"choice": [8, 12]},
        "model.num_scales": {"choice": [1, 2, 3]},
        "model.location_std": {"choice": [0.05, 0.1, 0.2]},
        "optim.location_std_end": {"choice": [0.0, 0.05]},  # 0: the std stays fixed
        "lr": {"loguniform": [1e-4, 3e-3]},
    },
    "dram": {
        "model.glimpses_per_label": {"choice": [2, 3, 4]},
        "model.patch_size": {"choice": [8, 12]},
        "model.num_scales": {"choice": [1, 2]},
        "model.location_std": {"choice": [0.05, 0.1, 0.2]},
        "optim.location_std_end": {"choice": [0.0, 0.05]},
        "lr": {"loguniform": [1e-4, 3e-3]},
    },
    "racnn": {
        "model.margin": {"uniform": [0.01, 0.2]},
        "model.num_scales": {"choice": [2, 3]},
        "model.mask_steepness": {"choice": [5.0, 10.0, 20.0]},
        "lr": {"loguniform": [1e-4, 3e-3]},
    },
    "mgcnn": {
        "lr": {"loguniform": [1e-4, 3e-3]},
        "optim.weight_decay": {"choice": [0.0, 1e-4]},
    },
}
_SAMPLERS = ("choice", "uniform", "loguniform", "randint", "grid")



def search_space(spec: JobSpec) -> dict[str, dict[str, list]]:
    """The named space of the spec's family merged with the spec's per-key overrides, validated."""
    assert spec.tune is not None
    family = model_family(spec.model.name)
    if spec.tune.space not in ("default", "none"):
        raise SpecError(f"tune.space: unknown space {spec.tune.space!r}; known: 'default' (the family's), 'none'")
    named = {} if spec.tune.space == "none" else SEARCH_SPACES[family]
    space = {_normalise_key(k): copy.deepcopy(v) for k, v in named.items()}
    for key, dist in spec.tune.params.items():
        space[_normalise_key(key)] = dist
    # Keep only keys this model has (a family space may name a field a variant lacks).
    fields = {f.name for f in dataclasses.fields(type(model_config(spec.model.name)))}
    space = {k: v for k, v in space.items()
             if not k.startswith("model.") or k.split(".", 1)[1] in fields or k in _param_keys(spec)}
    for key, dist in space.items():
        _validate_dist(key, dist, fields)
        if key.startswith("optim.") and key in _param_keys(spec):
            _validate_values(spec, key, dist)
    if not space:
        raise SpecError("tune.params: the search space is empty")
    return space


def is_grid(sampler: str, search: str) -> bool:
    """Whether a key's values are a grid that every sample repeats: `grid`, or `choice` under grid search."""
    return sampler == "grid" or (search == "grid" and sampler == "choice")


def planned_trials(spec: JobSpec) -> int:
    """The trials a tune job runs: tune.num_trials samples of the space, each over every combination of
    the grid's values (Tune's grid_search multiplies num_samples: a grid of 3 with 1 sample is 3 trials)."""
    assert spec.tune is not None
    grid = 1
    for dist in search_space(spec).values():
        sampler, args = next(iter(dist.items()))
        if is_grid(sampler, spec.tune.search):
            grid *= len(args)
    return spec.tune.num_trials * grid


def _param_keys(spec: JobSpec) -> set[str]:
    return {_normalise_key(k) for k in spec.tune.params} if spec.tune else set()


def _normalise_key(key: str) -> str:
    optim = {f.name for f in dataclasses.fields(OptimSpec)}
    return f"optim.{key}" if key in optim else key


def _validate_dist(key: str, dist: Any, model_fields: set[str]) -> None:
    where = f"tune.params.{key}"
    section, _, name = key.partition(".")
    if section == "model":
        if name not in model_fields:
            raise SpecError(f"{where}: the model has no field {name!r}")
    elif section == "optim":
        if name not in {f.name for f in dataclasses.fields(OptimSpec)}:
            raise SpecError(f"{where}: optim has no field {name!r}")
    else:
        raise SpecError(f"{where}: keys are 'model.FIELD', 'optim.FIELD' or an optim field such as 'lr'")
    if not (isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in _SAMPLERS):
        raise SpecError(f"{where}: must be one of {{{', '.join(s + ': [...]' for s in _SAMPLERS)}}}")
    kind, args = next(iter(dist.items()))
    if not isinstance(args, list) or not args:
        raise SpecError(f"{where}.{kind}: must be a non-empty list")
    if kind in ("uniform", "loguniform", "randint"):
        if len(args) != 2 or not args[0] < args[1]:
            raise SpecError(f"{where}.{kind}: must be [low, high] with low < high")
        if kind == "loguniform" and args[0] <= 0:
            raise SpecError(f"{where}.loguniform: low must be > 0")


def _validate_values(spec: JobSpec, key: str, dist: dict[str, list]) -> None:
    """Each value of a choice or grid (the two ends of a range) makes a valid spec for this model: the
    field's own rules and the family's (a crop family takes no training rollouts)."""
    from jobs.run.checks import check_training

    kind, args = next(iter(dist.items()))
    for value in args:
        try:
            trial = JobSpec.from_dict(apply_params(spec.to_dict(), {key: value}))
            check_training(trial)
        except SpecError as exc:
            raise SpecError(f"tune.params.{key}.{kind}: {value!r}: {exc}") from None


def apply_params(spec_dict: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A spec dict with the sampled params written into it (model.* go into model.overrides)."""
    d = copy.deepcopy(spec_dict)
    for key, value in params.items():
        section, _, name = key.partition(".")
        if section == "model":
            d["model"].setdefault("overrides", {})[name] = value
        else:
            d[section][name] = value
    d["kind"] = "train"
    d["tune"] = None
    return d


def best_trial(histories: dict[str, list[dict[str, Any]]], metric: str,
               mode: str) -> tuple[str, dict[str, Any]] | None:
    """(trial, metrics of the epoch where it did best) of the search's best trial, or None.

    `histories` maps each trial id to what it reported, one metrics dict per epoch (its metrics.json).
    The best trial has the best `metric` at any epoch (the highest for mode "max", the lowest for "min");
    a tie goes to the trial that got there first (the fewest epochs, then steps), then to the smaller
    trial id. So the answer depends on the trials' own histories only, never on the order in which Tune
    returns its results (which changes when a tuner is restored). A NaN, infinite or missing metric never
    wins; None when no trial has a finite one.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"tune.mode: must be 'max' or 'min', got {mode!r}")
    sign = -1.0 if mode == "max" else 1.0
    best: tuple[tuple[float, int, int, str], str, dict[str, Any]] | None = None
    for trial, history in histories.items():
        for i, m in enumerate(history):
            v = m.get(metric)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                continue
            key = (sign * v, int(m.get("epoch", i)), int(m.get("step", 0)), trial)
            if best is None or key < best[0]:
                best = (key, trial, m)
    return (best[1], best[2]) if best else None
