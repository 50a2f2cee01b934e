"""Model configs and the variant registry without PyTorch (what the job service validates specs with), the one
form of a config error, and the model contract of base.AttentionModel that the training loop relies on."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from attention_models.registry import list_models, model_config, model_family

ROOT = Path(__file__).resolve().parents[1]
ERROR_FORM = re.compile(r"model\.[a-z_]+(\[\d+\])?: .+, got .+")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_configs_and_registry_import_no_torch():
    """Every variant's config builds and validates, and its fields are listed, in a process without torch."""
    out = _run(
        "import dataclasses, sys\n"
        "from attention_models.registry import list_models, model_config, model_family\n"
        "configs = [model_config(n) for n in list_models()]\n"
        "fields = [f.name for c in configs for f in dataclasses.fields(c)]\n"
        "families = sorted({model_family(n) for n in list_models()})\n"
        "try:\n"
        "    model_config('racnn-zoom', backbone='vgg91')\n"
        "except ValueError as exc:\n"
        "    print(str(exc)[:15])\n"
        "from attention_models import model_config as lazy\n"  # the package's own export stays torch-free
        "assert lazy is model_config\n"
        "bad = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "print(len(configs), families, 'num_glimpses' in fields, bad)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [
        "model.backbone:",
        f"{len(list_models())} ['dram', 'mgcnn', 'racnn', 'ram'] True []",
    ]


def test_create_model_still_brings_in_the_model():
    out = _run(
        "import sys\nfrom attention_models import create_model\n"
        "print(type(create_model('ram-mnist28')).__name__, 'torch' in sys.modules)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "RAM True"


def test_the_package_exports_lazily_and_names_what_it_lacks():
    import attention_models

    assert {"create_model", "model_config", "AttentionModel", "Attention"} <= set(dir(attention_models))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        attention_models.nope  # noqa: B018


def test_backbone_names_match_the_installed_torchvision():
    """configs.py writes the names out (a config is checked without torchvision): they must be torchvision's."""
    import torchvision

    from attention_models.configs import TORCHVISION_BACKBONES

    names = torchvision.models.list_models(module=torchvision.models)
    convolutional = {n for n in names if not n.startswith(("vit_", "swin", "maxvit"))}
    assert set(TORCHVISION_BACKBONES) == convolutional
    assert len(TORCHVISION_BACKBONES) == len(set(TORCHVISION_BACKBONES))


# One bad override per family (and per kind of rule): every message is `model.FIELD: rule, got VALUE`.
BAD = [
    ("ram-mnist28", {"num_glimpses": 0}),
    ("ram-mnist28", {"core": "gru"}),
    ("dram-pairs", {"context_size": 1000}),
    ("dram-pairs", {"conv_channels": (4,)}),
    ("racnn-zoom", {"apn_pool": 0}),
    ("racnn-zoom", {"backbone": "vgg91"}),
    ("racnn-zoom", {"backbone": "vgg19", "weights_path": "imagenet"}),
    ("mgcnn-zoom", {"backbone": "resnet18", "in_channels": 2}),
    ("mgcnn-zoom", {"min_region": 2.0}),
    ("mgcnn-zoom", {"fine_to_coarse": ((0, 1),)}),
    ("ram-mnist28", {"wings": 2}),
]


@pytest.mark.parametrize(("name", "overrides"), BAD)
def test_every_config_error_has_the_one_form(name, overrides):
    with pytest.raises(ValueError) as err:
        model_config(name, **overrides)
    assert ERROR_FORM.fullmatch(str(err.value)), str(err.value)
    assert str(err.value).startswith(f"model.{list(overrides)[-1]}")


def test_unknown_names_and_fields_list_the_known_ones():
    with pytest.raises(ValueError, match=r"^model\.name: must be a registered model \(dram-multidigit, .*ram-mnist28.*\), "
                                         r"got 'ram-nope'$"):
        model_config("ram-nope")
    with pytest.raises(ValueError, match=r"^model\.wings: not a field of 'ram-mnist28' \(RAMConfig: .*num_glimpses.*\), "
                                         r"got 2$"):
        model_config("ram-mnist28", wings=2)


def test_registry_families_are_the_factorys():
    from attention_models.factory import MODELS

    assert {model_family(n) for n in list_models()} == set(MODELS)
    for family, cls in MODELS.items():
        assert cls.family == family and list_models(family)


# ------------------------------------------------------------------------------------------ the model contract

# A small variant per family, cheap on a CPU.
SMALL = {
    "ram-mnist28": {"num_glimpses": 2},
    "dram-pairs": {"image_size": 32, "context_size": 16, "hidden": 16, "classifier_hidden": 8,
                   "conv_channels": (4, 4, 4)},
    "racnn-zoom": {"image_size": 32, "scale_sizes": (24, 16), "backbone_width": 4, "apn_hidden": 8, "apn_pool": 2},
    "mgcnn-zoom": {"image_size": 32, "input_size": 16, "region_size": 16, "backbone_width": 4},
}


@pytest.fixture(scope="module", params=sorted(SMALL))
def built(request):
    import torch

    from attention_models import create_model

    torch.manual_seed(0)
    model = create_model(request.param, **SMALL[request.param])
    c = model.config
    images = torch.rand(2, c.in_channels, c.image_size, c.image_size)
    batch = {"image": images, "label": torch.tensor([1, 2]), "boxes": torch.full((2, 1, 4), float("nan"))}
    return model, model(images), batch


def test_every_family_keeps_the_loops_contract(built):
    """losses takes a phase (None: every term; an unknown one is refused); families without an attention
    initialisation say so and return no terms; only RA-CNN has per-scale logits for the records."""
    model, out, batch = built
    family = model.family
    assert set(model.losses(out, batch, phase=None)) == set(model.losses(out, batch))
    for phase in model.phases():
        assert set(model.losses(out, batch, phase=phase)) <= set(model.losses(out, batch))
    with pytest.raises(ValueError, match=r"^phase: must be one of .*None, got 'both'$"):
        model.losses(out, batch, phase="both")
    assert model.has_attention_init() == (family == "racnn")
    init = model.attention_init_losses(out, batch)
    assert (set(init) == {"apn_init"}) if family == "racnn" else init == {}
    logits = model.step_logits(out)
    if family == "racnn":
        assert logits.shape == (2, model.config.num_scales, model.config.num_classes)
    else:
        assert logits is None
    assert set(model.parameter_groups()) == (set(model.phases()) if model.phases() else {"all"})


def test_a_one_scale_racnn_has_no_attention_init():
    from attention_models import create_model

    model = create_model("racnn-zoom", num_scales=1, scale_sizes=(24,), backbone_width=4, image_size=32)
    assert not model.has_attention_init() and model.phases() == ["classifiers"]


def test_configs_are_frozen_dataclasses_for_every_variant():
    for name in list_models():
        config = model_config(name)
        assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen, name
