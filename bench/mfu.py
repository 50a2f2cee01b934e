"""Training speed and model FLOP utilisation (MFU) of the models, against a base commit, in one run.

    flock /tmp/bench.lock .venv/bin/python bench/mfu.py                       # every variant, base HEAD
    flock /tmp/bench.lock .venv/bin/python bench/mfu.py --only ram- --batch-sizes 128 --base HEAD~3
    flock /tmp/bench.lock .venv/bin/python bench/mfu.py --json bench_out/mfu.json

For each variant and batch size: training images/s of full steps (bench/models.py's synthetic batch and
step: forward, the family's losses, backward, Adam), FLOPs per image of one step (forward + backward,
counted by torch.utils.flop_counter.FlopCounterMode: matmuls and convolutions; the fewer of the two
sides' counts, as the model's FLOPs), and MFU = achieved FLOP/s
over the dense-GEMM FLOP/s of this machine (a 1024 x 1024 fp32 matmul on the same threads), as nanoGPT
reports it. The GEMM rate is measured again before every variant and batch, so on a shared, noisy box
each MFU divides by a rate measured seconds, not minutes, away.

The base commit (`--base`, default HEAD: the working tree's changes against the last commit) is checked
out with `git worktree add` into a temporary directory, removed afterwards. Two worker processes
(`--worker ROOT`) import `attention_models` from their own root (this tree and the base) and time steps
on request; the parent asks them in ABBA order (base, now, now, base), so linear drift of the machine
cancels out of the speedup. Both workers run this tree's step code, so only the models differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ram-mnist28", "ram-cluttered60", "ram-cluttered100", "dram-multidigit", "racnn-zoom", "mgcnn-zoom",
            "racnn-cub-lite0")  # fmt: skip
GEMM_SIZE = 1024


def gemm_flops_per_s(seconds: float = 0.5) -> float:
    """Dense fp32 GEMM rate (FLOP/s) of a GEMM_SIZE^3 matmul: the best of ~10 timed batches of 4."""
    a, b = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)
    a @ b  # warm-up
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * GEMM_SIZE**3 / best


# --- worker: times one tree's models -------------------------------------------------------------------


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, groups, output_mask, out_shape=None) -> int:  # fmt: skip
    """torch's FlopCounterMode formula for convolution_backward, with the weight gradient of a grouped
    convolution divided by its groups: torch 2.14 counts it as if dense, which makes EfficientNet-Lite0's
    depthwise convolutions ~20x too many FLOPs (and its MFU over 100 %)."""
    from torch.utils.flop_counter import conv_flop_count

    t = lambda shape: [shape[1], shape[0], *shape[2:]]  # noqa: E731
    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:
        inp, weight = (t(grad_out_shape), t(x_shape)) if transposed else (t(x_shape), t(grad_out_shape))
        flops += conv_flop_count(inp, weight, t(out_shape[1]), transposed=False) // groups
    return flops



def load_step_code():
    """bench/models.py of THIS tree, loaded by path after the worker's attention_models is imported (its own
    sys.path insert then cannot swap the models under it)."""
    spec = importlib.util.spec_from_file_location("bench_models", ROOT / "bench" / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(root: str, threads: int) -> None:
    """Answer JSON requests {variant, batch, seconds} on stdin with {ips, flops_per_image, steps} (or
    {error}) on stdout, one line each; models, batches and optimisers are kept across requests."""
    sys.path.insert(0, root)
    from torch.utils.flop_counter import FlopCounterMode

    import attention_models

    assert Path(attention_models.__file__).resolve().is_relative_to(Path(root).resolve()), attention_models.__file__
    torch.set_num_threads(threads)
    bench = load_step_code()
    cache: dict[tuple[str, int], tuple] = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["variant"], req["batch"])
        try:
            if key not in cache:
                torch.manual_seed(0)
                model = attention_models.create_model(req["variant"]).train()
                batch = bench.synthetic_batch(model.config, req["batch"], torch.Generator().manual_seed(0))
                step = bench.train_step_fn(model, batch)
                step()  # warm-up (and any lazy initialisation)
                fix = {torch.ops.aten.convolution_backward: conv_backward_flops}
                with FlopCounterMode(display=False, custom_mapping=fix) as counter:
                    step()
                cache[key] = (step, counter.get_total_flops() / req["batch"])
            step, flops = cache[key]
            steps, start = 0, time.perf_counter()
            while steps == 0 or time.perf_counter() - start < req["seconds"]:
                step()
                steps += 1
            answer = {"ips": steps * req["batch"] / (time.perf_counter() - start), "flops_per_image": flops, "steps": steps}
        except Exception as exc:  # a variant the base lacks, or out of memory: report it, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(json.dumps(answer), flush=True)


class Worker:
    """A `--worker` subprocess importing the models of `root`."""

    def __init__(self, root: Path, threads: int):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(root), "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root)

    def measure(self, variant: str, batch: int, seconds: float) -> dict:
        self.proc.stdin.write(json.dumps({"variant": variant, "batch": batch, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"error": "worker died"}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


# --- parent: interleaves base, current and GEMM measurements ---------------------------------------------


def measure_row(base: Worker, now: Worker, variant: str, batch: int, seconds: float) -> dict:
    """ABBA: base, now, now, base, with the GEMM rate measured before, between and after."""
    gemm, runs = [gemm_flops_per_s()], {"base": [], "now": []}
    for side in ("base", "now", "now", "base"):
        runs[side].append((base if side == "base" else now).measure(variant, batch, seconds))
        if len(runs["now"]) == 2 and len(runs["base"]) == 1:
            gemm.append(gemm_flops_per_s())
    gemm.append(gemm_flops_per_s())
    row = {"variant": variant, "batch": batch, "gemm_gflops": statistics.median(gemm) / 1e9}
    for side, answers in runs.items():
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            row[f"error_{side}"] = errors[0]
            row[f"ips_{side}"] = row[f"mfu_{side}"] = None
            continue
        # Images over seconds across both measurements (steps are whole, so not a mean of rates).
        images = sum(a["steps"] * batch for a in answers)
        ips = images / sum(a["steps"] * batch / a["ips"] for a in answers)
        row[f"ips_{side}"] = ips
        row[f"mflop_{side}"] = answers[0]["flops_per_image"] / 1e6
    # Model FLOPs are the maths', not an implementation's: the fewer of the two sides' counts, so FLOPs
    # that one side wastes (e.g. a product with a zero state) never raise its MFU.
    model_mflop = min(row.get("mflop_base") or float("inf"), row.get("mflop_now") or float("inf"))
    for side in runs:
        if row[f"ips_{side}"] is not None:
            row[f"mfu_{side}"] = model_mflop * 1e6 * row[f"ips_{side}"] / (row["gemm_gflops"] * 1e9)
    row["speedup"] = row["ips_now"] / row["ips_base"] if row["ips_now"] and row["ips_base"] else None
    return row


def format_row(row: dict | None) -> str:
    if row is None:
        cols = ("variant", "batch", "MFLOP/img", "img/s base", "img/s now", "speedup", "GEMM GFLOP/s", "MFU base", "MFU now")
        return f"{cols[0]:18s} {cols[1]:>5s} {cols[2]:>9s} {cols[3]:>10s} {cols[4]:>10s} {cols[5]:>7s} {cols[6]:>12s} {cols[7]:>8s} {cols[8]:>8s}"
    num = lambda v, f: format(v, f) if v is not None else "-"  # noqa: E731
    mflop = min(row.get("mflop_base") or float("inf"), row.get("mflop_now") or float("inf"))
    return (f"{row['variant']:18s} {row['batch']:5d} {num(mflop, '9.2f')} {num(row['ips_base'], '10.1f')} "
            f"{num(row['ips_now'], '10.1f')} {num(row['speedup'], '7.2f')} {row['gemm_gflops']:12.1f} "
            f"{num(row['mfu_base'] and 100 * row['mfu_base'], '7.1f')}% {num(row['mfu_now'] and 100 * row['mfu_now'], '7.1f')}%")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated substrings: only variants containing one")
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, for the models and the GEMM")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement; each side is measured twice")
    parser.add_argument("--base", default="HEAD", help="git revision to compare against")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: serve measurements of this root
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.threads)

    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    wanted = [s for s in args.only.split(",") if s]
    variants = [v for v in VARIANTS if not wanted or any(s in v for s in wanted)]
    jobs = [(v, int(b)) for v in variants for b in args.batch_sizes.split(",")]
    base_rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU; base {args.base} = {base_rev}; "
          f"now = working tree{' (uncommitted changes)' if dirty else ''}", flush=True)  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="mfu-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), base_rev], cwd=ROOT, check=True)
        base, now = Worker(tree, args.threads), Worker(ROOT, args.threads)
        try:
            for variant, batch in (bar := tqdm(jobs, unit="row", file=sys.stderr)):
                bar.set_description(f"{variant} b{batch}")
                rows.append(measure_row(base, now, variant, batch, args.seconds))
                for side in ("base", "now"):
                    if f"error_{side}" in rows[-1]:
                        tqdm.write(f"{variant} b{batch} {side}: {rows[-1][f'error_{side}']}", file=sys.stderr)
        finally:
            base.close()
            now.close()
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    print(format_row(None))
    for row in rows:
        print(format_row(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"base": base_rev, "threads": args.threads, "seconds": args.seconds, "torch": torch.__version__}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
