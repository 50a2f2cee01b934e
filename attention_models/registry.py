"""Named model variants, registered once as data (timm's `_registry.py`), without PyTorch.

    list_models()                                      # every registered name, sorted
    model_config("ram-cluttered60", num_glimpses=8)    # its validated config, with overrides
    model_family("ram-cluttered60")                    # "ram"
    model_training("ram-cluttered60").lr_groups        # {"location": ("location",), ...}

A variant is a family, a config class and the config fields it sets (each family's `*_config.py`);
overrides replace fields and go through the config's own validation, so a bad override fails with
`model.FIELD: rule, got VALUE`. Nothing here imports torch: the job service validates specs with it
(configs.py says why). Building a model is `factory.create_model` (torch), which reads this registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from attention_models import dram_config, mgcnn_config, racnn_config, ram_config
from attention_models.configs import Training, Variant, field_error


def _collect(*variant_lists: tuple[Variant, ...]) -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    for v in (v for variants in variant_lists for v in variants):
        if v.name in out:
            raise ValueError(f"model variant {v.name!r} is registered twice")
        unknown = sorted(set(v.defaults) - {f.name for f in dataclasses.fields(v.config_cls)})
        if unknown:
            raise ValueError(f"variant {v.name!r}: unknown config fields {unknown} for {v.config_cls.__name__}")
        out[v.name] = v
    return out


_TRAINING = {m.FAMILY: m.TRAINING for m in (ram_config, dram_config, racnn_config, mgcnn_config)}
_REGISTRY = _collect(ram_config.VARIANTS, dram_config.VARIANTS, racnn_config.VARIANTS, mgcnn_config.VARIANTS)


def list_models(family: str | None = None) -> list[str]:
    """Every registered variant name, sorted; only one family's when `family` is given."""
    return sorted(n for n, v in _REGISTRY.items() if family is None or v.family == family)


def model_family(name: str) -> str:
    """The family (`ram`, `dram`, `racnn`, `mgcnn`) of a registered variant."""
    return _variant(name).family


def family_training(family: str) -> Training:
    """What family `family` offers the training loop (sampled paths, learning-rate groups): configs.Training."""
    return _TRAINING[family]


def model_training(name: str) -> Training:
    """`family_training` of the family of variant `name`."""
    return family_training(model_family(name))


def model_config(name: str, **overrides: Any) -> Any:
    """The validated config of variant `name` with `overrides` applied."""
    v = _variant(name)
    known = sorted(f.name for f in dataclasses.fields(v.config_cls))
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise field_error(f"model.{unknown[0]}",
                          f"not a field of {name!r} ({v.config_cls.__name__}: {', '.join(known)})",
                          overrides[unknown[0]])  # fmt: skip
    return v.config_cls(**{**v.defaults, **overrides})


def config_family(config: Any) -> str:
    """The family whose config class `config` is an instance of (what a checkpoint's config rebuilds)."""
    for v in _REGISTRY.values():
        if isinstance(config, v.config_cls):
            return v.family
    raise ValueError(f"config: no registered model family takes a {type(config).__name__}")


def _variant(name: str) -> Variant:
    # An unknown name raises and lists the known ones (fvcore's Registry).
    if name not in _REGISTRY:
        raise field_error("model.name", f"must be a registered model ({', '.join(sorted(_REGISTRY))})", name)
    return _REGISTRY[name]
