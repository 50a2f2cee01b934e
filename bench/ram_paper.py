"""Reproduce RAM's 60x60 cluttered-MNIST table (Mnih et al. 2014, NIPS version): 4, 6, 8 glimpses of 12x12
at 3 scales, paper test error 4.96 / 4.08 / 4.04 % (2-layer conv net: 8.09 %).

    .venv/bin/python bench/ram_paper.py --glimpses 4 6 8 --epochs 40 --minutes 12   # at most ~12 min per setting
    .venv/bin/python bench/ram_paper.py --glimpses 4 6 8 --epochs 40 --model-overrides '{"policy_through_core": true}'
    .venv/bin/python bench/ram_paper.py --glimpses 8 --steps 20000 --threads 2  # a fixed step count (whole epochs)
    # REINFORCE through the core too (as in the paper; the model's default detaches it, see ram.py):
    .venv/bin/python bench/ram_paper.py --glimpses 4 --steps 51000 --model-overrides '{"policy_through_core": true}'
    # smoke run: tiny data, one epoch
    .venv/bin/python bench/ram_paper.py --glimpses 2 --epochs 1 --train-count 256 --test-count 64 --eval-samples 2

Each setting is one run of the service's training loop (jobs.run.loop.fit, in-process) on a dataset
directory written under bench_out/ram_paper/data/ (as `foveate data build` writes one), its run directory
under bench_out/ram_paper/runs/T<glimpses>/. Training canvases come from the 60,000 MNIST training digits
(`--source`, default ../shared/data/mnist): --train-count canvases drawn once (default one per digit; more
cycle through the digits with new positions and clutter). The bench used to redraw the canvases every epoch;
the loop trains on a fixed split, so raise --train-count for more variety. Test canvases come from the 5,000
t10k-a test digits, one per digit, fixed (seed 0 whatever --seed).
The run lasts --epochs epochs (--steps N: the whole epochs that hold N steps), with the learning rate decaying
linearly to zero over them (optim.schedule linear, per epoch), as in the paper; --minutes, when given, ends
the run at the end of the first epoch past it, before the schedule has run out (set --epochs to what fits).
At the end of an epoch, at most every --eval-every seconds, a 1,000-canvas test subset is scored (progress
only); at the end the full test set is scored three ways, on the last epoch's model:
    sampled   one sampled glimpse path per image (M = 1): what a single stochastic run gives
    mean      the deterministic path through the policy means (first glimpse at the centre)
    mc        Monte Carlo average of the class probabilities over M = --eval-samples sampled paths
Results go to stdout and, as JSON, to --out (bench_out/ is git-ignored); --save also copies each last
checkpoint next to --out (a state file that load_trained, foveate evaluate and model.init_from read).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.runs import Keeper, OutOfTime, bench_spec, dataset  # noqa: E402
from jobs.data.store import read_manifest, read_split  # noqa: E402
from jobs.run.layout import CHECKPOINT_STATE  # noqa: E402
from jobs.run.loop import fit  # noqa: E402

PAPER = {4: 4.96, 6: 4.08, 8: 4.04}


def test_error(model, batch: dict[str, torch.Tensor], samples: int, chunk: int = 500, seed: int = 0) -> float:
    """Test error in % of `model.evaluate(images, samples)` over the whole batch, in chunks."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    wrong = 0
    for start in range(0, len(batch["label"]), chunk):
        images = batch["image"][start : start + chunk]
        out = model.evaluate(images, samples=samples, generator=generator if samples else None)
        wrong += (model.predict(out) != batch["label"][start : start + chunk]).sum().item()
    return 100.0 * wrong / len(batch["label"])


def glimpse_distance(model, batch: dict[str, torch.Tensor]) -> list[float]:
    """Mean pixel distance from each glimpse centre (sampled path) to the digit's box centre, per step."""
    model.eval()
    with torch.no_grad():
        out = model(batch["image"], generator=torch.Generator().manual_seed(0))
    centre = (batch["boxes"][:, 0, :2] + batch["boxes"][:, 0, 2:]) / 2  # (B, 2)
    return (out.attention.centres - centre[:, None]).norm(dim=-1).mean(0).tolist()  # (T,)


