"""ExportModel on a real gRPC server over the real Ray head, with real finished jobs (tests/dashboard_harness.py):
a model exported by `python -m jobs.run.export` in the service's subprocess, kept in the run directory and
served from there afterwards, exported once however many ask at once, in chunks past gRPC's message limit;
the status codes of what cannot be exported; `foveate download`; and the exporter's timeout and refusals
of run directories it may not write, in plain Python."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest
from service_harness import TOKEN, tiny_spec, wait_for

from attention_models.export import OPSET
from jobs.api.client import ClientError
from jobs.api.exports import ExportRequest, card_path
from jobs.run.layout import CHECKPOINT_STATE, RunLayout
from jobs.service.catalog import JobRecord
from jobs.service.exports import TMP_PREFIX, Exported, Exporter, ExportFailed, ExportTimedOut, chunks
from jobs.service.outputs import JobStateError

pytest_plugins = ["dashboard_harness"]
pytestmark = [pytest.mark.ray, pytest.mark.slow]
S = grpc.StatusCode


def _error(fn) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn()
    return info.value


def _exports_logged(caplog, file_name: str) -> int:
    return sum(r.getMessage().endswith(f"exporting {file_name}") for r in caplog.records)


def _target(finished_jobs, job_id: str, request: ExportRequest) -> Path:
    return Path(RunLayout.at(finished_jobs.client.get(job_id).run_dir).export(request.file_name))


@pytest.fixture(scope="module")
def onnx_export(finished_jobs):
    """The RAM job's ONNX export: (file name, card, bytes)."""
    return finished_jobs.client.export_model(finished_jobs.ram, "onnx")


