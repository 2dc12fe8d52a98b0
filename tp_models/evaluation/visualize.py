"""Preview images: contact sheets, position overlays and GIFs (numpy + PIL only).

People judge a synthetic dataset (and later a model's mistakes) by looking at it, so these
helpers turn arrays into pictures with no plotting library: fast enough to run inside a
pipeline task, and dependency-light for workers. Small 128 px frames are upscaled with
nearest-neighbour so single pixels stay crisp.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Distinct, bright overlay colours (cycled) for tracks / ground-truth objects.
PALETTE = np.array(
    [
        (255, 255, 255),
        (255, 64, 64),
        (64, 255, 64),
        (80, 160, 255),
        (255, 220, 0),
        (255, 0, 255),
        (0, 255, 255),
        (255, 140, 0),
    ],
    dtype=np.uint8,
)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale of the two spatial axes (..., H, W, C) by an integer factor."""
    if factor <= 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=-3), factor, axis=-2)


def _auto_factor(height: int, width: int, min_size: int) -> int:
    return max(1, -(-min_size // max(1, min(height, width))))


def contact_sheet(
    videos: np.ndarray,
    frames_per_row: int | None = None,
    labels: Sequence[str] | None = None,
    gap: int = 2,
    label_width: int = 90,
) -> np.ndarray:
    """One image showing B videos of T frames: each video on its own row(s), labelled.

    A video wraps onto several rows when ``frames_per_row`` < T. Frames are separated by a
    grey ``gap`` so black backgrounds of neighbours do not merge. ``labels`` (one per video)
    are written in a left column; returns an RGB uint8 image.
    """
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must have shape (B, T, H, W, 3) (got {videos.shape})")
    n_videos, t_total, height, width, _ = videos.shape
    if labels is not None and len(labels) != n_videos:
        raise ValueError(f"labels must have one entry per video ({n_videos}), got {len(labels)}")
    per_row = t_total if frames_per_row is None else max(1, min(int(frames_per_row), t_total))
    rows_per_video = -(-t_total // per_row)
    left = label_width if labels is not None else 0
    sheet_h = n_videos * rows_per_video * (height + gap) + gap
    sheet_w = left + per_row * (width + gap) + gap
    sheet = np.full((sheet_h, sheet_w, 3), 64, np.uint8)
    for b in range(n_videos):
        for t in range(t_total):
            row = b * rows_per_video + t // per_row
            y = gap + row * (height + gap)
            x = left + gap + (t % per_row) * (width + gap)
            sheet[y : y + height, x : x + width] = videos[b, t]
    if labels is not None:
        image = Image.fromarray(sheet)
        draw = ImageDraw.Draw(image)
        for b, text in enumerate(labels):
            y = gap + b * rows_per_video * (height + gap)
            draw.text((4, y + 2), str(text), fill=(255, 255, 255))
        sheet = np.asarray(image).copy()
    return sheet


def draw_positions(
    frames: np.ndarray,
    positions: np.ndarray,
    colors: np.ndarray | Sequence[Sequence[int]] | None = None,
    visible: np.ndarray | None = None,
    trail: int = 4,
    marker_radius: float = 10.0,
    scale: int = 1,
) -> np.ndarray:
    """Overlay M point series on T frames: a ring per position and a trail of recent ones.

    frames (T, H, W, 3) uint8; positions (M, T, 2) float (x = column, y = row, NaN = absent).
    Where ``visible`` (M, T) is given and False, the position is marked with a small cross
    instead of a ring, so missed / hidden frames stand out (ground truth and model errors
    alike). ``scale`` upscales the frames first so markers do not smother 128 px images.
    Returns new frames; the input is not modified.
    """
    frames = np.asarray(frames)
    positions = np.asarray(positions, np.float64)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3) (got {frames.shape})")
    if positions.ndim != 3 or positions.shape[1:] != (frames.shape[0], 2):
        raise ValueError(
            f"positions must have shape (M, {frames.shape[0]}, 2) (got {positions.shape})"
        )
    n_series, t_total = positions.shape[:2]
    if colors is None:
        colors = PALETTE[np.arange(n_series) % len(PALETTE)]
    colors = np.asarray(colors, np.uint8).reshape(n_series, 3)
    if visible is None:
        visible = np.ones((n_series, t_total), bool)
    out = upscale(frames, scale).copy()
    # pixel centres sit at integer coordinates; map them to the centre of the upscaled block
    pts = (positions + 0.5) * scale - 0.5
    rad = marker_radius * scale
    for t in range(t_total):
        image = Image.fromarray(out[t])
        draw = ImageDraw.Draw(image)
        for m in range(n_series):
            fill = tuple(int(c) for c in colors[m])
            past = pts[m, max(0, t - trail) : t + 1]
            past = past[np.isfinite(past).all(axis=1)]
            if len(past) >= 2:
                draw.line([tuple(p) for p in past], fill=fill, width=1)
            x, y = pts[m, t]
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            if visible[m, t]:
                draw.ellipse((x - rad, y - rad, x + rad, y + rad), outline=fill)
            else:
                c = rad / 2.0
                draw.line((x - c, y - c, x + c, y + c), fill=fill)
                draw.line((x - c, y + c, x + c, y - c), fill=fill)
        out[t] = np.asarray(image)
    return out


def save_png(image: np.ndarray, path: str | Path, min_size: int = 256) -> Path:
    """Write an RGB uint8 image as PNG, upscaled (nearest) until its short side >= min_size."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 (got {image.shape} {image.dtype})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    factor = _auto_factor(image.shape[0], image.shape[1], min_size)
    Image.fromarray(upscale(image, factor)).save(path, format="PNG")
    return path


def save_gif(frames: np.ndarray, path: str | Path, fps: float = 5.0, min_size: int = 384) -> Path:
    """Write (T, H, W, 3) uint8 frames as a looping GIF, upscaled (nearest) to >= min_size px.

    5 fps by default: slow enough to follow a 1-frame blip by eye, 5 s for 25 frames.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8 (got {frames.shape} {frames.dtype})")
    if fps <= 0:
        raise ValueError(f"fps must be positive (got {fps})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    factor = _auto_factor(frames.shape[1], frames.shape[2], min_size)
    images = [Image.fromarray(f) for f in upscale(frames, factor)]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000.0 / fps)),
        loop=0,
        optimize=False,
    )
    return path
