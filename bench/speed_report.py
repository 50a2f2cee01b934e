"""The speed figures in one command: runs bench/mfu.py, bench/ray_overhead.py, bench/service_load.py
(closed loop, and open loop at --rate) and bench/data_throughput.py with --json into --out, then rewrites
the table between README.md's `speed:begin` and `speed:end` markers from those files.

    flock /tmp/bench.lock .venv/bin/python bench/speed_report.py --base 5b9658a   # ~15 min on 2 cores
    .venv/bin/python bench/speed_report.py --render-only                           # the table from --out's files

Every figure in the table is read from the JSON the benches wrote; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from mfu import VARIANTS  # noqa: E402

BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
SERVICE = ["--procs", "2", "--threads", "25", "--seed-jobs", "1000", "--calls", "GetJob,ListJobs", "--seconds", "20"]


def run_benches(out: Path, base: str, rate: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    steps = [
        ("mfu", [py, "bench/mfu.py", "--base", base, "--only", ",".join(v for v in VARIANTS if v != "racnn-cub-lite0"),
                 "--json", str(out / "mfu.json")]),
        # A lite0 step at batch 512 takes ~25 s here: its rows stop at 128.
        ("mfu lite0", [py, "bench/mfu.py", "--base", base, "--only", "racnn-cub-lite0", "--batch-sizes", "32,128",
                       "--json", str(out / "mfu_lite0.json")]),
        ("ray_overhead", [py, "bench/ray_overhead.py", "--repeats", "3", "--json", str(out / "ray_overhead.json")]),
        ("service closed loop", [py, "bench/service_load.py", *SERVICE, "--json", str(out / "service_closed.json")]),
        ("service open loop", [py, "bench/service_load.py", *SERVICE, "--rate", str(rate),
                               "--json", str(out / "service_open.json")]),
        ("data", [py, "bench/data_throughput.py", "--json", str(out / "data.json")]),
    ]
    for i, (name, cmd) in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {name}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None, fmt: str = ".0f") -> str:
    return "–" if x is None else format(x, fmt)


def render(out: Path) -> str:
    mfu = json.loads((out / "mfu.json").read_text())
    if (out / "mfu_lite0.json").exists():
        mfu["rows"] += json.loads((out / "mfu_lite0.json").read_text())["rows"]
    ray = json.loads((out / "ray_overhead.json").read_text())
    closed = json.loads((out / "service_closed.json").read_text())
    opened = json.loads((out / "service_open.json").read_text())
    data = json.loads((out / "data.json").read_text())
    day = datetime.date.fromtimestamp((out / "mfu.json").stat().st_mtime).isoformat()
    gemm = sorted(r["gemm_gflops"] for r in mfu["rows"])
    lines = [
        f"Measured {day} on this 2-core CPU by `bench/speed_report.py` (torch {mfu['torch']}, {mfu['threads']} "
        f"threads); regenerate with the command in its docstring. MFU = FLOPs per image (forward + backward, "
        f"`FlopCounterMode`) x images/s over the machine's dense-GEMM rate ({gemm[0]:.0f}-{gemm[-1]:.0f} GFLOP/s, "
        f"1024^3 fp32, measured beside each row); *base* is commit `{mfu['base']}`, timed in the same run (ABBA).",
        "",
        "| variant | batch | MFLOP/img | img/s base | img/s now | speedup | MFU base | MFU now |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mfu["rows"]:
        lines.append(f"| {r['variant']} | {r['batch']} | {_num(r.get('mflop_now'), '.2f')} | {_num(r['ips_base'])} | "
                     f"{_num(r['ips_now'])} | {_num(r['speedup'], '.2f')}x | {_pct(r['mfu_base'])} | {_pct(r['mfu_now'])} |")
    lines += ["", f"Ray Train, `{ray['model']}`, batch {ray['batch_size']} per worker, {ray['train']} images x "
              f"{ray['epochs']} epochs, median of {ray['repeats']} alternating runs (steady images/s of all workers):", "",
              "| path | images/s | vs plain loop | vs 1 worker |", "|---|---:|---:|---:|"]
    for r in ray["rows"]:
        lines.append(f"| {r['path']} | {r['images_per_s']:.0f} | {r['vs_plain']:.2f}x | {r['vs_1_worker']:.2f}x |")
    lines += ["", f"With 2 workers rank 0 waited {_pct(ray['sync_fraction_2_workers'])} of each epoch for the "
              "gradients' mean (`sync_fraction`).", "",
              f"Job service, {closed['clients']} clients calling GetJob and ListJobs (page of 20) on a catalog of "
              "1,000 jobs, clients, server and Ray on the same 2 cores:", "",
              "| load | requests/s | GetJob p50 / p99 ms | ListJobs p50 / p99 ms | errors |", "|---|---:|---:|---:|---:|"]
    for name, f in (("closed loop (as fast as answered)", closed), (f"open loop, {opened['offered_rps']:.0f} offered/s", opened)):
        c = f["calls"]
        lines.append(f"| {name} | {c['all']['rps']:.0f} | {c['GetJob']['p50_ms']:.1f} / {c['GetJob']['p99_ms']:.1f} | "
                     f"{c['ListJobs']['p50_ms']:.1f} / {c['ListJobs']['p99_ms']:.1f} | {c['all']['errors']} |")
    fastest = max((r["ips_now"] or 0) for r in mfu["rows"])
    lines += ["", f"Data ({data['recipe']}, batch {data['batch_size']}): an epoch's batches from the split in memory "
              f"{data['iterate_per_s']:,.0f} samples/s, {data['iterate_per_s'] / fastest:.0f}x the fastest training rate "
              f"above ({fastest:,.0f} img/s); with the split's one read from Parquet per run, "
              f"{data['end_to_end_per_s']:,.0f} samples/s ({data['end_to_end_per_s'] / fastest:.1f}x)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "speed")
    ap.add_argument("--base", default="HEAD", help="the commit bench/mfu.py compares the models against")
    ap.add_argument("--rate", type=float, default=1000.0, help="the service's open-loop load, calls/s")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args()
    if not args.render_only:
        run_benches(args.out, args.base, args.rate)
    text = args.readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{args.readme}: no {BEGIN} ... {END} markers to write between")
    table = render(args.out)
    args.readme.write_text(re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", lambda _: f"{BEGIN}\n{table}\n{END}",
                                  text, flags=re.S))
    print(table)


if __name__ == "__main__":
    main()
