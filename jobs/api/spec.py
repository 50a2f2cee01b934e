"""The job spec: one typed structure for a train or tune job, loaded from YAML/JSON and validated.

The sections are frozen pydantic dataclasses with strict types ("3" is not 3, true is not 1), so
`dataclasses.replace/asdict/fields` work on them and a replaced field is validated again. NaN and
infinities are refused anywhere in a spec, unknown fields are refused, every string the service stores
has a bounded size and every integer fits the proto's field (int32 or int64, which SQLite also holds).
Every error is a `SpecError` of one line: the field as a dotted path, the rule, the value
(`optim.lr: must be > 0, got -1`), so the CLI, the gRPC service and the dashboard can show it as is.
`spec_schema()` is the JSON schema (`foveate spec schema`; the dashboard's submit form is built from it).
`JobSpec.from_dict(d).to_dict() == normalised d` (the round trip the proto mirrors).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import reprlib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import AfterValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError


class SpecError(ValueError):
    """An invalid job spec; the message starts with the dotted path of the offending field."""


INT32_MAX = 2**31 - 1  # the proto's int32 fields
INT64_MAX = 2**63 - 1  # the proto's int64 fields and SQLite's INTEGER
MAX_STRING = 4096  # free-form strings: paths, URIs, string values of overrides
MAX_KEYS = 64  # entries of model.overrides and tune.params

# Field titles in the schema (the form's labels) read "Batch size", not pydantic's "Batch Size".
_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False,
                     field_title_generator=lambda name, _: name.replace("_", " ").capitalize())
Bool = Annotated[bool, Strict()]
Float = Annotated[float, Strict()]  # an int is taken (as a float), a bool or a string is not
# Each field of these gives its own lower bound (a second one here would hide it in the schema).
Int32 = Annotated[int, Strict(), Field(le=INT32_MAX)]
Int64 = Annotated[int, Strict(), Field(le=INT64_MAX)]
StoredPath = Annotated[str, Strict(), Field(max_length=MAX_STRING, pattern=r"^[^\x00]*$")]
RunName = Annotated[str, Strict(), Field(max_length=128, pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$")]
SplitName = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Identifier = Annotated[str, Strict(), Field(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ParamKey = Annotated[str, Strict(), Field(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
Mode = Literal["max", "min"]
PRETRAINED = "pretrained"  # the value of model.init_from that names the weights shipped for the variant
METRICS = ["val_accuracy", "attention_iou", "val_loss"]  # reported by every family (jobs/run/loop.py)


def _rule_error(rule: str, at: str, got: Any) -> PydanticCustomError:
    return PydanticCustomError("spec_rule", "{rule}", {"rule": rule, "at": at, "got": _show(got)})


def _plain_value(v: Any, at: str = "") -> Any:
    """A free-form value (a model override, a search-space entry): a bool, a 64-bit integer, a finite
    number, a bounded string, None, or a list or mapping of those; `at` is where inside the value."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        if len(v) > MAX_STRING:
            raise _rule_error(f"must be at most {MAX_STRING} characters", at, v)
    elif isinstance(v, int):
        if not -INT64_MAX - 1 <= v <= INT64_MAX:
            raise _rule_error("must fit in 64 bits", at, v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise _rule_error("must be finite", at, v)
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _plain_value(x, f"{at}[{i}]")
    elif isinstance(v, dict):
        for k, x in v.items():
            _plain_value(x, f"{at}.{k}")
    else:
        raise _rule_error("must be a number, string, bool, list or mapping", at, v)
    return v


PlainValue = Annotated[Any, AfterValidator(_plain_value)]


@dataclass(frozen=True, config=_CONFIG)
class ModelSpec:
    name: Annotated[str, Strict(), Field(min_length=1, max_length=100)] = Field(
        "ram-cluttered60", title="Model", description="A registered model variant (`foveate models`).")
    overrides: dict[Identifier, PlainValue] = Field(
        default_factory=dict, max_length=MAX_KEYS,
        description="Config fields of the registered variant to override (validated by the model's own config).")
    init_from: StoredPath = Field("", title="Initialise from", description=(
        "Start from trained weights instead of random ones: 'pretrained' (the weights shipped for the variant), "
        "or a run directory, checkpoint directory or state.pt of the same model (empty = random)."))


@dataclass(frozen=True, config=_CONFIG)
class DataSpec:
    path: StoredPath = Field("", title="Dataset path", description=(
        "A dataset directory written by `foveate data build` (local path or pyarrow URI such as s3://...), "
        "readable by the cluster's nodes."))
    train_split: SplitName = Field("train", description="Split used for training.")
    val_split: SplitName = Field("test", description="Split used for validation and attention probes.")
    probe_count: Int32 = Field(16, ge=0, title="Probe images", description=(
        "Fixed validation images whose attention is written every epoch (what the dashboard draws)."))
    max_train_samples: Int64 = Field(0, ge=0, description=(
        "Cap on training samples per epoch (0 = all): keeps tiny jobs tiny."))
    max_val_samples: Int64 = Field(0, ge=0, description="Cap on validation samples per epoch (0 = all).")
    # Training-time augmentation (jobs/data/augment.py), boxes moved with the pixels.
    hflip: Bool = Field(False, title="Mirror images", description=(
        "Augmentation: mirror training images at random (refused for digit sequences, which read left to right)."))
    max_shift: Int32 = Field(0, ge=0, title="Max shift (px)", description=(
        "Augmentation: shift training images by up to this many pixels in x and y (0 = off)."))
    min_crop: Float = Field(1.0, gt=0, le=1, description=(
        "Augmentation: zoom onto a random window of at least this fraction of the side, which moves the object "
        "off-centre without a telltale border (1 = off)."))


@dataclass(frozen=True, config=_CONFIG)
class OptimSpec:
    optimizer: Literal["adam", "adamw", "sgd"] = Field("adam", description="The optimiser.")
    lr: Float = Field(1e-3, gt=0, title="Learning rate", description="Learning rate.")
    weight_decay: Float = Field(0.0, ge=0, description="Weight decay.")
    momentum: Float = Field(0.9, description="Momentum (sgd only).")
    schedule: Literal["constant", "cosine", "step", "exponential", "linear"] = Field("constant", description=(
        "Learning-rate schedule per epoch (jobs/run/schedules.py): constant; cosine decay to 0; x0.1 every "
        "`step_every` epochs (step); x`lr_decay` per epoch (exponential); linear decay to 0. Never below `min_lr`."))
    step_every: Int32 = Field(10, ge=1, description="Epochs between x0.1 decays with schedule = step.")
    lr_decay: Float = Field(0.98, gt=0, le=1, title="Decay per epoch", description=(
        "Factor applied to the learning rate each epoch with schedule = exponential."))
    min_lr: Float = Field(0.0, ge=0, title="Learning-rate floor", description=(
        "The schedule never takes the learning rate below this (before a group's `lr_scales`)."))
    warmup_epochs: Int32 = Field(0, ge=0, description=(
        "Epochs of linear warm-up to `lr` before the schedule starts (0 = none)."))
    lr_scales: dict[Identifier, Float] = Field(default_factory=dict, max_length=MAX_KEYS, title="Group LR scales",
        description=(
            "Learning-rate multiplier per parameter group of the model's family (RAM: location, baseline, "
            "glimpse, core, classifier; RA-CNN: apn, trunk, heads; every family: rest), e.g. {location: 0.1}."))
    train_samples: Int32 = Field(1, ge=1, le=64, title="Training rollouts", description=(
        "Glimpse paths per image in a training batch (RAM/DRAM): each image runs M paths side by side, and the "
        "reward baseline and REINFORCE see all of them. The batch holds batch_size x M episodes."))
    location_std_end: Float = Field(0.0, ge=0, title="Location std at the end", description=(
        "Anneal the location policy's std linearly from the model's `location_std` to this over the epochs "
        "(RAM/DRAM; 0 = keep it fixed)."))
    batch_size: Int32 = Field(64, ge=1, description="Batch size per worker.")
    epochs: Int32 = Field(5, ge=1, description="Number of epochs.")
    seed: Int64 = Field(0, ge=-INT64_MAX - 1, description="Random seed.")
    grad_clip: Float = Field(0.0, ge=0, description="Maximum gradient norm (0 = off).")
    alternate_every: Int32 = Field(50, ge=1, title="Alternate every (steps)", description=(
        "Families that train in alternating phases (RA-CNN) switch phase every this many steps."))
    attention_init_steps: Int32 = Field(0, ge=0, description=(
        "Warm-up steps of a family's attention initialisation (RA-CNN's APN), before the main loop."))
    eval_samples: Int32 = Field(1, ge=1, description=(
        "Monte Carlo glimpse paths averaged at evaluation (RAM/DRAM); 1 = a single sampled path."))
    mixed_precision: Bool = Field(False, description="bf16 autocast on CUDA; ignored on CPU.")


@dataclass(frozen=True, config=_CONFIG)
class ScalingSpec:
    num_workers: Int32 = Field(2, ge=0, title="Workers", description=(
        "Ray Train workers (0 = run the loop in the driver process, Ray Train's local mode)."))
    use_gpu: Bool = Field(False, title="GPU per worker", description="One GPU per worker.")
    cpus_per_worker: Float = Field(1.0, gt=0, title="CPUs per worker", description="Logical CPUs per worker.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", title="Placement", description=(
            "How Ray places the workers over nodes: PACK (fewest nodes), SPREAD (over nodes where it can), "
            "STRICT_SPREAD (one worker per node, or wait), STRICT_PACK (all on one node, or wait)."))
    placement_timeout_s: Int32 = Field(600, ge=60, title="Placement timeout (s)", description=(
        "Seconds a run waits for the cluster to place its workers before it fails, naming the resources it "
        "waited for (Ray Train retries the placement every 60 s)."))


@dataclass(frozen=True, config=_CONFIG)
class CheckpointSpec:
    keep: Int32 = Field(2, ge=1, description="Checkpoints kept, best by `score` (plus the latest).")
    score: Identifier = Field("val_accuracy", examples=METRICS, description="Metric that ranks checkpoints.")
    mode: Mode = Field("max", description="Whether a higher (max) or lower (min) score is better.")
    max_failures: Int32 = Field(1, ge=-1, description=(
        "Worker failures the run survives, resuming from its last checkpoint (-1 = unlimited)."))


@dataclass(frozen=True, config=_CONFIG)
class TuneSpec:
    space: Identifier = Field("default", description=(
        "Named search space of the model's family (see jobs.run.tune.SEARCH_SPACES): 'default' or 'none'."))
    params: dict[ParamKey, PlainValue] = Field(default_factory=dict, max_length=MAX_KEYS, description=(
        "Per-key overrides of the space, keyed by dotted spec path: "
        '{"lr": {"loguniform": [1e-4, 1e-2]}, "model.num_glimpses": {"choice": [4, 6, 8]}}.'))
    num_trials: Int32 = Field(4, ge=1, title="Trials", description=(
        "Trials to run (with grid search: repeats of the grid)."))
    metric: Identifier = Field("val_accuracy", examples=METRICS, description="Metric the search optimises.")
    mode: Mode = Field("max", description="Whether the search maximises or minimises the metric.")
    scheduler: Literal["asha", "fifo"] = Field("asha", description="Trial scheduler.")
    search: Literal["random", "grid", "optuna"] = Field("random", description="Search algorithm.")
    grace_period: Int32 = Field(1, ge=1, description="Epochs before ASHA may stop a trial.")
    max_concurrent_trials: Int32 = Field(0, ge=0, description=(
        "Trials run at once (0 = as many as the cluster's CPUs allow)."))


@dataclass(frozen=True, config=_CONFIG)
class JobSpec:
    kind: Literal["train", "tune"] = Field("train", description="A training run or a search over them.")
    name: RunName = Field("", description=(
        "Run name; the service sets it to the job id so a restarted run resumes."))
    model: ModelSpec = Field(default_factory=ModelSpec, description="The model.")
    data: DataSpec = Field(default_factory=DataSpec, description="The dataset.")
    optim: OptimSpec = Field(default_factory=OptimSpec, description="Optimisation.")
    scaling: ScalingSpec = Field(default_factory=ScalingSpec, description="Workers and resources.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec, description=(
        "Checkpointing and fault tolerance."))
    tune: TuneSpec | None = Field(None, description="The search; required when kind is tune.")
    storage_path: StoredPath = Field("", description=(
        "Where run outputs go: local directory or pyarrow URI (s3://, gs://) shared by the cluster's nodes; "
        "empty = where the runner keeps runs (the service's storage root, or ~/.foveate/runs for the CLI)."))

    def validate(self) -> JobSpec:
        """The rules across fields; each field's own rules hold by construction, and the model, data and
        cluster are checked by jobs.run.checks.check_spec."""
        _check(bool(self.data.path), "data.path", "must name a dataset directory or URI", self.data.path)
        _check(self.optim.warmup_epochs < self.optim.epochs, "optim.warmup_epochs",
               f"must be < optim.epochs ({self.optim.epochs})", self.optim.warmup_epochs)
        if self.kind == "tune":
            _check(self.tune is not None, "tune", "required when kind is 'tune'")
            # Train's local mode (0 workers) reports nothing that Tune's callback can forward.
            _check(self.scaling.num_workers >= 1, "scaling.num_workers", "must be >= 1 for a tune job",
                   self.scaling.num_workers)
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        """Build and validate a spec from plain data; unknown or mistyped fields raise SpecError."""
        return _validated(lambda: _ADAPTER.validate_python(d)).validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> JobSpec:
        """A copy with `changes`, each validated (SpecError names the field)."""
        return _validated(lambda: dataclasses.replace(self, **changes))

    def with_absolute_paths(self, base: str | Path | None = None) -> JobSpec:
        """Local data and storage paths made absolute against `base` (default: the current directory);
        an empty storage_path stays empty (the runner's default).

        Ray workers and Ray Job drivers run in other directories, so a relative path must be resolved
        where the user wrote it: in the CLI or the service, before the spec leaves for the cluster.
        """
        from jobs.api.paths import absolute

        init = self.model.init_from
        if init and init != PRETRAINED:  # a run or checkpoint
            init = absolute(init, base, field="model.init_from")
        return self.replace(data=dataclasses.replace(self.data, path=absolute(self.data.path, base, field="data.path")),
                            model=dataclasses.replace(self.model, init_from=init),
                            storage_path=absolute(self.storage_path, base, field="storage_path"))


