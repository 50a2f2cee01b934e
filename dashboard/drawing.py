"""Where a model looked, drawn on its probe image: pure functions from an attention record to PIL images.

A record is one row of jobs/run/records.py's table (as `FoveateClient.attention(...).to_pylist()` returns it):
image bytes H x W x C, label, prediction, kind "glimpse" | "scale" | "granularity", boxes flattened
(T, K, 4) as x0, y0, x1, y1 in image pixels, gt_boxes flattened (M, 4), step_probs / step_predictions (T)
where the family has them. One routine serves every family because every box is in image pixels:

    glimpse      T steps (RAM/DRAM glimpses), K retina patches per step (nested, growing by scale_factor)
    scale        T RA-CNN scales, K = 1: the region each scale looks at (scale 1 = the whole image)
    granularity  T MG-CNN granularities (coarse -> fine), K = 1: the region each one attends to

Letters: T steps, K patches, M ground-truth boxes. Nothing here imports Streamlit, gRPC or torch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Distinct, colour-blind-safe colours (Okabe-Ito) for steps / scales / levels, in order; its bluish green
# last, as the ground truth is green.
PALETTE = [(230, 159, 0), (86, 180, 233), (204, 121, 167), (240, 228, 66), (213, 94, 0), (0, 114, 178),
           (255, 255, 255), (0, 158, 115)]
GT_COLOUR = (0, 230, 64)
# Probe images are small (28-128 px): drawn at least this large so numbers and lines stay legible.
MIN_SIDE = 256
STEP_NAMES = {"glimpse": "glimpse", "scale": "scale", "granularity": "level"}


@dataclass
class Record:
    """One probe image and where the model looked in it."""

    image: np.ndarray  # (H, W, C) uint8
    label: int
    prediction: int
    kind: str
    boxes: np.ndarray  # (T, K, 4) x0, y0, x1, y1 in image pixels
    gt_boxes: np.ndarray  # (M, 4); M = 0 without a ground truth
    step_probs: np.ndarray | None = None  # (T,) probability of the true class per step
    step_predictions: np.ndarray | None = None  # (T,) predicted class per step
    label_sequence: list[int] = field(default_factory=list)
    predicted_sequence: list[int] = field(default_factory=list)
    sample_id: int = 0
    epoch: int = 0
    trial: str = ""
    # A sampling family's deterministic mean path (first glimpse at the centre, then the policy means),
    # beside the sampled one in `boxes`: see `mean_path`.
    mean_boxes: np.ndarray | None = None  # (T, K, 4)
    mean_prediction: int | None = None
    mean_predicted_sequence: list[int] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.boxes.shape[0]

    @property
    def correct(self) -> bool:
        if self.label_sequence:
            return self.predicted_sequence == self.label_sequence
        return self.prediction == self.label


def record_from_row(row: dict[str, Any]) -> Record:
    """A Record from one row of the attention table (jobs/run/records.py's columns)."""
    h, w, c = int(row["height"]), int(row["width"]), int(row["channels"])
    image = np.frombuffer(row["image"], dtype=np.uint8).reshape(h, w, c)
    t, k = int(row["steps"]), int(row["patches"])
    boxes = np.asarray(row["boxes"], dtype=np.float32).reshape(t, k, 4)  # (T, K, 4)
    gt = np.asarray(row.get("gt_boxes") or [], dtype=np.float32).reshape(-1, 4)  # (M, 4)
    probs = row.get("step_probs") or None
    preds = row.get("step_predictions") or None
    return Record(
        image=image, label=int(row["label"]), prediction=int(row["prediction"]), kind=str(row["kind"]),
        boxes=boxes, gt_boxes=gt,
        step_probs=np.asarray(probs, dtype=np.float32) if probs else None,
        step_predictions=np.asarray(preds, dtype=np.int64) if preds else None,
        label_sequence=list(row.get("label_sequence") or []),
        predicted_sequence=list(row.get("predicted_sequence") or []),
        sample_id=int(row.get("sample_id", 0)), epoch=int(row.get("epoch", 0)), trial=str(row.get("trial") or ""),
        mean_boxes=np.asarray(row["mean_boxes"], dtype=np.float32).reshape(t, k, 4) if row.get("mean_boxes") else None,
        mean_prediction=None if row.get("mean_prediction") is None else int(row["mean_prediction"]),
        mean_predicted_sequence=list(row.get("mean_predicted_sequence") or []))


def mean_path(rec: Record) -> Record:
    """The record as its mean path drew it: the mean path's boxes and prediction in place of the sampled
    path's; the record itself where it has no mean path (a deterministic family, or an older record)."""
    if rec.mean_boxes is None or rec.mean_prediction is None:
        return rec
    return replace(rec, boxes=rec.mean_boxes, prediction=rec.mean_prediction,
                   predicted_sequence=rec.mean_predicted_sequence, step_probs=None, step_predictions=None,
                   mean_boxes=None, mean_prediction=None, mean_predicted_sequence=[])


# ----------------------------------------------------------------------------------------- scores


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (..., 4) and b (..., 4), broadcast; 0 where the union is empty."""
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def step_iou(rec: Record) -> np.ndarray:
    """(T,) for each step the best IoU of any of its patches with any ground-truth box; NaN without one."""
    if not len(rec.gt_boxes):
        return np.full(rec.steps, np.nan)
    iou = box_iou(rec.boxes[:, :, None, :], rec.gt_boxes[None, None, :, :])  # (T, K, M)
    return iou.max(axis=(1, 2))


def attention_score(rec: Record) -> float:
    """The record's attention IoU: step_iou averaged over steps (jobs/run/records.py's attention_iou)."""
    s = step_iou(rec)
    return float(np.mean(s)) if len(s) and not np.isnan(s).any() else float("nan")


def caption(rec: Record) -> str:
    """'#3 · 7 -> 7 ✓ · IoU 0.41' (sequences as digits)."""
    if rec.label_sequence:
        truth, guess = "".join(map(str, rec.label_sequence)), "".join(map(str, rec.predicted_sequence)) or "-"
    else:
        truth, guess = str(rec.label), str(rec.prediction)
    score = attention_score(rec)
    iou = "" if np.isnan(score) else f" · IoU {score:.2f}"
    return f"#{rec.sample_id} · {truth} → {guess} {'✓' if rec.correct else '✗'}{iou}"


def patch_iou(rec: Record, patch: int) -> np.ndarray:
    """(T,) for each step the IoU of its `patch`-th box (0: the finest) with the nearest ground-truth box;
    NaN without one."""
    if not len(rec.gt_boxes):
        return np.full(rec.steps, np.nan)
    return box_iou(rec.boxes[:, patch, None, :], rec.gt_boxes[None, :, :]).max(axis=1)  # (T, M) -> (T,)


def step_table(rec: Record, patches: tuple[int, ...] = (0,)) -> list[dict[str, Any]]:
    """One row per step: the boxes of the given `patches` (retina scales; 0 the finest), each beside its own
    IoU with the truth, and the per-step prediction and probability where the family has them."""
    multi = len(patches) > 1 and rec.kind == "glimpse"
    ious = {p: patch_iou(rec, p) for p in patches}
    rows = []
    for t in range(rec.steps):
        row: dict[str, Any] = {STEP_NAMES.get(rec.kind, "step"): t + 1}
        for p in patches:
            x0, y0, x1, y1 = (round(float(v), 1) for v in rec.boxes[t, p])
            suffix = f" (scale {p + 1})" if multi else ""
            row[f"box{suffix}"] = f"({x0}, {y0}) – ({x1}, {y1})"
            row[f"IoU of this box{suffix}"] = None if np.isnan(ious[p][t]) else round(float(ious[p][t]), 3)
        if rec.step_predictions is not None:
            row["prediction"] = int(rec.step_predictions[t])
        if rec.step_probs is not None:
            row["p(true class)"] = round(float(rec.step_probs[t]), 3)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------- drawing


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def _base(rec: Record, min_side: int) -> tuple[Image.Image, float]:
    """The probe image as RGB, scaled up (nearest neighbour: pixels stay pixels), and the scale used."""
    img = rec.image
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    pil = Image.fromarray(img[:, :, :3], "RGB")
    h, w = rec.image.shape[:2]
    s = max(1.0, min_side / max(h, w))
    if s > 1:
        pil = pil.resize((round(w * s), round(h * s)), Image.Resampling.NEAREST)
    return pil, s


def _box(draw: ImageDraw.ImageDraw, box: np.ndarray, s: float, colour: tuple, width: int) -> None:
    x0, y0, x1, y1 = (float(v) * s for v in box)
    draw.rectangle([x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)], outline=colour, width=width)


def _label_box(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int) -> tuple[float, ...]:
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=_font(size), anchor="mm")
    return x0 - 2, y0 - 1, x1 + 2, y1 + 1


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, colour: tuple, size: int) -> None:
    draw.rectangle(_label_box(draw, xy, text, size), fill=(0, 0, 0))
    draw.text(xy, text, fill=colour, font=_font(size), anchor="mm")


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], texts: list[str],
                 size: int) -> list[tuple[float, float]]:
    """Where to write each text near its point so that no two overlap: the point itself, else the nearest
    free spot of a ring around it (glimpses close together would otherwise print their numbers on top of
    each other); the point when the rings are full."""
    placed: list[tuple[float, ...]] = []
    out = []
    for (x, y), text in zip(points, texts):
        w = draw.textlength(text, font=_font(size)) + 6
        h = size + 4
        spots = [(x, y)] + [(x + dx * w * r, y + dy * h * r) for r in (1, 2, 3)
                            for dx, dy in ((0, -1), (1, 0), (0, 1), (-1, 0), (1, -1), (1, 1), (-1, 1), (-1, -1))]
        xy = next((p for p in spots if not any(_overlap(_label_box(draw, p, text, size), b) for b in placed)), (x, y))
        placed.append(_label_box(draw, xy, text, size))
        out.append(xy)
    return out


def draw_record(rec: Record, upto: int | None = None, *, min_side: int = MIN_SIDE, show_truth: bool = True,
                patches: tuple[int, ...] | None = None) -> Image.Image:
    """The probe image with the ground-truth box and the attention of steps 1..`upto` (all by default).

    glimpse: each step's retina patches in that step's colour (`patches`: which scales, 0 the finest;
    None: all K, nested squares), the path through the glimpse centres, and the step's number near its
    centre (moved aside where numbers would overlap); with `upto` given, that step is drawn thicker.
    scale / granularity: each scale's (level's) region in its colour, labelled s1, s2... (L1, L2...).
    """
    img, s = _base(rec, min_side)
    draw = ImageDraw.Draw(img)
    t_end = rec.steps if upto is None else max(0, min(upto, rec.steps))
    size = max(11, img.width // 22)
    if show_truth:
        for g in rec.gt_boxes:
            _box(draw, g, s, GT_COLOUR, 2)
    if rec.kind == "glimpse":
        centres = (rec.boxes[:, 0, :2] + rec.boxes[:, 0, 2:]) / 2 * s  # (T, 2) patch 0 is the finest
        if t_end > 1:
            draw.line([tuple(c) for c in centres[:t_end]], fill=(255, 255, 255), width=2)
        drawn = range(rec.boxes.shape[1]) if patches is None else patches
        for t in range(t_end):
            colour = PALETTE[t % len(PALETTE)]
            current = t == t_end - 1 and upto is not None
            for k in drawn:
                _box(draw, rec.boxes[t, k], s, colour, 3 if current else 1 + (k == 0))
        texts = [str(t + 1) for t in range(t_end)]
        spots = place_labels(draw, [tuple(c) for c in centres[:t_end]], texts, size)
        for t, (xy, text) in enumerate(zip(spots, texts)):
            _label(draw, xy, text, PALETTE[t % len(PALETTE)], size)
    else:
        prefix = "s" if rec.kind == "scale" else "L"
        for t in range(t_end):
            colour = PALETTE[t % len(PALETTE)]
            _box(draw, rec.boxes[t, 0], s, colour, 3 if t == t_end - 1 else 2)
            x0, y0 = rec.boxes[t, 0, :2] * s
            _label(draw, (x0 + size, y0 + size * 0.8 + t * size * 1.2), f"{prefix}{t + 1}", colour, size)
    return img


def crops(rec: Record, *, side: int = 128, patch: int = 0) -> list[Image.Image]:
    """Each step's region (its `patch`-th patch) cut out of the original image and zoomed to side x side:
    RA-CNN's zoomed inputs per scale, MG-CNN's regions per level, RAM's glimpses at one retina scale.
    Parts of a box outside the image are black, as the models' crops see them."""
    h, w, c = rec.image.shape
    src = rec.image if c >= 3 else np.repeat(rec.image, 3, axis=2)
    pil = Image.fromarray(src[:, :, :3], "RGB")
    out = []
    for t in range(rec.steps):
        x0, y0, x1, y1 = (float(v) for v in rec.boxes[t, min(patch, rec.boxes.shape[1] - 1)])
        if x1 - x0 < 1 or y1 - y0 < 1:
            out.append(Image.new("RGB", (side, side)))
            continue
        # PIL's crop pads outside the image with black; bilinear keeps a zoomed digit recognisable.
        out.append(pil.crop((round(x0), round(y0), round(x1), round(y1))).resize((side, side), Image.Resampling.BILINEAR))
    return out


def replay_frames(rec: Record, *, min_side: int = MIN_SIDE, patches: tuple[int, ...] | None = None) -> list[Image.Image]:
    """One frame per step: steps 1..t drawn, step t highlighted (the step-by-step replay)."""
    return [draw_record(rec, upto=t, min_side=min_side, patches=patches) for t in range(1, rec.steps + 1)]


def replay_gif(rec: Record, *, ms_per_step: int = 700, min_side: int = MIN_SIDE,
               patches: tuple[int, ...] | None = None) -> bytes:
    """The replay as an animated GIF that loops: a browser plays it without reruns of the page."""
    frames = [draw_record(rec, upto=0, min_side=min_side)] + replay_frames(rec, min_side=min_side, patches=patches)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=[ms_per_step] * len(frames[:-1]) + [ms_per_step * 3], loop=0)
    return buf.getvalue()


def legend(rec: Record) -> str:
    """What the colours mean, in one line of Markdown."""
    name = STEP_NAMES.get(rec.kind, "step")
    return (f"green: ground truth · orange, blue, pink, …: {name} 1, 2, 3, …"
            + (" · numbers: glimpse order" if rec.kind == "glimpse" else ""))
