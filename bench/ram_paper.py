"""Reproduce RAM's 60x60 cluttered-MNIST table (Mnih et al. 2014, NIPS version): 4, 6, 8 glimpses of 12x12
at 3 scales, paper test error 4.96 / 4.08 / 4.04 % (2-layer conv net: 8.09 %).

    .venv/bin/python bench/ram_paper.py --glimpses 4 6 8 --minutes 12          # ~12 min per setting
    .venv/bin/python bench/ram_paper.py --glimpses 4 6 8 --minutes 12 --model-overrides '{"policy_through_core": true}'  # measured: MC 7.48 / 7.22 / 8.28 %
    .venv/bin/python bench/ram_paper.py --glimpses 8 --steps 20000 --threads 2  # a fixed step count
    # REINFORCE through the core too (as in the paper; the model's default detaches it, see ram.py):
    .venv/bin/python bench/ram_paper.py --glimpses 4 --steps 51000 --model-overrides '{"policy_through_core": true}'

Training canvases come from the 60,000 MNIST training digits (`--source`, default ../shared/data/mnist),
redrawn every epoch with a fresh seed (new positions and clutter for the same digits, as generating
cluttered MNIST on the fly does); test canvases from the 5,000 t10k-a test digits, one per digit, fixed.
The clock (or --steps) sets the run's length; the learning rate decays linearly to zero over it, as in the
paper. Every --eval-every seconds a 1,000-canvas test subset is scored (progress only); at the end the full
test set is scored three ways:
    sampled   one sampled glimpse path per image (M = 1): what a single stochastic run gives
    mean      the deterministic path through the policy means (first glimpse at the centre)
    mc        Monte Carlo average of the class probabilities over M = --eval-samples sampled paths
Results go to stdout and, as JSON, to --out (bench_out/ is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attention_models import create_model  # noqa: E402
from bench.steps import train_step  # noqa: E402
from jobs.data.recipes import build_recipe  # noqa: E402

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
    model.train()
    return 100.0 * wrong / len(batch["label"])


def glimpse_distance(model, batch: dict[str, torch.Tensor]) -> list[float]:
    """Mean pixel distance from each glimpse centre (sampled path) to the digit's box centre, per step."""
    model.eval()
    with torch.no_grad():
        out = model(batch["image"], generator=torch.Generator().manual_seed(0))
    model.train()
    centre = (batch["boxes"][:, 0, :2] + batch["boxes"][:, 0, 2:]) / 2  # (B, 2)
    return (out.attention.centres - centre[:, None]).norm(dim=-1).mean(0).tolist()  # (T,)


def train_one(glimpses: int, args, train_source: str, test: dict[str, torch.Tensor], log) -> dict:
    torch.manual_seed(args.seed)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.model_overrides).items()}
    # --model-overrides wins over the flags, so any config field can be set one way.
    model = create_model(args.model, **{"num_glimpses": glimpses, "location_std": args.location_std, **overrides})
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    probe = {k: v[:1000] for k, v in test.items()}
    budget = args.minutes * 60
    start, step, epoch, last_eval = time.time(), 0, 0, time.time()
    history = []
    train, order, cursor = None, None, 0
    while True:
        elapsed = time.time() - start
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1:
            break
        if train is None or cursor + args.batch_size > len(train):  # a fresh drawing of the 60,000 digits
            train = build_recipe(args.recipe, count=None, seed=args.seed * 1000 + epoch, split="train", source=train_source)
            order, cursor, epoch = rng.permutation(len(train)), 0, epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = args.lr * (1 - progress)  # linear decay to zero over the run
        idx = order[cursor : cursor + args.batch_size]
        cursor += args.batch_size
        batch = train.to_batch(idx)
        out, _ = train_step(model, optimizer, batch, step)
        step += 1
        if time.time() - last_eval >= args.eval_every:
            last_eval = time.time()
            row = {
                "step": step,
                "seconds": round(last_eval - start),
                "epochs": round(step * args.batch_size / len(train), 2),
                "train_accuracy": model.metrics(out, batch)["accuracy"],
                "probe_error_sampled": test_error(model, probe, samples=1, seed=1),
                "probe_error_mc": test_error(model, probe, samples=args.eval_samples, seed=1),
                "glimpse_distance_px": [round(d, 1) for d in glimpse_distance(model, probe)],
            }
            history.append(row)
            log(f"T={glimpses} " + json.dumps(row))
    result = {
        "glimpses": glimpses,
        "steps": step,
        "epochs": round(step * args.batch_size / len(train), 2),
        "train_seconds": round(time.time() - start),
        "error_sampled": test_error(model, test, samples=1, seed=2),
        "error_mean_path": test_error(model, test, samples=0),
        "error_mc": test_error(model, test, samples=args.eval_samples, seed=2),
        "mc_samples": args.eval_samples,
        "paper_error": PAPER.get(glimpses),
        "glimpse_distance_px": [round(d, 1) for d in glimpse_distance(model, test)],
        "config": {k: getattr(model.config, k) for k in model.config.__dataclass_fields__},
        "history": history,
    }
    if args.save:
        torch.save({"config": model.config, "state_dict": model.state_dict()}, Path(args.out).with_suffix(f".T{glimpses}.pt"))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glimpses", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--minutes", type=float, default=12.0, help="training time budget per glimpse setting")
    parser.add_argument("--steps", type=int, default=0, help="train this many steps instead of --minutes")
    parser.add_argument("--model", default="ram-cluttered60")
    parser.add_argument("--recipe", default="cluttered60")
    parser.add_argument("--model-overrides", default="{}", help='JSON config overrides, e.g. \'{"core": "lstm"}\'')
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam; decays linearly to 0 over the run")
    parser.add_argument("--location-std", type=float, default=0.1)
    parser.add_argument("--eval-samples", type=int, default=10, help="M paths for the Monte Carlo test error")
    parser.add_argument("--eval-every", type=float, default=60.0, help="seconds between progress probes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", action="store_true", help="also save each model next to --out")
    parser.add_argument("--out", default=str(ROOT / "bench_out" / "ram_paper.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, flush=True)

    test = build_recipe(args.recipe, count=None, seed=0, split="test", source=args.source).to_batch()
    log(f"{args.recipe}: test canvases {tuple(test['image'].shape)} from the {len(test['label'])} test digits")
    results = []
    for glimpses in args.glimpses:
        results.append(train_one(glimpses, args, args.source, test, log))
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    log("\nRAM on 60x60 cluttered MNIST, test error % (5,000 test canvases)")
    log(f"{'glimpses':>8} {'sampled':>8} {'mean':>8} {'MC M=' + str(args.eval_samples):>8} {'paper':>6}  epochs  minutes")
    for r in results:
        log(
            f"{r['glimpses']:>8} {r['error_sampled']:>8.2f} {r['error_mean_path']:>8.2f} {r['error_mc']:>8.2f} "
            f"{r['paper_error'] or float('nan'):>6.2f}  {r['epochs']:>6.1f}  {r['train_seconds'] / 60:>6.1f}"
        )


if __name__ == "__main__":
    main()
