"""A trained model as a serving graph: tensors in, named tensors out, written as ONNX or TorchScript.

    serving = Serving(model, samples=0)        # the deterministic mean path
    export_onnx(serving, "model.onnx")         # opset 18, dynamic batch
    export_torchscript(serving, "model.pt")    # torch.jit.trace

Inputs: `images` (B, C, H, W) float in [0, 1], the size the model was built for; with `samples` M > 0
(RAM/DRAM) also the paths' randomness, which the caller draws (`Serving.inputs`): `noise` (B, M, T, 2)
standard normal and, for RAM with a random first glimpse, `first_locations` (B, M, 2) uniform in [-1, 1].
Outputs: what the family's `serving_outputs` names (logits, prediction, glimpse_boxes or boxes, ...).

Why the randomness is an input: `torch.normal` and friends export as a random op at best and as a constant
drawn at trace time at worst (every call then walks the same "sampled" path). Taking the noise as an input
keeps the graph a pure function, so M paths from the caller's noise give Foveate's Monte Carlo average
exactly (`model.evaluate(images, M, noise=..., ...)` is the reference the tests hold it to).

ONNX goes through the torch.export-based exporter (`dynamo=True`): it exports `affine_grid`, antialiased
resizing and the retina's `grid_sample`, which the TorchScript-based exporter cannot; GridSample needs
opset >= 16, antialiased Resize >= 18.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from attention_models.base import AttentionModel

OPSET = 18  # ONNX opset: GridSample needs >= 16, Resize with antialias (DRAM's context net) >= 18
# Ops that draw random numbers: none may appear in an exported graph (tests/test_export.py checks).
RANDOM_ONNX_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                             "Multinomial", "Bernoulli"})
RANDOM_TORCH_OPS = frozenset({"aten::normal", "aten::normal_", "aten::uniform", "aten::uniform_", "aten::rand",
                              "aten::randn", "aten::rand_like", "aten::randn_like", "aten::randint",
                              "aten::bernoulli", "aten::bernoulli_", "aten::multinomial", "aten::exponential_"})


class Serving(nn.Module):
    """`model` evaluated as a pure function: forward(images[, noise[, first_locations]]) -> the tuple of
    `output_names`; the noise inputs are those of `model.path_noise(samples)`, in that order.

    samples 0: the mean path (RAM/DRAM follow the policy means, first glimpse at the centre), or the one
    forward pass of a deterministic family. samples M > 0 (RAM/DRAM): M paths per image from the given
    noise, logits the log of the path-averaged probabilities, the attention of each image's first path.
    """

    def __init__(self, model: AttentionModel, samples: int = 0):
        super().__init__()
        self.model = model.eval()
        self.samples = samples
        self.noise_shapes = model.path_noise(samples)  # name -> per-image shape; raises for crop families
        config = model.config
        self.image_shape = (config.in_channels, image_side(config), image_side(config))
        with torch.no_grad():
            outputs = self._outputs(*self.example_inputs(1))
        self.output_names = list(outputs)

    @property
    def input_names(self) -> list[str]:
        return ["images", *self.noise_shapes]

    def inputs(self, images: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """The full input tuple for `images`: the noise drawn here (the way a caller of the exported
        file draws it: standard normal noise, uniform first locations)."""
        B = images.shape[0]
        drawn = []
        for name, shape in self.noise_shapes.items():
            t = torch.empty(B, *shape)
            drawn.append(t.uniform_(-1.0, 1.0, generator=generator) if name == "first_locations"
                         else t.normal_(generator=generator))
        return (images, *drawn)

    def example_inputs(self, batch: int, seed: int = 0) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return self.inputs(torch.rand(batch, *self.image_shape, generator=g), g)

    def _outputs(self, images: Tensor, *noise: Tensor) -> dict[str, Tensor]:
        kwargs = dict(zip(self.noise_shapes, noise))
        output = self.model.evaluate(images, samples=self.samples, **kwargs)
        return self.model.serving_outputs(output)

    # Named arguments, not *noise: torch.export matches dynamic shapes to the signature's names.
    def forward(self, images: Tensor, noise: Tensor | None = None,
                first_locations: Tensor | None = None) -> tuple[Tensor, ...]:
        given = [t for t in (noise, first_locations) if t is not None]
        return tuple(self._outputs(images, *given).values())

    def signature(self) -> dict[str, dict[str, list]]:
        """{"inputs"/"outputs": {name: shape}}, "B" for the batch dimension (what a model card states)."""
        example = self.example_inputs(2)
        with torch.no_grad():
            outs = self(*example)

        def shape(t: Tensor) -> list:
            return ["B", *t.shape[1:]]

        return {"inputs": {n: shape(t) for n, t in zip(self.input_names, example)},
                "outputs": {n: shape(t) for n, t in zip(self.output_names, outs)},
                "dtypes": {n: str(t.dtype).removeprefix("torch.") for n, t in zip(self.output_names, outs)}}


def image_side(config) -> int:
    """The input side a model's config fixes: image_size (RAM/DRAM/MG-CNN), or scale 1's (RA-CNN)."""
    return int(getattr(config, "image_size", None) or config.scale_sizes[0])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The exporters print progress and tracer warnings on every call; a CLI shows its own progress.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_onnx(serving: Serving, path: str, batch: int = 2) -> None:
    """Write `serving` as ONNX (opset OPSET) with a dynamic batch dimension on every input and output."""
    example = serving.example_inputs(batch)
    batch_dim = torch.export.Dim("batch", min=1)
    dynamic = {name: {0: batch_dim} for name in serving.input_names}
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(serving, example, dynamo=True, opset_version=OPSET, dynamic_shapes=dynamic,
                                    input_names=serving.input_names, output_names=serving.output_names,
                                    verbose=False)
        program.save(path)


def export_torchscript(serving: Serving, path: str, batch: int = 2) -> None:
    """Write `serving` traced by torch.jit.trace (loadable by torch.jit.load and libtorch). Traced on one
    batch: tests/test_export.py runs it on other sizes and contents against the eager model."""
    example = serving.example_inputs(batch)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(serving, example, check_trace=False)
    traced.save(path)


def torchscript_ops(module: torch.jit.ScriptModule) -> set[str]:
    """Every op kind in a TorchScript module's graph, nested blocks and called methods included."""
    kinds: set[str] = set()

    def walk(graph) -> None:
        for node in graph.nodes():
            kinds.add(node.kind())
            for block in node.blocks():
                walk(block)

    walk(module.inlined_graph)
    return kinds


def file_size(path: str) -> int:
    return os.path.getsize(path)
