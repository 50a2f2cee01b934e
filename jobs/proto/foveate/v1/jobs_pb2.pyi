import datetime

from jobs.proto.foveate.v1 import spec_pb2 as _spec_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union
from jobs.proto.foveate.v1.spec_pb2 import Value as Value
from jobs.proto.foveate.v1.spec_pb2 import ValueList as ValueList
from jobs.proto.foveate.v1.spec_pb2 import ModelSpec as ModelSpec
from jobs.proto.foveate.v1.spec_pb2 import DataSpec as DataSpec
from jobs.proto.foveate.v1.spec_pb2 import OptimSpec as OptimSpec
from jobs.proto.foveate.v1.spec_pb2 import ScalingSpec as ScalingSpec
from jobs.proto.foveate.v1.spec_pb2 import CheckpointSpec as CheckpointSpec
from jobs.proto.foveate.v1.spec_pb2 import Distribution as Distribution
from jobs.proto.foveate.v1.spec_pb2 import TuneSpec as TuneSpec
from jobs.proto.foveate.v1.spec_pb2 import JobSpec as JobSpec
from jobs.proto.foveate.v1.spec_pb2 import JobKind as JobKind

DESCRIPTOR: _descriptor.FileDescriptor
JOB_KIND_UNSPECIFIED: _spec_pb2.JobKind
JOB_KIND_TRAIN: _spec_pb2.JobKind
JOB_KIND_TUNE: _spec_pb2.JobKind

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

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
        value: _spec_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_spec_pb2.Value, _Mapping]] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_PATH_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    BEST_PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_TABLE_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.ScalarMap[str, float]
    checkpoint_path: str
    best_trial: str
    best_params: _containers.MessageMap[str, _spec_pb2.Value]
    trials_table: str
    def __init__(self, metrics: _Optional[_Mapping[str, float]] = ..., checkpoint_path: _Optional[str] = ..., best_trial: _Optional[str] = ..., best_params: _Optional[_Mapping[str, _spec_pb2.Value]] = ..., trials_table: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "state", "history", "owner", "priority", "ray_job_id", "run_dir", "attention_dir", "result", "error", "created", "started", "finished", "cancel_requested", "planned_trials")
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
    PLANNED_TRIALS_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: _spec_pb2.JobSpec
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
    planned_trials: int
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[_spec_pb2.JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., history: _Optional[_Iterable[_Union[StateChange, _Mapping]]] = ..., owner: _Optional[str] = ..., priority: _Optional[int] = ..., ray_job_id: _Optional[str] = ..., run_dir: _Optional[str] = ..., attention_dir: _Optional[str] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., error: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_requested: _Optional[bool] = ..., planned_trials: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec", "validate_only", "owner", "priority", "request_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    spec: _spec_pb2.JobSpec
    validate_only: bool
    owner: str
    priority: int
    request_id: str
    def __init__(self, spec: _Optional[_Union[_spec_pb2.JobSpec, _Mapping]] = ..., validate_only: _Optional[bool] = ..., owner: _Optional[str] = ..., priority: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

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
    kind: _spec_pb2.JobKind
    model: str
    owner: str
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., kind: _Optional[_Union[_spec_pb2.JobKind, str]] = ..., model: _Optional[str] = ..., owner: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

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
        value: _spec_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_spec_pb2.Value, _Mapping]] = ...) -> None: ...
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    trial: str
    epoch: int
    values: _containers.MessageMap[str, _spec_pb2.Value]
    def __init__(self, trial: _Optional[str] = ..., epoch: _Optional[int] = ..., values: _Optional[_Mapping[str, _spec_pb2.Value]] = ...) -> None: ...

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
    __slots__ = ("sample_id", "epoch", "trial", "image", "height", "width", "channels", "label", "prediction", "label_sequence", "predicted_sequence", "kind", "boxes", "steps", "patches", "gt_boxes", "step_probs", "step_predictions", "mean_boxes", "mean_prediction", "mean_predicted_sequence")
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
    MEAN_BOXES_FIELD_NUMBER: _ClassVar[int]
    MEAN_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    MEAN_PREDICTED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
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
    mean_boxes: _containers.RepeatedScalarFieldContainer[float]
    mean_prediction: int
    mean_predicted_sequence: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, sample_id: _Optional[int] = ..., epoch: _Optional[int] = ..., trial: _Optional[str] = ..., image: _Optional[bytes] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., channels: _Optional[int] = ..., label: _Optional[int] = ..., prediction: _Optional[int] = ..., label_sequence: _Optional[_Iterable[int]] = ..., predicted_sequence: _Optional[_Iterable[int]] = ..., kind: _Optional[str] = ..., boxes: _Optional[_Iterable[float]] = ..., steps: _Optional[int] = ..., patches: _Optional[int] = ..., gt_boxes: _Optional[_Iterable[float]] = ..., step_probs: _Optional[_Iterable[float]] = ..., step_predictions: _Optional[_Iterable[int]] = ..., mean_boxes: _Optional[_Iterable[float]] = ..., mean_prediction: _Optional[int] = ..., mean_predicted_sequence: _Optional[_Iterable[int]] = ...) -> None: ...

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
    __slots__ = ("node_id", "ip", "alive", "is_head", "cpus", "cpus_used", "gpus", "gpus_used", "resources")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    IS_HEAD_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    CPUS_USED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_USED_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    ip: str
    alive: bool
    is_head: bool
    cpus: float
    cpus_used: float
    gpus: float
    gpus_used: float
    resources: _containers.ScalarMap[str, float]
    def __init__(self, node_id: _Optional[str] = ..., ip: _Optional[str] = ..., alive: _Optional[bool] = ..., is_head: _Optional[bool] = ..., cpus: _Optional[float] = ..., cpus_used: _Optional[float] = ..., gpus: _Optional[float] = ..., gpus_used: _Optional[float] = ..., resources: _Optional[_Mapping[str, float]] = ...) -> None: ...

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

class ExportModelRequest(_message.Message):
    __slots__ = ("job_id", "format", "samples")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    format: str
    samples: int
    def __init__(self, job_id: _Optional[str] = ..., format: _Optional[str] = ..., samples: _Optional[int] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("file_name", "model_card_json", "size_bytes", "data")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_CARD_JSON_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    model_card_json: str
    size_bytes: int
    data: bytes
    def __init__(self, file_name: _Optional[str] = ..., model_card_json: _Optional[str] = ..., size_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("family",)
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    family: str
    def __init__(self, family: _Optional[str] = ...) -> None: ...

class ModelField(_message.Message):
    __slots__ = ("name", "default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    default: _spec_pb2.Value
    def __init__(self, name: _Optional[str] = ..., default: _Optional[_Union[_spec_pb2.Value, _Mapping]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "family", "fields")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    family: str
    fields: _containers.RepeatedCompositeFieldContainer[ModelField]
    def __init__(self, name: _Optional[str] = ..., family: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[ModelField, _Mapping]]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
