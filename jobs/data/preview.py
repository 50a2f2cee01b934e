"""A PNG grid of samples with their boxes and labels drawn on, to see what a dataset really holds."""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import numpy as np

from .samples import SampleSet


def caption(samples: SampleSet, i: int) -> str:
    """The label of sample i as text: its class name, the sequence for sequence data, and the coarse
    hierarchy levels before the class."""
    name = samples.class_names[samples.labels[i]]
    if samples.sequences is not None:
        digits = [str(v) for v in samples.sequences[i] if v >= 0]
        name = f"{name} [{' '.join(digits)}]"
    if samples.hierarchy is not None and samples.hierarchy_names is not None:
        coarse = [
            samples.hierarchy_names[v][samples.hierarchy[i, v]] for v in range(samples.hierarchy.shape[1] - 1)
        ]
        name = "/".join([*coarse, name])
    return name


def draw_grid(samples: SampleSet, out: str | os.PathLike, n: int = 16, title: str | None = None) -> Path:
    """Draw the first n samples in a square-ish grid, each with its boxes (red) and caption; write a PNG.

    Box edges are drawn on pixel boundaries: a box x0..x1 covers pixel columns x0 .. x1-1, whose outer
    edges sit at x0 - 0.5 and x1 - 0.5 in imshow's coordinates.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = min(n, len(samples))
    if n < 1:
        raise ValueError("show: the split has no samples to draw")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        image = samples.images[k]
        if image.shape[2] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        for x0, y0, x1, y1 in samples.boxes[k]:
            if np.isnan(x0):
                continue
            ax.add_patch(
                Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="red", linewidth=1)
            )
        # Hierarchy captions of real taxonomies run long: wrap them rather than let neighbours overlap.
        ax.set_title(textwrap.fill(caption(samples, k).replace("/", "/ "), 32), fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
