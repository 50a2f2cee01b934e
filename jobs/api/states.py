"""Job states and kinds: the one place that spells them, and which sets of states mean what.

    QUEUED ──▶ PENDING (handed to Ray) ──▶ RUNNING ──▶ SUCCEEDED | FAILED | CANCELLED

Names are the catalog's (plain strings); the proto's enums map onto them here and nowhere else.
"""

from __future__ import annotations

from jobs.proto.foveate.v1 import jobs_pb2 as pb

STATES = ("QUEUED", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
WITH_RAY = ("PENDING", "RUNNING")  # handed to Ray and not finished: each takes one of the service's slots
UNFINISHED = ("QUEUED", *WITH_RAY)  # may still change state (what a live view keeps polling)
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")  # never change again
KINDS = ("train", "tune")

STATE_TO_PROTO: dict[str, int] = {s: pb.JobState.Value(f"JOB_STATE_{s}") for s in STATES}
STATE_FROM_PROTO: dict[int, str] = {v: k for k, v in STATE_TO_PROTO.items()}
KIND_TO_PROTO: dict[str, int] = {k: pb.JobKind.Value(f"JOB_KIND_{k.upper()}") for k in KINDS}
KIND_FROM_PROTO: dict[int, str] = {v: k for k, v in KIND_TO_PROTO.items()}


def state_name(state: int | str) -> str:
    """A state's name ("RUNNING") from its proto enum value or its name."""
    return state if isinstance(state, str) else STATE_FROM_PROTO.get(state, "UNSPECIFIED")


def kind_name(kind: int | str) -> str:
    """A job kind's name ("tune") from its proto enum value or its name; "" when unset."""
    return kind if isinstance(kind, str) else KIND_FROM_PROTO.get(kind, "")


def is_final(state: int | str) -> bool:
    """Whether a state (proto enum value or name) never changes again."""
    return state_name(state) in FINAL


def is_unfinished(state: int | str) -> bool:
    return state_name(state) in UNFINISHED
