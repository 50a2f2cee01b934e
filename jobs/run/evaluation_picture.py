"""The picture `foveate evaluate --png` writes: test images in a 4x4 grid with where the model looked
(RAM/DRAM: the mean path's finest glimpse boxes, numbered, joined by a line; RA-CNN/MG-CNN: each
scale's or granularity's box), titled true label -> prediction."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from attention_models import AttentionModel  # noqa: E402


def _label(values: Any) -> str:
    values = values.tolist() if hasattr(values, "tolist") else values
    if isinstance(values, list):
        return "".join(str(v) for v in values if v >= 0) or "-"
    return str(values)


@torch.no_grad()
def draw_attention(model: AttentionModel, probe: Any, out: str, title: str = "") -> None:
    """Draw `probe` (a SampleSet of up to 16 images) with `model`'s attention into PNG file `out`."""
    batch = probe.to_batch(torch.arange(len(probe)).numpy())
    output = model.evaluate(batch["image"], samples=0) if model.samples_paths else model.evaluate(batch["image"])
    pred = model.predict(output)
    truth = batch["sequence"] if pred.dim() == 2 and "sequence" in batch else batch["label"]
    boxes = output.attention.boxes[:, :, 0].float()  # (B, T, 4): the finest patch of each step
    cols = 4
    rows = max(1, -(-len(probe) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.8), squeeze=False)
    colours = plt.get_cmap("autumn")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(probe):
            continue
        image = batch["image"][i].permute(1, 2, 0).numpy()
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        steps = boxes.shape[1]
        for t in range(steps):
            x0, y0, x1, y1 = boxes[i, t].tolist()
            colour = colours(t / max(steps - 1, 1))
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.2, ec=colour))
            ax.text(x0 + 1, y0 + 1, str(t + 1), color=colour, fontsize=6, va="top")
        if model.samples_paths:
            centres = output.attention.centres[i].numpy()
            ax.plot(centres[:, 0], centres[:, 1], "-", color="cyan", lw=0.8, alpha=0.8)
        right = _label(pred[i]) == _label(truth[i])
        mark = "\u2713" if right else "\u2717"
        ax.set_title(f"{_label(truth[i])} \u2192 {_label(pred[i])} {mark}", fontsize=8,
                     color="black" if right else "red")
    kind = "mean glimpse path (finest patch), numbered" if model.samples_paths else f"boxes per {output.attention.kind}"
    fig.suptitle(f"{title}: {kind}; true \u2192 predicted", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
