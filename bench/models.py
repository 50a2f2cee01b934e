"""Training throughput of every registered model variant, and the batched retina against per-sample loops.

    .venv/bin/python bench/models.py                      # all variants, batch 8, 1 thread
    .venv/bin/python bench/models.py --only ram- --batch-size 32 --threads 2
    .venv/bin/python bench/models.py --skip-models        # the retina comparison only

For each name in `list_models()` the bench builds the registered variant (its real config, not a tiny
one), feeds a synthetic batch of the variant's own input size (config.image_size, config.in_channels) with
every key a family may read (label, sequence, hierarchy, boxes), and times full training steps: forward,
`losses`, backward, Adam step (for phased families, the first phase's loss and group). It reports images
per second after one warm-up step, over at least --seconds or --max-steps steps.

The retina part times, at batch 128, the batched `Retina` (one integral image + one grid_sample) against
three per-sample loops, on the paper's three geometries: (a) the naive reference of tests/test_retina.py
(per sample and scale: pad, crop, avg_pool), (b) the same batched retina called once per sample, (c)
kevinzakka/recurrent-visual-attention's loop (pad the batch once per scale, slice per sample, pool the
stack). The batched one should be at least 10x faster than a per-sample loop. Per call it pays for the
integral image (O(H W)); an episode of T glimpses pays for it once, so the per-episode ratio is what a
model sees.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attention_models import create_model, list_models  # noqa: E402
from attention_models.retina import Retina  # noqa: E402
from tests.test_retina import crop_and_pool_reference  # noqa: E402


def synthetic_batch(config, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch with every key any family reads, sized from the variant's config."""
    size = config.image_size
    channels = config.in_channels
    level_classes = getattr(config, "level_classes", None)
    num_classes = getattr(config, "num_classes", None) or (level_classes[-1] if level_classes else 10)
    label = torch.randint(0, num_classes, (batch_size,), generator=generator)
    batch = {
        "image": torch.rand(batch_size, channels, size, size, generator=generator),
        "label": label,
        "boxes": torch.tensor([size / 4, size / 4, 3 * size / 4, 3 * size / 4]).expand(batch_size, 1, 4).clone(),
    }
    max_digits = getattr(config, "max_digits", None)
    if max_digits:
        lengths = torch.randint(1, max_digits + 1, (batch_size,), generator=generator)
        digits = torch.randint(0, num_classes, (batch_size, max_digits), generator=generator)
        batch["sequence"] = torch.where(torch.arange(max_digits) < lengths[:, None], digits, -1)
        batch["label"] = batch["sequence"][:, 0].clone()
    if level_classes:
        coarse = [torch.randint(0, n, (batch_size,), generator=generator) for n in level_classes[:-1]]
        batch["hierarchy"] = torch.stack([*coarse, label], dim=1)
    return batch


def train_step_fn(model, batch):
    """One training step closure: forward, named losses, backward, Adam on the (first phase's) group."""
    phases = model.phases()
    groups = model.parameter_groups()
    params = groups[phases[0]] if phases else [p for g in groups.values() for p in g]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    takes_phase = "phase" in inspect.signature(model.losses).parameters

    def step():
        out = model(batch["image"])
        losses = model.losses(out, batch, phase=phases[0]) if (phases and takes_phase) else model.losses(out, batch)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def bench_models(names: list[str], batch_size: int, seconds: float, max_steps: int) -> list[tuple[str, float, str]]:
    rows = []
    for name in names:
        torch.manual_seed(0)
        model = create_model(name).train()
        batch = synthetic_batch(model.config, batch_size, torch.Generator().manual_seed(0))
        step = train_step_fn(model, batch)
        step()  # warm-up
        steps, start = 0, time.perf_counter()
        while steps < max_steps and (steps == 0 or time.perf_counter() - start < seconds):
            step()
            steps += 1
        elapsed = time.perf_counter() - start
        ips = steps * batch_size / elapsed
        shape = f"{model.config.in_channels}x{model.config.image_size}x{model.config.image_size}"
        rows.append((name, ips, shape))
        print(f"{name:20s} {shape:>12s}  {ips:9.2f} images/s  ({steps} steps of {batch_size})", flush=True)
    return rows


def kevinzakka_loop(images: torch.Tensor, locations: torch.Tensor, G: int, K: int, factor: int) -> torch.Tensor:
    """kevinzakka's Retina.foveate: per scale, pad, slice each sample in a Python loop, avg_pool."""
    B, C, H, W = images.shape
    out = []
    for k in range(K):
        S = G * factor**k
        padded = F.pad(images, (S // 2, S // 2, S // 2, S // 2))
        x0 = ((locations[:, 0] + 1) / 2 * W).long()
        y0 = ((locations[:, 1] + 1) / 2 * H).long()
        crops = torch.stack([padded[i, :, y0[i] : y0[i] + S, x0[i] : x0[i] + S] for i in range(B)])
        out.append(F.avg_pool2d(crops, factor**k))
    return torch.stack(out, dim=1)


def best_ms(fn, repeats: int = 5, number: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e3


def bench_retina(batch_size: int = 128) -> list[tuple]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for size, G, K, T in [(28, 8, 1, 6), (60, 12, 3, 8), (100, 12, 4, 8)]:
        images = torch.rand(batch_size, 1, size, size, generator=g)
        locations = torch.rand(batch_size, 2, generator=g) * 1.6 - 0.8
        retina = Retina(G, K, 2.0)
        batched = best_ms(lambda: retina(images, locations))  # noqa: B023
        integral = retina.integral(images)
        read = best_ms(lambda: retina.read(integral, locations))  # noqa: B023
        looped = best_ms(
            lambda: torch.cat([retina(images[i : i + 1], locations[i : i + 1]) for i in range(batch_size)]),  # noqa: B023
            repeats=3,
            number=1,
        )
        kz = best_ms(lambda: kevinzakka_loop(images, locations, G, K, 2), repeats=3, number=1)  # noqa: B023
        naive = best_ms(lambda: crop_and_pool_reference(images, locations, G, K, 2), repeats=3, number=1)  # noqa: B023
        episode = batched + (T - 1) * read  # one integral image, T reads
        rows.append((size, G, K, T, batched, read, looped, kz, naive))
        print(
            f"retina {size}x{size}, {K} x {G}x{G}, batch {batch_size}: batched {batched:.2f} ms/call, "
            f"{read:.2f} ms per further glimpse; episode of T={T}: {episode:.1f} ms\n"
            f"    per call:    test reference loop {naive:.1f} ms = {naive / batched:.1f}x | same retina per "
            f"sample {looped:.1f} ms = {looped / batched:.1f}x | kevinzakka loop {kz:.1f} ms = {kz / batched:.1f}x\n"
            f"    per episode: test reference loop {naive * T / episode:.1f}x | same retina per sample "
            f"{looped * T / episode:.1f}x | kevinzakka loop {kz * T / episode:.1f}x",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the box is shared)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time each variant at least this long")
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--only", default="", help="only variants whose name contains this")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--skip-retina", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    if not args.skip_models:
        bench_models([n for n in list_models() if args.only in n], args.batch_size, args.seconds, args.max_steps)
    if not args.skip_retina:
        bench_retina()


if __name__ == "__main__":
    main()
