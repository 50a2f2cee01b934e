"""The `foveate` command: one entry point whose help lists every area's subcommands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import main


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "data" in out


def test_console_script_installed():
    exe = Path(sys.executable).parent / "foveate"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: foveate" in proc.stdout


def test_train_and_tune_refuse_bad_input_in_one_line_before_ray_starts(tmp_path, tiny_dataset, capsys):
    """`--set` and the command's kind apply before validation; an invalid field, a missing dataset or split
    are one line naming the field, exit code 2, reported before the CLI connects to (or starts) a Ray."""
    import json

    import ray

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "bad", "kind": "tune", "storage_path": str(tmp_path / "out"), "tune": {},
        "model": {"name": "ram-cluttered60", "overrides": {"num_glimpses": 0}},
        "data": {"path": str(tmp_path / "nowhere")}, "scaling": {"num_workers": 0}}))
    started = ray.is_initialized()

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    assert "scaling.num_workers: must be >= 1 for a tune job" in error("tune", str(spec))
    # `foveate train` on the same file is a train job: the tune-only rule no longer applies.
    assert "model.num_glimpses: must be an integer >= 1, got 0" in error("train", str(spec))
    fixed = ["--set", "model.overrides.num_glimpses=2"]
    message = error("train", str(spec), *fixed)
    assert "data.path: " in message and "foveate data build" in message
    assert "data.val_split: no split 'nope'" in error(
        "train", str(spec), *fixed, "--set", f"data.path={tiny_dataset}", "--set", "data.val_split=nope")
    assert "no such spec file" in error("train", str(tmp_path / "missing.yaml"))
    assert ray.is_initialized() == started


def test_serve_without_a_token_beyond_loopback_exits_before_it_starts_a_ray_head(tmp_path):
    """One line, exit code 2, and no local Ray head (it would outlive the refused `serve`)."""
    cluster_dir = tmp_path / "cluster"
    env = {k: v for k, v in os.environ.items() if k not in ("FOVEATE_TOKEN", "FOVEATE_RAY_ADDRESS", "FOVEATE_DB")}
    env["FOVEATE_CLUSTER_DIR"] = str(cluster_dir)  # where `local.up` would record the head it starts
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "serve", "--host", "0.0.0.0", "--db",
                           str(tmp_path / "c.db")], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr.splitlines() == [
        "foveate serve: error: --host: refusing to listen on 0.0.0.0:50051 without a token; "
        "give --token (or FOVEATE_TOKEN), or listen on 127.0.0.1"]
    assert not cluster_dir.exists()


@pytest.mark.parametrize("args, message", [
    (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key: give both or neither"),
    (["--tls-cert", "cert.pem", "--tls-key", "key.pem"], "--tls-cert: cannot read cert.pem: No such file"),
    (["--storage-root", "hdfs://namenode/runs"], "--storage-root: scheme 'hdfs://' is not served"),
    (["--storage-root", "s3://b/runs", "--storage-root", ""], "--storage-root: an empty root"),
    (["--data-root", "~nosuchuser/data"], "--data-root: ~nosuchuser/data: no user 'nosuchuser'"),
    (["--db", "."], "--db: cannot open . as the catalog"),
], ids=["tls-half", "tls-missing", "storage-root", "empty-root", "data-root", "db-is-a-dir"])
def test_serve_checks_every_argument_before_it_starts_anything(tmp_path, monkeypatch, args, message):
    """`_serve` runs `_prepare` first: whatever it refuses, no Ray head has started."""
    from jobs.api.errors import UserError
    from jobs.cli import build_parser
    from jobs.service.cli import _prepare

    monkeypatch.chdir(tmp_path)
    parsed = build_parser().parse_args(["serve", "--db", str(tmp_path / "c.db"), *args])
    with pytest.raises((UserError, ValueError), match=f"^{message}"):  # both print as one line, exit 2
        _prepare(parsed)


def test_serve_defaults_its_roots(tmp_path, monkeypatch):
    from jobs.api.paths import DEFAULT_STORAGE_ROOT, absolute
    from jobs.cli import build_parser
    from jobs.service.cli import _prepare

    monkeypatch.chdir(tmp_path)
    config, cert, key = _prepare(build_parser().parse_args(["serve", "--db", str(tmp_path / "c.db")]))
    assert config.storage_roots == (absolute(DEFAULT_STORAGE_ROOT),) and cert is key is None
    assert config.data_roots == (str(tmp_path), absolute(DEFAULT_STORAGE_ROOT))
    config, _, _ = _prepare(build_parser().parse_args(
        ["serve", "--db", str(tmp_path / "c.db"), "--storage-root", "runs", "--storage-root", "s3://b/r",
         "--data-root", "/srv/data"]))
    assert config.storage_roots == (str(tmp_path / "runs"), "s3://b/r") and config.data_roots == ("/srv/data",)


def test_train_resolves_paths_where_the_user_wrote_them(tmp_path, monkeypatch, capsys):
    """`foveate train/tune`: "" or no storage_path is the runner's default root; relative paths are made
    absolute here; an unknown `~user` or an unserved scheme is one line naming the field."""
    import json

    from jobs.api.paths import DEFAULT_STORAGE_ROOT, absolute
    from jobs.run.cli import run_spec

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"storage_path": "", "data": {"path": "rel"}}))
    monkeypatch.chdir(tmp_path)
    resolved = run_spec(str(spec), "train", [], "n")
    assert resolved.storage_path == absolute(DEFAULT_STORAGE_ROOT) and resolved.data.path == str(tmp_path / "rel")
    assert run_spec(str(spec), "train", ["storage_path=out"], "n").storage_path == str(tmp_path / "out")
    for override, message in (("storage_path=~nosuchuser/x", "storage_path: ~nosuchuser/x: no user 'nosuchuser'"),
                              ("data.path=hdfs://nn/d", "data.path: scheme 'hdfs://' is not served")):
        assert main(["train", str(spec), "--set", override]) == 2
        assert message in capsys.readouterr().err
