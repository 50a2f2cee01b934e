import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
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

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_TRAIN: JobKind
JOB_KIND_TUNE: JobKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

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
    __slots__ = ("name", "overrides")
    class OverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    name: str
    overrides: _containers.MessageMap[str, Value]
    def __init__(self, name: _Optional[str] = ..., overrides: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class DataSpec(_message.Message):
    __slots__ = ("path", "train_split", "val_split", "probe_count", "max_train_samples", "max_val_samples")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    VAL_SPLIT_FIELD_NUMBER: _ClassVar[int]
    PROBE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_VAL_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    path: str
    train_split: str
    val_split: str
    probe_count: int
    max_train_samples: int
    max_val_samples: int
    def __init__(self, path: _Optional[str] = ..., train_split: _Optional[str] = ..., val_split: _Optional[str] = ..., probe_count: _Optional[int] = ..., max_train_samples: _Optional[int] = ..., max_val_samples: _Optional[int] = ...) -> None: ...

class OptimSpec(_message.Message):
    __slots__ = ("optimizer", "lr", "weight_decay", "momentum", "schedule", "step_every", "batch_size", "epochs", "seed", "grad_clip", "alternate_every", "attention_init_steps", "eval_samples", "mixed_precision")
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
    def __init__(self, optimizer: _Optional[str] = ..., lr: _Optional[float] = ..., weight_decay: _Optional[float] = ..., momentum: _Optional[float] = ..., schedule: _Optional[str] = ..., step_every: _Optional[int] = ..., batch_size: _Optional[int] = ..., epochs: _Optional[int] = ..., seed: _Optional[int] = ..., grad_clip: _Optional[float] = ..., alternate_every: _Optional[int] = ..., attention_init_steps: _Optional[int] = ..., eval_samples: _Optional[int] = ..., mixed_precision: _Optional[bool] = ...) -> None: ...

class ScalingSpec(_message.Message):
    __slots__ = ("num_workers", "use_gpu", "cpus_per_worker")
    NUM_WORKERS_FIELD_NUMBER: _ClassVar[int]
    USE_GPU_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    num_workers: int
    use_gpu: bool
    cpus_per_worker: float
    def __init__(self, num_workers: _Optional[int] = ..., use_gpu: _Optional[bool] = ..., cpus_per_worker: _Optional[float] = ...) -> None: ...

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

class StateChange(_message.Message):
    __slots__ = ("state", "time", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    time: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("metrics", "checkpoint_path", "best_trial", "best_params", "trials_table")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class BestParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_PATH_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    BEST_PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_TABLE_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.ScalarMap[str, float]
    checkpoint_path: str
    best_trial: str
    best_params: _containers.MessageMap[str, Value]
    trials_table: str
    def __init__(self, metrics: _Optional[_Mapping[str, float]] = ..., checkpoint_path: _Optional[str] = ..., best_trial: _Optional[str] = ..., best_params: _Optional[_Mapping[str, Value]] = ..., trials_table: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "state", "history", "owner", "priority", "ray_job_id", "run_dir", "attention_dir", "result", "error", "created", "started", "finished", "cancel_requested")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RAY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_DIR_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_DIR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: JobSpec
    state: JobState
    history: _containers.RepeatedCompositeFieldContainer[StateChange]
    owner: str
    priority: int
    ray_job_id: str
    run_dir: str
    attention_dir: str
    result: JobResult
    error: str
    created: _timestamp_pb2.Timestamp
    started: _timestamp_pb2.Timestamp
    finished: _timestamp_pb2.Timestamp
    cancel_requested: bool
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., history: _Optional[_Iterable[_Union[StateChange, _Mapping]]] = ..., owner: _Optional[str] = ..., priority: _Optional[int] = ..., ray_job_id: _Optional[str] = ..., run_dir: _Optional[str] = ..., attention_dir: _Optional[str] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., error: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_requested: _Optional[bool] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec", "validate_only", "owner", "priority", "request_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    validate_only: bool
    owner: str
    priority: int
    request_id: str
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., validate_only: _Optional[bool] = ..., owner: _Optional[str] = ..., priority: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "kind", "model", "owner", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    kind: JobKind
    model: str
    owner: str
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., kind: _Optional[_Union[JobKind, str]] = ..., model: _Optional[str] = ..., owner: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class EpochMetrics(_message.Message):
    __slots__ = ("trial", "epoch", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    trial: str
    epoch: int
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, trial: _Optional[str] = ..., epoch: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job", "state_change", "epoch")
    JOB_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    job: Job
    state_change: StateChange
    epoch: EpochMetrics
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., state_change: _Optional[_Union[StateChange, _Mapping]] = ..., epoch: _Optional[_Union[EpochMetrics, _Mapping]] = ...) -> None: ...

class StreamLogsRequest(_message.Message):
    __slots__ = ("job_id", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    follow: bool
    def __init__(self, job_id: _Optional[str] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ListTrialsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class TrialRow(_message.Message):
    __slots__ = ("trial", "epoch", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    trial: str
    epoch: int
    values: _containers.MessageMap[str, Value]
    def __init__(self, trial: _Optional[str] = ..., epoch: _Optional[int] = ..., values: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class ListTrialsResponse(_message.Message):
    __slots__ = ("columns", "rows", "complete", "best_trial")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[TrialRow]
    complete: bool
    best_trial: str
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[TrialRow, _Mapping]]] = ..., complete: _Optional[bool] = ..., best_trial: _Optional[str] = ...) -> None: ...

class GetAttentionRequest(_message.Message):
    __slots__ = ("job_id", "trial", "epoch", "max_records")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    trial: str
    epoch: int
    max_records: int
    def __init__(self, job_id: _Optional[str] = ..., trial: _Optional[str] = ..., epoch: _Optional[int] = ..., max_records: _Optional[int] = ...) -> None: ...

class AttentionRecord(_message.Message):
    __slots__ = ("sample_id", "epoch", "trial", "image", "height", "width", "channels", "label", "prediction", "label_sequence", "predicted_sequence", "kind", "boxes", "steps", "patches", "gt_boxes", "step_probs", "step_predictions")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    LABEL_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PATCHES_FIELD_NUMBER: _ClassVar[int]
    GT_BOXES_FIELD_NUMBER: _ClassVar[int]
    STEP_PROBS_FIELD_NUMBER: _ClassVar[int]
    STEP_PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    sample_id: int
    epoch: int
    trial: str
    image: bytes
    height: int
    width: int
    channels: int
    label: int
    prediction: int
    label_sequence: _containers.RepeatedScalarFieldContainer[int]
    predicted_sequence: _containers.RepeatedScalarFieldContainer[int]
    kind: str
    boxes: _containers.RepeatedScalarFieldContainer[float]
    steps: int
    patches: int
    gt_boxes: _containers.RepeatedScalarFieldContainer[float]
    step_probs: _containers.RepeatedScalarFieldContainer[float]
    step_predictions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, sample_id: _Optional[int] = ..., epoch: _Optional[int] = ..., trial: _Optional[str] = ..., image: _Optional[bytes] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., channels: _Optional[int] = ..., label: _Optional[int] = ..., prediction: _Optional[int] = ..., label_sequence: _Optional[_Iterable[int]] = ..., predicted_sequence: _Optional[_Iterable[int]] = ..., kind: _Optional[str] = ..., boxes: _Optional[_Iterable[float]] = ..., steps: _Optional[int] = ..., patches: _Optional[int] = ..., gt_boxes: _Optional[_Iterable[float]] = ..., step_probs: _Optional[_Iterable[float]] = ..., step_predictions: _Optional[_Iterable[int]] = ...) -> None: ...

class GetAttentionResponse(_message.Message):
    __slots__ = ("epochs", "epoch", "records")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedScalarFieldContainer[int]
    epoch: int
    records: _containers.RepeatedCompositeFieldContainer[AttentionRecord]
    def __init__(self, epochs: _Optional[_Iterable[int]] = ..., epoch: _Optional[int] = ..., records: _Optional[_Iterable[_Union[AttentionRecord, _Mapping]]] = ...) -> None: ...

class DescribeClusterRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Node(_message.Message):
    __slots__ = ("node_id", "ip", "alive", "is_head", "cpus", "cpus_used", "gpus", "gpus_used")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    IS_HEAD_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    CPUS_USED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_USED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    ip: str
    alive: bool
    is_head: bool
    cpus: float
    cpus_used: float
    gpus: float
    gpus_used: float
    def __init__(self, node_id: _Optional[str] = ..., ip: _Optional[str] = ..., alive: _Optional[bool] = ..., is_head: _Optional[bool] = ..., cpus: _Optional[float] = ..., cpus_used: _Optional[float] = ..., gpus: _Optional[float] = ..., gpus_used: _Optional[float] = ...) -> None: ...

class ClusterInfo(_message.Message):
    __slots__ = ("address", "ray_version", "nodes", "cpus", "cpus_used", "gpus", "gpus_used", "queued_jobs", "running_jobs", "max_running")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RAY_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    CPUS_USED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_USED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_JOBS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNING_FIELD_NUMBER: _ClassVar[int]
    address: str
    ray_version: str
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    cpus: float
    cpus_used: float
    gpus: float
    gpus_used: float
    queued_jobs: int
    running_jobs: int
    max_running: int
    def __init__(self, address: _Optional[str] = ..., ray_version: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., cpus: _Optional[float] = ..., cpus_used: _Optional[float] = ..., gpus: _Optional[float] = ..., gpus_used: _Optional[float] = ..., queued_jobs: _Optional[int] = ..., running_jobs: _Optional[int] = ..., max_running: _Optional[int] = ...) -> None: ...