_ADAPTER = TypeAdapter(JobSpec)


@functools.cache
def _schema() -> dict[str, Any]:
    return _ADAPTER.json_schema()


def spec_schema() -> dict[str, Any]:
    """The JSON schema of a spec: each field's type, default, bounds, choices, title and description
    (sections under `$defs`)."""
    return copy.deepcopy(_schema())


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


# ------------------------------------------------------------------------------------------ errors

_MISSING = object()
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80  # a value in a message is shown, not echoed in full
_REPR.maxlong = 40


def _show(value: Any) -> str:
    return _REPR.repr(value)


def _check(cond: bool, path: str, rule: str, got: Any = _MISSING) -> None:
    if not cond:
        raise SpecError(f"{path}: {rule}" + ("" if got is _MISSING else f", got {_show(got)}"))


_TYPE_RULES = {
    "int_type": "must be an integer", "float_type": "must be a number", "bool_type": "must be true or false",
    "string_type": "must be a string", "finite_number": "must be finite", "dict_type": "must be a mapping",
    "dataclass_type": "must be a mapping", "string_too_short": "must not be empty",
}
_BOUNDS = {at.Gt: ("gt", ">"), at.Ge: ("ge", ">="), at.Lt: ("lt", "<"), at.Le: ("le", "<=")}


