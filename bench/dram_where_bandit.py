"""Can DRAM's "where" pathway learn by REINFORCE alone? A contextual bandit on `multidigit` canvases.

    .venv/bin/python bench/dram_where_bandit.py                       # informative reward
    .venv/bin/python bench/dram_where_bandit.py --noise --steps 1500  # reward independent of the glimpse
    .venv/bin/python bench/dram_where_bandit.py --noise --steps 1500 --policy-lr-scale 1

Only the context net, the emission net and the baseline of `dram-multidigit` take part: the first glimpse
l_0 ~ N(tanh(emission(context(x))), std^2) is rewarded 1 when the first digit's centre lies within
--window px of it on both axes (what a classifier that reads the coarsest retina patch would give), or, with
--noise, at random with probability 0.3 whatever the glimpse. REINFORCE with the learned baseline and Adam,
as in training. Prints, every 100 steps on 500 test canvases, the mean distance in px from the policy mean to
the first digit and how much the policy mean varies across images (0: it ignores the image).

Separates the two halves of DRAM's end-to-end problem: whether the pathway can learn where the digits are
from a reward (it can, in a few hundred steps), and what it does while the reward is still noise.

It keeps an optimisation loop of its own, the one bench that does (bench/models.py only times steps): its
reward and its three-network policy are not a model family's losses, which is all the service's training
loop (jobs/run/loop.py) trains; tests/test_bench_uses_the_loop.py names it as the exception.
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
from attention_models.retina import gaussian_location  # noqa: E402
from jobs.data.recipes import build_recipe  # noqa: E402


def first_digit_centre(batch: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """(B, 2) centre of the first digit's box in normalised [-1, 1] coordinates."""
    box = batch["boxes"][:, 0]
    centre = torch.stack(((box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2), dim=-1)
    return centre / (size / 2) - 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--noise", action="store_true", help="reward independent of the glimpse")
    parser.add_argument("--policy-lr-scale", type=float, default=0.1)
    parser.add_argument("--std", type=float, default=0.1)
    parser.add_argument("--window", type=float, default=24.0, help="px: half the coarsest patch of dram-multidigit")
    parser.add_argument("--max-digits", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    source = args.source if Path(args.source).is_dir() else None
    model = create_model(
        "dram-multidigit", max_digits=args.max_digits, image_size=args.size, hidden=128,
        policy_lr_scale=args.policy_lr_scale, location_std=args.std,
    )  # fmt: skip
    params = [*model.context.parameters(), *model.emission.parameters(), *model.baseline.parameters()]
    optimizer = torch.optim.Adam(params, lr=args.lr)

    def data(split: str, count: int, seed: int):
        return build_recipe("multidigit", count=count, seed=seed, split=split, source=source,
                            max_digits=args.max_digits, size=args.size)  # fmt: skip

    train, test = data("train", 20000, args.seed), data("test", 500, args.seed + 1).to_batch()
    noise = torch.Generator().manual_seed(args.seed)

    def look() -> dict[str, float]:
        with torch.no_grad():
            mean = torch.tanh(model.emission(model.context(test["image"])))
        distance = (mean - first_digit_centre(test, args.size)).norm(dim=-1) * args.size / 2
        return {"distance_px": round(distance.mean().item(), 2), "spread": round(mean.std(dim=0).mean().item(), 6)}

    print(json.dumps({"step": 0, **look()}), flush=True)
    rng, start = np.random.default_rng(args.seed), time.time()
    for step in range(1, args.steps + 1):
        batch = train.to_batch(rng.integers(0, len(train), 32))
        state = model.context(batch["image"])
        loc, log_pi = gaussian_location(torch.tanh(model.emission(state)), args.std, sample=True)
        if args.noise:
            reward = (torch.rand(len(loc), generator=noise) < 0.3).float()
        else:
            offset = (loc - first_digit_centre(batch, args.size)).abs() * args.size / 2
            reward = (offset < args.window).all(dim=-1).float()
        baseline = model.baseline(state.detach()).squeeze(-1)
        loss = -(log_pi * (reward - baseline).detach()).mean() + (baseline - reward).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            row = {"step": step, "seconds": round(time.time() - start), "reward": reward.mean().item(), **look()}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
