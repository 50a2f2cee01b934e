from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_TRAIN: _ClassVar[JobKind]
    JOB_KIND_TUNE: _ClassVar[JobKind]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_TRAIN: JobKind
JOB_KIND_TUNE: JobKind

class Value(_message.Message):
    __slots__ = ("int_value", "float_value", "bool_value", "string_value", "list_value")
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    int_value: int
    float_value: float
    bool_value: bool
    string_value: str
    list_value: ValueList
    def __init__(self, int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., string_value: _Optional[str] = ..., list_value: _Optional[_Union[ValueList, _Mapping]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class ModelSpec(_message.Message):
    __slots__ = ("name", "overrides", "init_from")
    class OverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    INIT_FROM_FIELD_NUMBER: _ClassVar[int]
    name: str
    overrides: _containers.MessageMap[str, Value]
    init_from: str
    def __init__(self, name: _Optional[str] = ..., overrides: _Optional[_Mapping[str, Value]] = ..., init_from: _Optional[str] = ...) -> None: ...

class DataSpec(_message.Message):
    __slots__ = ("path", "train_split", "val_split", "probe_count", "max_train_samples", "max_val_samples", "hflip", "max_shift", "min_crop")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    VAL_SPLIT_FIELD_NUMBER: _ClassVar[int]
    PROBE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_VAL_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    HFLIP_FIELD_NUMBER: _ClassVar[int]
    MAX_SHIFT_FIELD_NUMBER: _ClassVar[int]
    MIN_CROP_FIELD_NUMBER: _ClassVar[int]
    path: str
    train_split: str
    val_split: str
    probe_count: int
    max_train_samples: int
    max_val_samples: int
    hflip: bool
    max_shift: int
    min_crop: float
    def __init__(self, path: _Optional[str] = ..., train_split: _Optional[str] = ..., val_split: _Optional[str] = ..., probe_count: _Optional[int] = ..., max_train_samples: _Optional[int] = ..., max_val_samples: _Optional[int] = ..., hflip: _Optional[bool] = ..., max_shift: _Optional[int] = ..., min_crop: _Optional[float] = ...) -> None: ...

class OptimSpec(_message.Message):
    __slots__ = ("optimizer", "lr", "weight_decay", "momentum", "schedule", "step_every", "batch_size", "epochs", "seed", "grad_clip", "alternate_every", "attention_init_steps", "eval_samples", "mixed_precision", "lr_decay", "min_lr", "warmup_epochs", "lr_scales", "train_samples", "location_std_end")
    class LrScalesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    STEP_EVERY_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GRAD_CLIP_FIELD_NUMBER: _ClassVar[int]
    ALTERNATE_EVERY_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_INIT_STEPS_FIELD_NUMBER: _ClassVar[int]
    EVAL_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MIXED_PRECISION_FIELD_NUMBER: _ClassVar[int]
    LR_DECAY_FIELD_NUMBER: _ClassVar[int]
    MIN_LR_FIELD_NUMBER: _ClassVar[int]
    WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LR_SCALES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LOCATION_STD_END_FIELD_NUMBER: _ClassVar[int]
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    schedule: str
    step_every: int
    batch_size: int
    epochs: int
    seed: int
    grad_clip: float
    alternate_every: int
    attention_init_steps: int
    eval_samples: int
    mixed_precision: bool
    lr_decay: float
    min_lr: float
    warmup_epochs: int
    lr_scales: _containers.ScalarMap[str, float]
    train_samples: int
    location_std_end: float
    def __init__(self, optimizer: _Optional[str] = ..., lr: _Optional[float] = ..., weight_decay: _Optional[float] = ..., momentum: _Optional[float] = ..., schedule: _Optional[str] = ..., step_every: _Optional[int] = ..., batch_size: _Optional[int] = ..., epochs: _Optional[int] = ..., seed: _Optional[int] = ..., grad_clip: _Optional[float] = ..., alternate_every: _Optional[int] = ..., attention_init_steps: _Optional[int] = ..., eval_samples: _Optional[int] = ..., mixed_precision: _Optional[bool] = ..., lr_decay: _Optional[float] = ..., min_lr: _Optional[float] = ..., warmup_epochs: _Optional[int] = ..., lr_scales: _Optional[_Mapping[str, float]] = ..., train_samples: _Optional[int] = ..., location_std_end: _Optional[float] = ...) -> None: ...

class ScalingSpec(_message.Message):
    __slots__ = ("num_workers", "use_gpu", "cpus_per_worker", "placement_timeout_s", "placement_strategy")
    NUM_WORKERS_FIELD_NUMBER: _ClassVar[int]
    USE_GPU_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    num_workers: int
    use_gpu: bool
    cpus_per_worker: float
    placement_timeout_s: int
    placement_strategy: str
    def __init__(self, num_workers: _Optional[int] = ..., use_gpu: _Optional[bool] = ..., cpus_per_worker: _Optional[float] = ..., placement_timeout_s: _Optional[int] = ..., placement_strategy: _Optional[str] = ...) -> None: ...

class CheckpointSpec(_message.Message):
    __slots__ = ("keep", "score", "mode", "max_failures")
    KEEP_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    keep: int
    score: str
    mode: str
    max_failures: int
    def __init__(self, keep: _Optional[int] = ..., score: _Optional[str] = ..., mode: _Optional[str] = ..., max_failures: _Optional[int] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("sampler", "args")
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    sampler: str
    args: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, sampler: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class TuneSpec(_message.Message):
    __slots__ = ("space", "params", "num_trials", "metric", "mode", "scheduler", "search", "grace_period", "max_concurrent_trials")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Distribution
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...
    SPACE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NUM_TRIALS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_TRIALS_FIELD_NUMBER: _ClassVar[int]
    space: str
    params: _containers.MessageMap[str, Distribution]
    num_trials: int
    metric: str
    mode: str
    scheduler: str
    search: str
    grace_period: int
    max_concurrent_trials: int
    def __init__(self, space: _Optional[str] = ..., params: _Optional[_Mapping[str, Distribution]] = ..., num_trials: _Optional[int] = ..., metric: _Optional[str] = ..., mode: _Optional[str] = ..., scheduler: _Optional[str] = ..., search: _Optional[str] = ..., grace_period: _Optional[int] = ..., max_concurrent_trials: _Optional[int] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("kind", "name", "model", "data", "optim", "scaling", "checkpoint", "tune", "storage_path")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OPTIM_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TUNE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    kind: JobKind
    name: str
    model: ModelSpec
    data: DataSpec
    optim: OptimSpec
    scaling: ScalingSpec
    checkpoint: CheckpointSpec
    tune: TuneSpec
    storage_path: str
    def __init__(self, kind: _Optional[_Union[JobKind, str]] = ..., name: _Optional[str] = ..., model: _Optional[_Union[ModelSpec, _Mapping]] = ..., data: _Optional[_Union[DataSpec, _Mapping]] = ..., optim: _Optional[_Union[OptimSpec, _Mapping]] = ..., scaling: _Optional[_Union[ScalingSpec, _Mapping]] = ..., checkpoint: _Optional[_Union[CheckpointSpec, _Mapping]] = ..., tune: _Optional[_Union[TuneSpec, _Mapping]] = ..., storage_path: _Optional[str] = ...) -> None: ...
