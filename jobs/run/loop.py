"""The one model-agnostic training loop, run by every Ray Train worker (and in-process for tests).

Nothing here names a model family: the model supplies its loss terms, metrics, parameter groups,
alternating phases, attention initialisation and per-step logits, through the methods that
base.AttentionModel declares (no probing of signatures or attributes); the loop owns optimisers,
schedules, data sharding, evaluation, attention records and checkpoints.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attention_models import AttentionModel, create_model, model_config
from attention_models.configs import REST
from attention_models.factory import load_weights
from jobs.api.spec import PRETRAINED, JobSpec
from jobs.data.augment import augment
from jobs.data.loader import iterate_batches
from jobs.data.store import read_split
from jobs.run import checkpoints, record_files, records, schedules, storage
from jobs.run.checks import check_data
from jobs.run.layout import CHECKPOINT_STATE, RunLayout, latest_checkpoint


class NonFiniteLossError(FloatingPointError):
    """The loss went NaN/inf: training stops at once, naming the step and every loss term."""


def data_fields(spec: JobSpec, manifest: dict[str, Any]) -> dict[str, Any]:
    """Model config fields the dataset decides (input size, channels, classes, label hierarchy).

    Filled in for every field the model's config has and the spec does not override, so one variant
    serves any dataset of its kind; an explicit override that contradicts the data fails in the model.
    """
    fields = {f.name for f in dataclasses.fields(model_config(spec.model.name))}
    h, w, c = manifest["image_size"]
    if h != w:
        raise ValueError(f"data.path: images are {h}x{w}; the attention models take square images")
    found: dict[str, Any] = {"image_size": h, "in_channels": c}
    if manifest.get("sequence_length"):
        found["max_digits"] = manifest["sequence_length"]  # sequence models: classes are the digits
    else:
        found["num_classes"] = len(manifest["class_names"])
    names = manifest.get("hierarchy_names")
    if names:
        found["level_classes"] = tuple(len(level) for level in names)
        if manifest.get("hierarchy_map") is not None:
            found["fine_to_coarse"] = tuple(tuple(m) for m in manifest["hierarchy_map"])
    return {k: v for k, v in found.items() if k in fields and k not in spec.model.overrides}


def initial_model(spec: JobSpec, manifest: dict[str, Any], fresh: bool = True) -> AttentionModel:
    """The model a run starts from: random weights, or `model.init_from`'s (the shipped weights of the
    variant, in the config they fit, or a checkpoint's weights, strict match) when `fresh` (a resumed run
    loads its own checkpoint instead)."""
    fields = {**data_fields(spec, manifest), **spec.model.overrides}
    init = spec.model.init_from
    if init == PRETRAINED:
        return create_model(spec.model.name, pretrained=True, **fields)
    model = create_model(spec.model.name, **fields)
    if init and fresh:
        source = checkpoints.find_checkpoint(init)
        load_weights(model, checkpoints.load_state(source)["model"], f"model.init_from: {init}")
    return model


def build_optimizers(model: AttentionModel, spec: JobSpec) -> dict[str, torch.optim.Optimizer]:
    """One optimiser per phase group (`parameter_groups`), so alternating phases keep separate moment
    estimates; inside each, one torch param group per learning-rate group of the family (`lr_groups`),
    named by its "lr_group" key, which `set_learning_rates` scales by `optim.lr_scales`."""
    o = spec.optim
    group_of = {id(p): name for name, params in model.lr_groups().items() for p in params}
    out = {}
    for name, params in model.parameter_groups().items():
        by_group: dict[str, list[nn.Parameter]] = {}
        for p in params:
            by_group.setdefault(group_of.get(id(p), REST), []).append(p)
        groups = [{"params": ps, "lr_group": g, "lr": schedules.group_lr(o, 0, g)} for g, ps in by_group.items()]
        if o.optimizer == "sgd":
            out[name] = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        elif o.optimizer == "adamw":
            out[name] = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
        else:
            out[name] = torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    return out


def set_learning_rates(optimizers: dict[str, torch.optim.Optimizer], spec: JobSpec, epoch: int) -> None:
    """Every param group's learning rate for `epoch`, from the schedule and its group's scale (a checkpoint's
    optimiser state from before groups were named counts as "rest")."""
    for opt in optimizers.values():
        for g in opt.param_groups:
            g["lr"] = schedules.group_lr(spec.optim, epoch, g.get("lr_group", REST))


def repeat_rollouts(batch: dict[str, Tensor], samples: int) -> dict[str, Tensor]:
    """Each image (and its labels and boxes) `samples` times in a row: (B, ...) -> (B * M, ...), so a
    sampling family runs M glimpse paths per image in one batch, and its reward baseline and REINFORCE
    see all of them (`optim.train_samples`). The loss is that of M copies of the batch."""
    return batch if samples == 1 else {k: v.repeat_interleave(samples, dim=0) for k, v in batch.items()}


def _check_finite(total: Tensor, terms: dict[str, Tensor], step: int) -> None:
    if not torch.isfinite(total):
        shown = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
        raise NonFiniteLossError(f"non-finite loss at step {step}: total={total.item()} ({shown})")


def _to(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _average_gradients(model: nn.Module, world_size: int) -> Callable[[], None]:
    """Start the all-reduce (mean) of the gradients, as one flat buffer (one collective per step), and
    return what finishes it: the caller does other work meanwhile. As DDP with unused parameters: every
    rank sends every trainable parameter (zeros where it has no gradient, so the buffers always match)
    and a count of the ranks that had one; a parameter no rank had a gradient for keeps none."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return lambda: None
    had = torch.tensor([p.grad is not None for p in params], dtype=params[0].dtype, device=params[0].device)
    flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in params] + [had])
    work = dist.all_reduce(flat, async_op=True)

    def finish() -> None:
        work.wait()
        flat.div_(world_size)
        *parts, counts = flat.split([p.numel() for p in params] + [len(params)])
        for p, part, count in zip(params, parts, counts.tolist(), strict=True):
            if p.grad is not None:
                p.grad.copy_(part.view_as(p))
            elif count > 0:  # another rank used it: the mean of theirs and this rank's zero, as DDP gives
                p.grad = part.view_as(p).clone()
    return finish


