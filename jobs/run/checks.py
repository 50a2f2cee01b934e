"""The one validation of a job spec beyond its own fields: the model's config, the search space, the
dataset and the cluster's resources. The CLI, the job service at submission and the driver all call
`check_spec`, so a spec that passes here fails nowhere later for a reason that could be seen now.

Every failure is a `SpecError` naming the field: `data.hflip: ... holds digit sequences ...`.
"""

from __future__ import annotations

from typing import Any

from attention_models.pretrained_files import pretrained_manifest
from jobs.api import paths
from jobs.api.spec import PRETRAINED, JobSpec, SpecError


def check_model(spec: JobSpec) -> None:
    """The variant exists and its config accepts the overrides; a tune job's space fits the model."""
    from attention_models.registry import model_config  # torch-free: the service validates with it

    try:
        model_config(spec.model.name, **spec.model.overrides)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        raise SpecError(msg if msg.startswith("model") else f"model.{msg}") from None
    check_training(spec)
    if spec.model.init_from == PRETRAINED:
        try:
            pretrained_manifest(spec.model.name)
        except ValueError as exc:
            raise SpecError(f"model.init_from: {str(exc).split(': ', 1)[1]}") from None
    if spec.kind == "tune":
        from jobs.run.search import search_space

        search_space(spec)


def check_training(spec: JobSpec) -> None:
    """The optimisation fields that depend on the model's family: rollouts and a location-std schedule
    need a family that samples glimpse paths, and each learning-rate scale a group the family has."""
    from attention_models.registry import model_family, model_training

    training, family, o = model_training(spec.model.name), model_family(spec.model.name), spec.optim
    if not training.samples_paths:
        if o.train_samples > 1:
            raise SpecError(f"optim.train_samples: {family} has no glimpse paths to sample (one forward pass "
                            f"per image); must be 1, got {o.train_samples}")
        if o.location_std_end:
            raise SpecError(f"optim.location_std_end: {family} has no location policy; must be 0, "
                            f"got {o.location_std_end}")
    unknown = sorted(set(o.lr_scales) - set(training.group_names()))
    if unknown:
        raise SpecError(f"optim.lr_scales: {family} has no parameter group {unknown[0]!r}; "
                        f"its groups: {', '.join(training.group_names())}")


def check_data(spec: JobSpec) -> dict[str, Any]:
    """The dataset exists, has the named splits, and allows the augmentation asked for; returns its
    manifest. Run before Ray starts a worker (there a bad path would fail on every worker, be retried
    by the failure policy, and end in a traceback)."""
    from jobs.data.manifest import read_manifest

    try:
        manifest = read_manifest(spec.data.path)
    except FileNotFoundError:
        raise SpecError(f"data.path: no dataset at {spec.data.path} (no manifest.json); "
                        "build one with `foveate data build`") from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"data.path: cannot read {spec.data.path}: {str(exc).splitlines()[0]}") from None
    for field in ("train_split", "val_split"):
        split = getattr(spec.data, field)
        if split not in manifest["shards"]:
            raise SpecError(f"data.{field}: no split {split!r} in {spec.data.path} "
                            f"(has {', '.join(manifest['shards'])})")
    if spec.data.hflip and manifest.get("sequence_length"):
        raise SpecError(f"data.hflip: {spec.data.path} holds digit sequences read left to right; "
                        "a mirror would reverse them (use data.max_shift only)")
    if spec.data.min_crop < 1 and manifest.get("sequence_length"):
        raise SpecError(f"data.min_crop: {spec.data.path} holds digit sequences; a window could cut off a digit "
                        "that the labels still read (use data.max_shift only)")
    return manifest


def check_init(spec: JobSpec) -> None:
    """`model.init_from`, when it names a run or checkpoint, is one that exists (seen from the caller)."""
    init = spec.model.init_from
    if not init or init == PRETRAINED:
        return
    from jobs.run import storage
    from jobs.run.layout import CHECKPOINT_STATE, RESULT, latest_checkpoint

    found = (storage.exists(init) or storage.exists(storage.join(init, CHECKPOINT_STATE))
             or storage.exists(storage.join(init, RESULT)) or latest_checkpoint(init) is not None)
    if not found:
        raise SpecError(f"model.init_from: no run, checkpoint or {CHECKPOINT_STATE} at {init} "
                        f"(or 'pretrained' for the weights shipped for {spec.model.name})")


def check_resources(spec: JobSpec, res: Any = None, free: bool = False) -> None:
    """Refuse a scaling request the cluster can never place (Ray would wait for it for ever).

    `res` (a cluster.ClusterResources) defaults to the connected cluster's; the job service passes
    what the Ray dashboard reports, since it does not join the cluster as a driver.
    """
    if res is None:
        from cluster import resources

        res = resources()
    need_cpu = max(spec.scaling.num_workers, 1) * spec.scaling.cpus_per_worker
    have_cpu = res.free_cpus if free else res.cpus
    if need_cpu > have_cpu:
        raise SpecError(
            f"scaling: {spec.scaling.num_workers} workers x {spec.scaling.cpus_per_worker} CPUs = {need_cpu:g} "
            f"CPUs, but the cluster has {have_cpu:g}; lower scaling.num_workers or scaling.cpus_per_worker")
    if spec.scaling.placement_strategy == "STRICT_SPREAD" and spec.scaling.num_workers > res.nodes:
        raise SpecError(
            f"scaling.placement_strategy: STRICT_SPREAD places one worker per node: {spec.scaling.num_workers} "
            f"workers need {spec.scaling.num_workers} nodes, but the cluster has {res.nodes}; use SPREAD or fewer workers")
    if spec.scaling.use_gpu and max(spec.scaling.num_workers, 1) > res.gpus:
        raise SpecError(
            f"scaling.use_gpu: {max(spec.scaling.num_workers, 1)} workers need one GPU each, "
            f"but the cluster has {res.gpus:g} GPUs")


def check_spec(spec: JobSpec, *, data: bool = True, resources: Any = None) -> JobSpec:
    """Everything that can be known before the job runs: the model and search space always, the dataset
    when `data` (the caller can see it), the cluster's size when `resources` is given. Returns `spec`."""
    check_model(spec)
    if spec.storage_path:
        paths.check_creatable_dir("storage_path", spec.storage_path)
    if data:
        check_data(spec)
        check_init(spec)
    if resources is not None:
        check_resources(spec, resources)
    return spec
