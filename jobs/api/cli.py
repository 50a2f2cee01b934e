"""`foveate submit | status | logs | cancel | trials | download`: the job service's command-line client.

The commands find the server in --server / FOVEATE_SERVER (default 127.0.0.1:50051) and the token in
--token / FOVEATE_TOKEN. They need only `jobs.api`: no Ray, no models.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from jobs.api.exports import FORMATS, MAX_SAMPLES, card_path
from jobs.api.states import kind_name, state_name


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a train/tune spec to the job service")
    p.add_argument("spec", help="spec file (.yaml or .json)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec field by dotted path, e.g. optim.epochs=2 (value parsed as YAML)")
    p.add_argument("--wait", action="store_true", help="follow the job to its end with a progress bar")
    p.add_argument("--priority", type=int, default=0, help="queue priority (higher starts first)")
    p.add_argument("--owner", default=None, help="owner shown in listings (default: $USER)")
    p.add_argument("--validate-only", action="store_true", help="check the spec; create no job")
    _client_args(p)
    p.set_defaults(func=_client_command(_submit))

    p = sub.add_parser("status", help="one job in detail, or a table of jobs")
    p.add_argument("job_id", nargs="?", help="a job id (omit to list jobs)")
    p.add_argument("--state", action="append", default=[], help="only jobs in this state (repeatable)")
    p.add_argument("--kind", choices=["train", "tune"], default="", help="only jobs of this kind")
    p.add_argument("--model", default="", help="only jobs of this model variant")
    p.add_argument("--owner", default="", help="only jobs of this owner")
    p.add_argument("--limit", type=int, default=20, help="jobs listed (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _client_args(p)
    p.set_defaults(func=_client_command(_status))

    p = sub.add_parser("logs", help="a job's driver log")
    p.add_argument("job_id")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output until the job ends")
    _client_args(p)
    p.set_defaults(func=_client_command(_logs))

    p = sub.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("job_id")
    _client_args(p)
    p.set_defaults(func=_client_command(_cancel))

    p = sub.add_parser("trials", help="the trials of a tune job")
    p.add_argument("job_id")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    _client_args(p)
    p.set_defaults(func=_client_command(_trials))

    p = sub.add_parser("download", help="a finished job's model, exported by the service (ONNX or TorchScript)")
    p.add_argument("job_id", help="a SUCCEEDED job (a tune job gives its best trial's model)")
    p.add_argument("--format", choices=list(FORMATS), default="onnx", help="file format (default onnx)")
    p.add_argument("--samples", type=int, default=0, metavar="M",
                   help=f"0: the mean glimpse path; M in 1..{MAX_SAMPLES}: M sampled paths per image (RAM/DRAM)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="where to write the model (default: the service's file name, here); its model card "
                        "goes beside it")
    _client_args(p)
    p.set_defaults(func=_client_command(_download))


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=None, help="job service address host:port (env FOVEATE_SERVER)")
    p.add_argument("--token", default=None, help="the service's token (env FOVEATE_TOKEN)")
    p.add_argument("--tls-ca", default=None, help="PEM CA certificate: connect with TLS")


def _client_command(fn: Callable) -> Callable:
    """Open a client for the command and turn call failures into one-line user errors."""
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from jobs.api.client import ClientError, FoveateClient
        from jobs.api.errors import UserError

        ca = Path(args.tls_ca).read_bytes() if args.tls_ca else None
        try:
            with FoveateClient(args.server, args.token, tls_ca=ca) as client:
                return fn(client, args)
        except ClientError as exc:
            hint = ""
            if exc.code.name == "UNAVAILABLE":
                hint = " (is `foveate serve` running? set --server or FOVEATE_SERVER)"
            raise UserError(f"{exc} [{exc.code.name}]{hint}") from None
    return run


def _submit(client: Any, args: argparse.Namespace) -> int:
    from jobs.api.spec import apply_overrides, read_spec_file

    spec = apply_overrides(read_spec_file(args.spec), args.set)
    if args.validate_only:
        msg = client.validate(spec)
        from google.protobuf.json_format import MessageToDict

        print(json.dumps(MessageToDict(msg, preserving_proto_field_name=True), indent=1))
        print("spec is valid", file=sys.stderr)
        return 0
    job = client.submit(spec, owner=args.owner, priority=args.priority)
    print(f"submitted {job.id} ({state_name(job.state)}); run directory {job.run_dir}", flush=True)
    if not args.wait:
        return 0
    try:
        job = follow(client, job)
    except KeyboardInterrupt:
        print(f"\nstopped following; {job.id} keeps running: `foveate status {job.id}`", file=sys.stderr)
        return 130
    print_outcome(job)
    return 0 if state_name(job.state) == "SUCCEEDED" else 1


def follow(client: Any, job: Any) -> Any:
    """A live progress bar over the job's epochs (all trials' for a tune job) until it ends."""
    from tqdm import tqdm


    spec = job.spec
    epochs = spec.optim.epochs or 1
    total = epochs * (spec.tune.num_trials if kind_name(spec.kind) == "tune" else 1)
    with tqdm(total=total, desc=f"{job.id} {state_name(job.state)}", unit="epoch", dynamic_ncols=True) as bar:
        for event in client.watch(job.id):
            job = event.job
            if event.WhichOneof("event") == "state_change":
                bar.set_description(f"{job.id} {state_name(event.state_change.state)}")
            else:
                m = event.epoch.metrics
                bar.update(1)
                shown = {k: f"{m[k]:.3f}" for k in ("train_loss", "val_accuracy", "attention_iou") if k in m}
                if event.epoch.trial:
                    shown = {"trial": event.epoch.trial, **shown}
                bar.set_postfix(shown)
    return client.get(job.id)


def print_outcome(job: Any) -> None:

    print(f"{job.id}: {state_name(job.state)}")
    if job.error:
        print(f"error: {job.error}")
    r = job.result
    if r.best_trial:
        print(f"best trial {r.best_trial}: " + ", ".join(f"{k}={_fmt_value(v)}" for k, v in r.best_params.items()))
    if r.metrics:
        print("final metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items())))
    if r.checkpoint_path:
        print(f"checkpoint: {r.checkpoint_path}")
    print(f"run directory: {job.run_dir}\nlogs: foveate logs {job.id}")


def _fmt_value(v: Any) -> str:
    from jobs.api.spec_proto import value_from_proto

    x = value_from_proto(v)
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(ts.seconds).strftime("%Y-%m-%d %H:%M:%S") if ts.seconds else "-"


def _status(client: Any, args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict


    if args.job_id:
        job = client.get(args.job_id)
        if args.json:
            print(json.dumps(MessageToDict(job, preserving_proto_field_name=True), indent=1))
            return 0
        kind = kind_name(job.spec.kind)
        print(f"{job.id}  {state_name(job.state)}  {kind} {job.spec.model.name}  owner={job.owner or '-'}  "
              f"priority={job.priority}")
        for h in job.history:
            print(f"  {_when(h.time)}  {state_name(h.state):<9} {h.reason}")
        print_outcome(job)
        return 0
    page = client.list(states=args.state, kind=args.kind, model=args.model, owner=args.owner, page_size=args.limit)
    if args.json:
        print(json.dumps([MessageToDict(j, preserving_proto_field_name=True) for j in page.jobs], indent=1))
        return 0
    print(f"{'JOB':<17} {'STATE':<10} {'KIND':<6} {'MODEL':<22} {'OWNER':<10} {'CREATED':<19}  RESULT")
    for j in page.jobs:
        acc = j.result.metrics.get("val_accuracy")
        result = f"val_accuracy={acc:.3f}" if acc is not None else (j.error.splitlines()[0][:40] if j.error else "")
        print(f"{j.id:<17} {state_name(j.state):<10} {kind_name(j.spec.kind):<6} "
              f"{j.spec.model.name:<22} {j.owner[:10]:<10} {_when(j.created):<19}  {result}")
    if page.next_page_token:
        print(f"(more: raise --limit above {args.limit})")
    return 0


def _logs(client: Any, args: argparse.Namespace) -> int:
    from jobs.api.logtext import strip_ansi

    keep_colour = sys.stdout.isatty()  # a terminal renders Ray's colours; a file or a pipe gets plain text
    for text in client.logs(args.job_id, follow=args.follow):
        sys.stdout.write(text if keep_colour else strip_ansi(text))
        sys.stdout.flush()
    return 0


def _cancel(client: Any, args: argparse.Namespace) -> int:

    job = client.cancel(args.job_id)
    done = state_name(job.state)
    print(f"{job.id}: {done}" + ("" if done == "CANCELLED" else " (cancel requested; Ray is stopping it)"))
    return 0


def _trials(client: Any, args: argparse.Namespace) -> int:
    from jobs.api import tables

    table = client.trials_table(args.job_id)
    resp_rows = table.to_pylist()
    if args.json:
        print(json.dumps(resp_rows, indent=1, default=str))
        return 0
    if not resp_rows:
        print("no trial has reported yet")
        return 0
    cols = [c for c in table.column_names
            if c in ("trial", "epoch") or c.startswith(tables.PARAM_PREFIX) or c in ("val_accuracy", "val_loss", "attention_iou")]
    print("  ".join(f"{c:>14}" for c in cols))
    for r in resp_rows:
        print("  ".join(f"{_cell(r.get(c)):>14}" for c in cols))
    return 0


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def _download(client: Any, args: argparse.Namespace) -> int:
    from jobs.api.errors import UserError

    name, card, data = client.export_model(args.job_id, args.format, args.samples)
    out = Path(args.out or name)
    card_out = Path(card_path(str(out)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for path, content in ((card_out, (json.dumps(card, indent=1) + "\n").encode()), (out, data)):
            tmp = path.with_name(path.name + ".part")  # never a half-written file under the real name
            tmp.write_bytes(content)
            tmp.replace(path)
    except OSError as exc:
        raise UserError(f"--out: cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({len(data):,} bytes) and its model card {card_out}")
    return 0
