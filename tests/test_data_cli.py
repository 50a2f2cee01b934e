"""`foveate data build` / `foveate data show`, in-process through jobs.cli.main and once as a real command."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jobs.cli import main
from jobs.data.store import read_manifest, read_split

FOVEATE = Path(sys.executable).parent / "foveate"


def test_build_and_show(tmp_path, capsys):
    out = tmp_path / "c60"
    rc = main(
        ["data", "build", "cluttered60", "--out", str(out), "--train", "40", "--test", "10", "--seed", "5"]
    )
    assert rc == 0
    manifest = read_manifest(out)
    assert manifest["counts"] == {"train": 40, "test": 10} and manifest["seed"] == 5
    assert manifest["image_size"] == [60, 60, 1] and manifest["recipe"] == "cluttered60"
    assert "wrote" in capsys.readouterr().out

    png = tmp_path / "grid.png"
    assert main(["data", "show", str(out), "--out", str(png), "--split", "test", "--n", "6"]) == 0
    printed = capsys.readouterr().out
    assert "train: 40 samples" in printed and "test: 10 samples" in printed
    assert "image: binary" in printed and "boxes: list<" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_build_options_and_size(tmp_path):
    out = tmp_path / "md"
    argv = ["data", "build", "multidigit", "--out", str(out), "--train", "12", "--test", "0", "--size", "64"]
    assert main([*argv, "--option", "max_digits=2"]) == 0
    manifest = read_manifest(out)
    assert manifest["counts"] == {"train": 12} and manifest["image_size"] == [64, 64, 1]
    assert manifest["options"] == {"max_digits": 2, "size": 64} and manifest["sequence_length"] == 2


def one_line_error(capsys) -> str:
    """The error the CLI printed: one line, after any progress bars, and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["data", "build", "nosuch", "--out", str(tmp_path / "x")]) == 2
    assert "unknown recipe 'nosuch'; known recipes: mnist28" in one_line_error(capsys)

    assert main(["data", "build", "cluttered60", "--out", str(tmp_path / "x"), "--size", "80"]) == 2
    assert "unknown option 'size'" in one_line_error(capsys)

    assert (
        main(["data", "build", "mnist28", "--out", str(tmp_path / "x"), "--source", str(tmp_path / "no")])
        == 2
    )
    assert "no: digit source not found" in one_line_error(capsys)

    assert main(["data", "show", str(tmp_path / "absent")]) == 2
    assert "absent/manifest.json: not found" in one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_corrupt_source_leaves_no_output(tmp_path, capsys):
    # Training files are fine, the test images are truncated: the build fails after the train split
    # was built, and nothing may be left at --out (or beside it) that looks like a dataset.
    src = tmp_path / "mnist"
    src.mkdir()
    images = np.zeros((6, 28, 28), np.uint8)
    images[:, 10:15, 10:15] = 200

    def idx(name: str, array: np.ndarray, cut: int = 0) -> None:
        data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        data += array.tobytes()
        (src / name).write_bytes(gzip.compress(data[: len(data) - cut]))

    idx("train-images-idx3-ubyte.gz", images)
    idx("train-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8))
    idx("t10k-images-idx3-ubyte.gz", images, cut=100)
    idx("t10k-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8))
    out = tmp_path / "out"
    assert main(["data", "build", "translated60", "--out", str(out), "--source", str(src)]) == 2
    err = one_line_error(capsys)
    assert "t10k-images-idx3-ubyte.gz: header says shape (6, 28, 28)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]

    # The same source without the broken test split builds, and the test split can be skipped.
    assert (
        main(["data", "build", "translated60", "--out", str(out), "--source", str(src), "--test", "0"]) == 0
    )
    assert len(read_split(out, "train")) == 6


def test_existing_output_refused_then_overwritten(tmp_path, capsys):
    out = tmp_path / "ds"
    argv = ["data", "build", "mnist28", "--out", str(out), "--train", "5", "--test", "5"]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "already exists" in one_line_error(capsys)
    assert main([*argv, "--seed", "9", "--overwrite"]) == 0
    assert read_manifest(out)["seed"] == 9


@pytest.mark.skipif(not FOVEATE.exists(), reason="the foveate console script is not installed")
def test_console_script(tmp_path):
    bad = subprocess.run([str(FOVEATE), "data", "build", "cluttered61", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "foveate data: error: unknown recipe 'cluttered61'; known recipes: "
        "mnist28, translated60, cluttered60, cluttered100, multidigit, pairs, zoom, cub, folder"
    ]
    assert "build" in subprocess.run([str(FOVEATE), "data", "--help"], capture_output=True, text=True).stdout