def broadcast_weights(model: nn.Module) -> nn.Module:
    """Rank 0's parameters and buffers on every rank (what DDP does when it wraps a model)."""
    import torch.distributed as dist

    for t in (*model.parameters(), *model.buffers()):
        dist.broadcast(t.data, src=0)
    return model


def _autocast(spec: JobSpec, device: torch.device):
    if spec.optim.mixed_precision and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def _infer(model: AttentionModel, images: Tensor, samples: int) -> Any:
    """The model's output for evaluation, averaging `samples` glimpse paths where the family samples."""
    return model.evaluate(images, samples=samples)


@torch.no_grad()
def evaluate(model: AttentionModel, data, spec: JobSpec, device: torch.device) -> dict[str, float]:
    """Validation loss terms, the model's metrics and the attention score, averaged over `data`."""
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    n = 0
    ious = []
    for batch in iterate_batches(data, spec.optim.batch_size, shuffle=False, seed=0):
        batch = _to(batch, device)
        with _autocast(spec, device):
            out = _infer(model, batch["image"], spec.optim.eval_samples)
            terms = model.losses(out, batch)
        b = batch["image"].shape[0]
        for k, v in terms.items():
            sums[f"val_{k}"] += float(v) * b
        sums["val_loss"] += float(sum(terms.values())) * b
        for k, v in model.metrics(out, batch).items():
            sums[f"val_{k}"] += float(v) * b
        ious.append(records.attention_iou(out.attention, batch["boxes"]).cpu())
        n += b
    model.train()
    result = {k: v / max(n, 1) for k, v in sums.items()}
    iou = torch.cat(ious) if ious else torch.empty(0)
    iou = iou[~torch.isnan(iou)]
    result["attention_iou"] = float(iou.mean()) if iou.numel() else float("nan")
    return result


@torch.no_grad()
def attention_record(model: AttentionModel, probe, spec: JobSpec, device: torch.device, epoch: int, trial: str):
    """The attention record table of the probe images at this epoch."""
    model.eval()
    idx = np.arange(len(probe))
    batch = _to(probe.to_batch(idx), device)
    out = _infer(model, batch["image"], spec.optim.eval_samples)
    # A sampling family's record also keeps its mean path (samples 0), the one an exported model follows.
    mean = _infer(model, batch["image"], 0) if model.samples_paths else None
    model.train()
    return records.build_record(
        epoch=epoch, trial=trial, sample_ids=idx, images=probe.images, batch=batch,
        prediction=model.predict(out), attention=out.attention,
        step_logits=model.step_logits(out),
        mean_prediction=model.predict(mean) if mean is not None else None,
        mean_attention=mean.attention if mean is not None else None,
    )


def _cap(data, n: int):
    return data.subset(np.arange(min(n, len(data)))) if n else data