def train_one(glimpses: int, args, data: str, train_count: int, test: dict[str, torch.Tensor], log) -> dict:
    overrides = json.loads(args.model_overrides)
    # --model-overrides wins over the flags, so any config field can be set one way.
    overrides = {"num_glimpses": glimpses, "location_std": args.location_std, **overrides}
    steps_per_epoch = math.ceil(train_count / args.batch_size)
    epochs = math.ceil(args.steps / steps_per_epoch) if args.steps else args.epochs
    spec = bench_spec(
        f"T{glimpses}", Path(args.out).with_suffix("") / "runs",
        model={"name": args.model, "overrides": overrides},
        data={"path": data, "max_val_samples": 1000},
        optim={"lr": args.lr, "schedule": "linear", "batch_size": args.batch_size, "epochs": epochs,
               "seed": args.seed, "eval_samples": args.eval_samples},
    )  # fmt: skip
    probe = {k: v[:1000] for k, v in test.items()}
    history: list[dict] = []
    last_probe = [time.monotonic()]

    def on_epoch(metrics: dict, state: dict) -> None:
        if time.monotonic() - last_probe[0] < args.eval_every and metrics["epoch"] < epochs - 1:
            return
        last_probe[0] = time.monotonic()
        model = keeper.model()
        row = {
            "step": metrics["step"],
            "seconds": round(keeper.seconds),
            "epochs": metrics["epoch"] + 1,
            "lr": metrics["lr"],
            "train_accuracy": round(metrics["train_accuracy"], 4),
            "probe_error_sampled": test_error(model, probe, samples=1, seed=1),
            "probe_error_mc": test_error(model, probe, samples=args.eval_samples, seed=1),
            "glimpse_distance_px": [round(d, 1) for d in glimpse_distance(model, probe)],
        }
        history.append(row)
        log(f"T={glimpses} " + json.dumps(row))

    keeper = Keeper(spec, minutes=args.minutes or None, on_epoch=on_epoch)
    with contextlib.suppress(OutOfTime):
        fit(spec, keeper)
    model, state = keeper.model(), keeper.state
    result = {
        "glimpses": glimpses,
        "steps": state["step"],
        "epochs": state["epoch"] + 1,
        "train_seconds": round(keeper.seconds),
        "error_sampled": test_error(model, test, samples=1, seed=2),
        "error_mean_path": test_error(model, test, samples=0),
        "error_mc": test_error(model, test, samples=args.eval_samples, seed=2),
        "mc_samples": args.eval_samples,
        "paper_error": PAPER.get(glimpses),
        "glimpse_distance_px": [round(d, 1) for d in glimpse_distance(model, test)],
        "config": {k: getattr(model.config, k) for k in model.config.__dataclass_fields__},
        "run": keeper.layout.root,
        "history": history,
    }
    if args.save:
        shutil.copyfile(Path(keeper.checkpoint) / CHECKPOINT_STATE, Path(args.out).with_suffix(f".T{glimpses}.pt"))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glimpses", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--epochs", type=int, default=40, help="epochs per glimpse setting (the schedule's length)")
    parser.add_argument("--steps", type=int, default=0, help="train the whole epochs that hold this many steps instead")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="end a setting at the first epoch end past this many minutes (0: no limit)")
    parser.add_argument("--model", default="ram-cluttered60")
    parser.add_argument("--recipe", default="cluttered60")
    parser.add_argument("--model-overrides", default="{}", help='JSON config overrides, e.g. \'{"core": "lstm"}\'')
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--train-count", type=int, default=None, help="training canvases (default: one per digit)")
    parser.add_argument("--test-count", type=int, default=None, help="test canvases (default: one per test digit)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam; decays linearly to 0 over the epochs")
    parser.add_argument("--location-std", type=float, default=0.1)
    parser.add_argument("--eval-samples", type=int, default=10, help="M paths for the Monte Carlo test error")
    parser.add_argument("--eval-every", type=float, default=60.0, help="seconds between progress probes (at epoch ends)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", action="store_true", help="also copy each last checkpoint next to --out")
    parser.add_argument("--out", default=str(ROOT / "bench_out" / "ram_paper.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, flush=True)

    name = f"{args.recipe}-train{args.train_count or 'all'}-test{args.test_count or 'all'}-seed{args.seed}"
    data = dataset(Path(args.out).with_suffix("") / "data" / name, args.recipe,
                   {"train": args.train_count, "test": args.test_count}, seed=args.seed, source=args.source,
                   split_seeds={"test": 0})  # fmt: skip
    train_count = read_manifest(data)["counts"]["train"]
    test = read_split(data, "test").to_batch()
    log(f"{args.recipe}: {train_count} training canvases, test canvases {tuple(test['image'].shape)} ({data})")
    results = []
    for glimpses in args.glimpses:
        results.append(train_one(glimpses, args, data, train_count, test, log))
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    log(f"\nRAM on 60x60 cluttered MNIST, test error % ({len(test['label']):,} test canvases)")
    log(f"{'glimpses':>8} {'sampled':>8} {'mean':>8} {'MC M=' + str(args.eval_samples):>8} {'paper':>6}  epochs  minutes")
    for r in results:
        log(
            f"{r['glimpses']:>8} {r['error_sampled']:>8.2f} {r['error_mean_path']:>8.2f} {r['error_mc']:>8.2f} "
            f"{r['paper_error'] or float('nan'):>6.2f}  {r['epochs']:>6d}  {r['train_seconds'] / 60:>6.1f}"
        )


if __name__ == "__main__":
    main()