def test_a_finished_jobs_model_exports_as_onnx_with_its_card(finished_jobs, onnx_export):
    import numpy as np
    import onnx
    import onnxruntime as ort

    name, card, blob = onnx_export
    assert name == ExportRequest("onnx").file_name == "model-mean.onnx"
    model = onnx.load_model_from_string(blob)
    onnx.checker.check_model(model)
    outputs = [o.name for o in model.graph.output]
    assert list(card["outputs"]) == outputs and {"logits", "prediction"} <= set(outputs)
    assert (card["format"], card["opset"], card["file"], card["size_bytes"]) == ("onnx", OPSET, name, len(blob))
    assert card["sha256"] == hashlib.sha256(blob).hexdigest() and card["model"]["name"] == "ram-cluttered60"
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    shape = [3 if d == "B" else d for d in card["inputs"]["images"]]
    got = session.run(None, {"images": np.random.default_rng(0).random(shape, dtype=np.float32)})
    assert got[outputs.index("logits")].shape[0] == 3  # a batch it was not traced on
    target = _target(finished_jobs, finished_jobs.ram, ExportRequest("onnx"))
    assert target.read_bytes() == blob and json.loads(Path(card_path(str(target))).read_text()) == card
    assert not [p for p in target.parent.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_a_second_request_is_served_from_the_run_directory(finished_jobs, onnx_export, caplog):
    name, card, blob = onnx_export
    target = _target(finished_jobs, finished_jobs.ram, ExportRequest("onnx"))
    mtime = target.stat().st_mtime_ns
    caplog.set_level(logging.INFO, logger="foveate.service")
    again = finished_jobs.client.export_model(finished_jobs.ram, "onnx")
    assert again == (name, card, blob)
    # Not re-exported: the file is the same one (a fresh export would rename a new file into place) and no
    # exporter ran. (Not timed: the dashboard's tests may have exported this job before this module ran.)
    assert target.stat().st_mtime_ns == mtime and _exports_logged(caplog, name) == 0


def test_concurrent_requests_export_once_and_get_the_same_file(finished_jobs, caplog):
    import torch

    caplog.set_level(logging.INFO, logger="foveate.service")
    request = ExportRequest("torchscript")
    target = _target(finished_jobs, finished_jobs.ram, request)
    for cached in (target, Path(card_path(str(target)))):  # exported by another test module: export afresh
        cached.unlink(missing_ok=True)
    answers, errors = [], []

    def ask():
        try:
            answers.append(finished_jobs.client.export_model(finished_jobs.ram, request.format))
        except ClientError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == [] and len(answers) == 3
    assert answers[0][0] == request.file_name == "model-mean.pt"
    assert all(a == answers[0] for a in answers)
    assert _exports_logged(caplog, request.file_name) == 1
    module = torch.jit.load(io.BytesIO(answers[0][2]))
    assert isinstance(module, torch.jit.ScriptModule)


def test_a_tune_job_exports_its_best_trials_model(finished_jobs):
    job = finished_jobs.client.get(finished_jobs.tune)
    name, card, _ = finished_jobs.client.export_model(job.id, "onnx")
    trial_run = RunLayout.at(job.run_dir, job.result.best_trial).train_run
    assert name == "model-mean.onnx" and card["checkpoint"].startswith(trial_run + "/")


def test_a_file_larger_than_a_grpc_message_arrives_whole(finished_jobs):
    """A cached export is sent as it is, in 1 MiB chunks: 5 MB pass under the 4 MB message limit."""
    request = ExportRequest("onnx", samples=7)
    target = _target(finished_jobs, finished_jobs.ram, request)
    target.parent.mkdir(exist_ok=True)
    blob = os.urandom(5_000_000)
    Path(card_path(str(target))).write_text(json.dumps({"note": "placed by the test"}))
    target.write_bytes(blob)
    try:
        assert finished_jobs.client.export_model(finished_jobs.ram, "onnx", 7) == \
            (request.file_name, {"note": "placed by the test"}, blob)
    finally:
        target.unlink()
        Path(card_path(str(target))).unlink()


def test_chunks_cover_the_file_with_its_size_on_each(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x" * (2 * (1 << 20) + 5))
    got = list(chunks(str(path)))
    assert [len(d) for _, d in got] == [1 << 20, 1 << 20, 5] and {t for t, _ in got} == {2 * (1 << 20) + 5}
    path.write_bytes(b"")
    assert list(chunks(str(path))) == [(0, b"")]
    assert Exported(str(path), "{}").file_name == "m.onnx"


def test_what_cannot_be_exported_gets_a_status_naming_why(finished_jobs):
    client = finished_jobs.client
    err = _error(lambda: client.export_model("job-nope"))
    assert err.code == S.NOT_FOUND and "job-nope" in str(err)
    assert (_error(lambda: client.export_model("")).code, str(_error(lambda: client.export_model("")))) == \
        (S.INVALID_ARGUMENT, "job_id: required")
    err = _error(lambda: client.export_model(finished_jobs.ram, "pdf"))
    assert (err.code, str(err)) == (S.INVALID_ARGUMENT, "format: must be one of onnx, torchscript, got 'pdf'")
    err = _error(lambda: client.export_model(finished_jobs.ram, "onnx", -1))
    assert (err.code, str(err)) == (S.INVALID_ARGUMENT, "samples: must be an integer from 0 to 1000, got -1")
    err = _error(lambda: client.export_model(finished_jobs.racnn, "onnx", 10))
    assert err.code == S.INVALID_ARGUMENT and str(err).startswith("samples: ") and "\n" not in str(err), str(err)


def test_a_job_that_did_not_succeed_is_failed_precondition(finished_jobs):
    client = finished_jobs.client
    job = client.submit(tiny_spec(finished_jobs.data, str(Path(client.get(finished_jobs.ram).run_dir).parent),
                                  epochs=500))
    err = _error(lambda: client.export_model(job.id))
    assert err.code == S.FAILED_PRECONDITION and f"job {job.id} is " in str(err)
    client.cancel(job.id)
    wait_for(client, job.id, ("CANCELLED",), timeout=60)
    err = _error(lambda: client.export_model(job.id, "torchscript"))
    assert (err.code, str(err)) == (S.FAILED_PRECONDITION,
                                    f"job {job.id} is CANCELLED; only a SUCCEEDED job has a model to export")


def test_foveate_download_writes_the_model_and_its_card(finished_jobs, onnx_export, tmp_path, capsys):
    from jobs.cli import main

    name, card, blob = onnx_export
    out = tmp_path / "got" / "ram.onnx"
    args = ["--server", finished_jobs.address, "--token", TOKEN]
    assert main(["download", finished_jobs.ram, "--out", str(out), *args]) == 0
    assert out.read_bytes() == blob and json.loads(Path(card_path(str(out))).read_text()) == card
    assert f"wrote {out} ({len(blob):,} bytes)" in capsys.readouterr().out
    assert main(["download", finished_jobs.racnn, "--samples", "10", "--out", str(tmp_path / "x.onnx"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("foveate download: error: samples: ") and err.endswith("[INVALID_ARGUMENT]")
    assert len(err.splitlines()) == 1 and not (tmp_path / "x.onnx").exists()


# ----------------------------------------------------------------------------- the exporter itself


def _record(run_dir: str, state: str = "SUCCEEDED") -> JobRecord:
    return JobRecord(id="job-exporter", kind="train", model="ram-cluttered60", owner="", priority=0, state=state,
                     spec={}, run_dir=run_dir)


def test_an_export_past_the_timeout_is_stopped_and_leaves_nothing(finished_jobs):
    run_dir = finished_jobs.client.get(finished_jobs.ram).run_dir
    request = ExportRequest("torchscript", samples=3)
    exporter = Exporter(timeout_s=0.5, storage_roots=(tempfile.gettempdir(),))
    t0 = time.monotonic()
    with pytest.raises(ExportTimedOut, match=r"took longer than this service's limit of 0.5 s"):
        exporter.export(_record(run_dir), request)
    assert time.monotonic() - t0 < 10
    export_dir = Path(RunLayout.at(run_dir).export_dir)
    assert not (export_dir / request.file_name).exists()
    assert not [p for p in export_dir.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_a_checkpoint_the_exporter_cannot_load_is_an_export_failure_with_its_last_line(finished_jobs, tmp_path):
    """Weights that do not fit the model their config builds: the exporter fails (not a refusal), and the
    error names what went wrong in one line."""
    import torch

    run_dir = finished_jobs.client.get(finished_jobs.ram).run_dir
    source = next(Path(run_dir).glob(f"checkpoint_*/{CHECKPOINT_STATE}"))
    state = torch.load(source, map_location="cpu", weights_only=False)
    state["model_config"]["core_hidden"] = 8  # the saved weights are 256 wide
    broken = tmp_path / "broken-run"
    (broken / "checkpoint_0").mkdir(parents=True)
    torch.save(state, broken / "checkpoint_0" / CHECKPOINT_STATE)
    exporter = Exporter(timeout_s=300, storage_roots=(tempfile.gettempdir(),))
    with pytest.raises(ExportFailed, match=r"^export of model-mean.onnx failed \(exit 1\): ") as info:
        exporter.export(_record(str(broken)), ExportRequest())
    assert "\n" not in str(info.value) and "size mismatch" in str(info.value)
    assert [p.name for p in (broken / "export").iterdir()] == []  # nothing half-written is left to serve


@pytest.mark.parametrize("run_dir, says", [
    ("s3://bucket/runs/job-x", "cannot export into its run directory: storage_path: must lie under one of"),
    ("/etc/job-x", "cannot export into its run directory: storage_path: must lie under one of"),
    (f"{tempfile.gettempdir()}/foveate-no-such-run", "no longer exists"),
])
def test_run_directories_an_export_may_not_write_are_refused(run_dir, says):
    exporter = Exporter(timeout_s=60, storage_roots=(tempfile.gettempdir(),))
    with pytest.raises(JobStateError, match=says):
        exporter.export(_record(run_dir), ExportRequest())
    with pytest.raises(JobStateError, match="job job-exporter is RUNNING; only a SUCCEEDED job"):
        exporter.export(_record(run_dir, "RUNNING"), ExportRequest())