def fit(spec: JobSpec, report: Callable[[dict[str, Any], dict | None], None], *, rank: int = 0,
        world_size: int = 1, device: torch.device | None = None, wrap: Callable[[nn.Module], nn.Module] | None = None,
        resume: dict | None = None, trial: str = "") -> dict[str, float]:
    """Train `spec` for its epochs; call `report(metrics, state_or_None)` once per epoch on every rank.

    `state` (rank 0 only) is the complete checkpoint: unwrapped weights, optimisers, epoch, spec.
    `wrap` turns the model into its data-parallel form (Ray's prepare_model); `resume` is a state dict
    from a previous checkpoint. Returns the last epoch's metrics.
    """
    device = device or torch.device("cpu")
    # The driver checked the dataset too, but from its own node: a worker's node may lack the storage's
    # endpoint or credentials, which this names in one line (data.path: cannot read s3://...: cause).
    manifest = check_data(spec)
    torch.manual_seed(spec.optim.seed)  # identical initial weights on every rank
    raw = initial_model(spec, manifest, fresh=not resume).to(device)
    optimizers = build_optimizers(raw, spec)
    start_epoch, step = 0, 0
    if resume:
        raw.load_state_dict(resume["model"])
        for name, state in resume["optimizers"].items():
            optimizers[name].load_state_dict(state)
        start_epoch, step = resume["epoch"] + 1, resume.get("step", 0)
    if resume and rank == 0:
        # Ray Train restarted the workers (a worker or its node was lost, or the run was restarted): kept
        # with the run, so the result and the job's history can say that it resumed, and from where.
        files = RunLayout.of(spec, trial)
        storage.write_json(files.resumes, storage.read_json(files.resumes, []) + [
            {"epoch": start_epoch, "from_checkpoint_epoch": resume["epoch"], "time": time.time()}])
    model = wrap(raw) if wrap else raw
    commit = checkpoints.code_commit() if rank == 0 else ""  # what trained it, kept in every checkpoint (model cards)
    # Each worker reads only its own contiguous shard; the shards differ by at most one row, so every
    # rank runs the same number of steps (the smallest shard's), which keeps DDP's all-reduces in step.
    total = manifest["counts"].get(spec.data.train_split, 0)
    if spec.data.max_train_samples:
        total = min(total, spec.data.max_train_samples)
    train = read_split(spec.data.path, spec.data.train_split, shard=rank, num_shards=world_size,
                       limit=max(total // world_size, 1))
    steps_per_epoch = max((total // world_size) // spec.optim.batch_size, 1) if world_size > 1 else None
    val = _cap(read_split(spec.data.path, spec.data.val_split), spec.data.max_val_samples) if rank == 0 else None
    probe = val.subset(np.arange(min(spec.data.probe_count, len(val)))) if val is not None else None
    phases = raw.phases()
    rollouts = spec.optim.train_samples
    start_std = raw.config.location_std if raw.samples_paths else None
    init_steps = 0 if resume else spec.optim.attention_init_steps
    # Augmentation draws differ per rank (each sees its own shard) and per resume (a new stream).
    augment_rng = torch.Generator().manual_seed(spec.optim.seed * 100_003 + rank * 1_009 + start_epoch)
    metrics: dict[str, float] = {}
    # Wall time of the run so far, across resumes: the x axis of "error against minutes".
    clock, elapsed_before = time.time(), float((resume or {}).get("metrics", {}).get("elapsed_s", 0.0))

    for epoch in range(start_epoch, spec.optim.epochs):
        set_learning_rates(optimizers, spec, epoch)
        if start_std is not None:
            raw.set_location_std(schedules.location_std(spec.optim, start_std, epoch))
        sums: dict[str, float] = defaultdict(float)
        seen, episodes, synced, t0 = 0, 0, 0.0, time.perf_counter()
        batches = iterate_batches(train, spec.optim.batch_size, shuffle=True, seed=spec.optim.seed, epoch=epoch,
                                  drop_last=world_size > 1)
        for batch in itertools.islice(batches, steps_per_epoch):
            batch = _to(augment(batch, augment_rng, spec.data.hflip, spec.data.max_shift, spec.data.min_crop), device)
            images = batch["image"].shape[0]
            batch = repeat_rollouts(batch, rollouts)
            phase = phases[(step // spec.optim.alternate_every) % len(phases)] if phases else None
            init = init_steps > 0 and raw.has_attention_init()
            # The init loss reaches only the attention net; DDP would wait forever for the other parameters'
            # gradients, so these few steps skip its reducer and average the gradients they made by hand.
            manual = init and model is not raw
            with model.no_sync() if manual else nullcontext():
                with _autocast(spec, device):
                    out = model(batch["image"])
                    if init:
                        terms = raw.attention_init_losses(out, batch)
                        init_steps -= 1
                        # Every group steps: only the attention net's parameters get a gradient from this loss.
                        phase = None
                    else:
                        terms = raw.losses(out, batch, phase=phase)
                total = sum(terms.values())
                _check_finite(total, terms, step)
                for opt in optimizers.values():
                    opt.zero_grad(set_to_none=True)
                total.backward()
            # DDP skipped for these steps, or not used (CPU): the gradients' mean is taken here, and the
            # batch's figures are summed while it travels (they read `out`, not the weights).
            reduced = _average_gradients(raw, world_size) if manual or (world_size > 1 and model is raw) else None
            b = batch["image"].shape[0]  # episodes: images x rollouts
            seen += images
            episodes += b
            for k, v in terms.items():
                sums[f"train_{k}"] += float(v.detach()) * b
            sums["train_loss"] += float(total.detach()) * b
            with torch.no_grad():  # train accuracy and co. on the batch as trained (one sampled path for RAM/DRAM)
                for k, v in raw.metrics(out, batch).items():
                    sums[f"train_{k}"] += v * b
            if reduced is not None:
                t_sync = time.perf_counter()
                reduced()
                synced += time.perf_counter() - t_sync
            if spec.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(raw.parameters(), spec.optim.grad_clip)
            for name, opt in optimizers.items():
                if phase is None or name == phase:
                    opt.step()
            step += 1
        elapsed = time.perf_counter() - t0
        metrics = {k: v / max(episodes, 1) for k, v in sums.items()}
        metrics.update(epoch=epoch, step=step, images_per_s=seen * world_size / max(elapsed, 1e-9),
                       lr=schedules.scheduled_lr(spec.optim, epoch))
        if world_size > 1 and model is raw:  # the share of the epoch this rank waited for the gradients' mean
            metrics["sync_fraction"] = synced / max(elapsed, 1e-9)
        if start_std is not None:
            metrics["location_std"] = raw.config.location_std
        state = None
        if rank == 0:
            metrics.update(evaluate(raw, val, spec, device))
            metrics["elapsed_s"] = elapsed_before + time.time() - clock
            files = RunLayout.of(spec, trial)  # where this run's (or trial's) metrics and records go
            if probe is not None and len(probe):
                table = attention_record(raw, probe, spec, device, epoch, trial)
                record_files.write_record(files, table, epoch)
            history = storage.read_json(files.metrics, [])
            history = [h for h in history if h["epoch"] < epoch] + [metrics]
            storage.write_json(files.metrics, history)
            state = {
                "model": raw.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "epoch": epoch, "step": step, "spec": spec.to_dict(), "metrics": metrics,
                "model_config": dataclasses.asdict(raw.config), "commit": commit,
            }
        report(metrics, state)
    return metrics


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: `config = {"spec": JobSpec dict, "trial": str}`."""
    import ray.train
    import ray.train.torch

    spec = JobSpec.from_dict(config["spec"])
    trial = config.get("trial", "")
    ctx = ray.train.get_context()
    # Ray Train's local mode (num_workers 0: the loop runs in the driver) neither keeps the checkpoints it
    # is given nor hands one back after a restart: the loop keeps them in the Train run directory itself.
    local = spec.scaling.num_workers == 0
    train_run = RunLayout.of(spec, trial).train_run
    resume = None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = torch.load(os.path.join(d, CHECKPOINT_STATE), map_location="cpu", weights_only=False)
    elif local and (newest := latest_checkpoint(train_run)):
        resume = checkpoints.load_state(storage.join(newest, CHECKPOINT_STATE))
    device = ray.train.torch.get_device()
    world = ctx.get_world_size()
    pg = ray.util.get_current_placement_group()
    if trial and pg is not None and ctx.get_world_rank() == 0:
        # What the search frees when this trial ends, should Ray Train's own cleanup not (jobs/run/tune.py).
        storage.write_json(RunLayout.of(spec, trial).placement_group, {"id": pg.id.hex()})

    def wrap(model: nn.Module) -> nn.Module:
        if world <= 1:
            return model
        if device.type == "cpu":
            # On CPU (gloo) DDP's per-bucket all-reduces from autograd hooks overlap with nothing (every
            # core computes) and cost more than one flat all-reduce after backward, which the loop does
            # for a model left unwrapped: 2 workers on 2 cores, bench/ray_overhead.py, README.
            return broadcast_weights(model)
        # Alternating phases leave one group without gradient in some steps: DDP must tolerate that.
        unused = bool(model.phases())
        return ray.train.torch.prepare_model(
            model, move_to_device=False, parallel_strategy_kwargs={"find_unused_parameters": unused})

    def report(metrics: dict[str, Any], state: dict | None) -> None:
        if state is None:
            ray.train.report(metrics)
            return
        if local:
            c = spec.checkpoint
            kept = checkpoints.save_checkpoint(train_run, state, keep=c.keep, score=c.score, mode=c.mode)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint(kept))
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, CHECKPOINT_STATE))
            checkpoints.write_score(d, state, spec.checkpoint.score)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))

    fit(spec, report, rank=ctx.get_world_rank(), world_size=world, device=device, wrap=wrap,
        resume=resume, trial=trial)