def _validated(build: typing.Callable[[], Any]) -> Any:
    """`build()`, its pydantic ValidationError as a one-line SpecError (the first error)."""
    try:
        return build()
    except ValidationError as exc:
        raise SpecError(_message(exc.errors(include_url=False)[0])) from None


def _message(err: dict[str, Any]) -> str:
    """`dotted.path: rule, got VALUE` for one pydantic error."""
    loc, kind, ctx, got = tuple(err["loc"]), err["type"], err.get("ctx") or {}, _show(err.get("input"))
    if "[key]" in loc:  # a mapping's key: name the mapping
        return f"{_dotted(loc[:loc.index('[key]') - 1])}: keys {_rule(kind, ctx, loc, err)}, got {got}"
    if kind == "invalid_key":  # a section's field named by a number or null
        return f"{_dotted(loc[:-1])}: field names must be strings, got {_show(loc[-1])}"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        known = ", ".join(f.name for f in dataclasses.fields(_section(loc[:-1])))
        return f"{_dotted(loc)}: unknown field; known fields: {known}"
    if kind == "spec_rule":
        return f"{_dotted(loc)}{ctx['at']}: {ctx['rule']}, got {ctx['got']}"
    return f"{_dotted(loc)}: {_rule(kind, ctx, loc, err)}, got {got}"


def _rule(kind: str, ctx: dict[str, Any], loc: tuple, err: dict[str, Any]) -> str:
    if kind in _TYPE_RULES:
        return _TYPE_RULES[kind]
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "must be " + " and ".join(_bounds(loc))  # all of the field's bounds: "> 0 and <= 1"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} entries"
    msg = err["msg"].splitlines()[0]
    return msg[:1].lower() + msg[1:]


def _bounds(loc: tuple) -> list[str]:
    info = _section(loc[:-1]).__pydantic_fields__[loc[-1]]
    out = []
    for m in info.metadata:
        for cls, (attr, sign) in _BOUNDS.items():
            if isinstance(m, cls):
                bound = getattr(m, attr)
                out.append(f"{sign} {bound:g}" if isinstance(bound, float) else f"{sign} {bound}")
    return sorted(out, key=lambda s: s[0] == "<")  # lower bounds first


def _section(loc: tuple) -> type:
    """The spec section (dataclass) that `loc` leads to from JobSpec."""
    cls: Any = JobSpec
    for part in loc:
        tp = cls.__pydantic_fields__[part].annotation
        cls = next(a for a in (tp, *typing.get_args(tp)) if dataclasses.is_dataclass(a))
    return cls


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "spec"
