"""Rasterise ground truth into RGB frames and an object-id mask, vectorised over frames.

Each object is drawn only inside a small box that follows it, for all its visible frames at
once (one boolean test over a ``(frames, box, box)`` grid), straight into uint8 arrays. That
is what makes a 25 x 128 x 128 video cost well under a millisecond, where the matplotlib
prototype needed 550 ms. Shapes are hard-edged (no anti-aliasing) on a black background, so
at zero sensor noise a pixel is non-zero exactly where the mask names an object, and the
mask is the exact ground truth a detector's connected components are matched against.
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Half-extent of each shape relative to its radius. Shapes are equal-area with the circle of
# that radius (square half-side sqrt(pi)/2 * r, equilateral triangle circumradius
# sqrt(4 pi / (3 sqrt 3)) * r), so a blob's pixel area measures the radius, never the shape.
SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2.0
TRIANGLE_CIRCUMRADIUS = math.sqrt(4.0 * math.pi / (3.0 * math.sqrt(3.0)))
SHAPE_EXTENT = np.array([1.0, SQUARE_HALF_SIDE * math.sqrt(2.0), TRIANGLE_CIRCUMRADIUS])
_SQRT3 = float(np.sqrt(3.0))


def shape_inside(shape: int, radius: float, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Whether pixel centres at offsets (dx = columns, dy = rows) from the centre are covered.

    All shapes have the area of the circle of that radius; the triangle is equilateral and
    points up (towards row 0), centred on its centroid.
    """
    if shape == 0:
        return dx * dx + dy * dy <= radius * radius
    if shape == 1:
        half = radius * SQUARE_HALF_SIDE
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == 2:
        big_r = radius * TRIANGLE_CIRCUMRADIUS
        return (dy <= 0.5 * big_r) & (_SQRT3 * np.abs(dx) <= dy + big_r)
    raise ValueError(f"unknown shape code {shape}; expected 0, 1 or 2")


def render_video(
    video: np.ndarray,
    mask: np.ndarray,
    shape: np.ndarray,
    radius: np.ndarray,
    color: np.ndarray,
    position: np.ndarray,
    visible: np.ndarray,
) -> None:
    """Draw one video's objects in place, in slot order (a later slot covers an earlier one).

    video (T, H, W, 3) uint8 and mask (T, H, W) uint8 are written where objects are visible;
    the tables are one video's rows of a SceneBatch (shape/radius/color per slot, position
    (K, T, 2), visible (K, T)). Empty slots (shape -1) and invisible frames are skipped.
    """
    t_total, height, width = mask.shape
    for k in np.flatnonzero(shape >= 0):
        frames = np.flatnonzero(visible[k])
        if frames.size == 0:
            continue
        code = int(shape[k])
        r = float(radius[k])
        half = int(np.ceil(r * SHAPE_EXTENT[code]))
        box = np.arange(2 * half + 2)
        x = position[k, frames, 0].astype(np.float64)
        y = position[k, frames, 1].astype(np.float64)
        cols = (np.floor(x).astype(np.int64) - half)[:, None] + box  # (n, w)
        rows = (np.floor(y).astype(np.int64) - half)[:, None] + box  # (n, w)
        dx = (cols - x[:, None])[:, None, :]
        dy = (rows - y[:, None])[:, :, None]
        covered = shape_inside(code, r, dx, dy)
        covered &= ((rows >= 0) & (rows < height))[:, :, None]
        covered &= ((cols >= 0) & (cols < width))[:, None, :]
        ti, ri, ci = np.nonzero(covered)
        f, rr, cc = frames[ti], rows[ti, ri], cols[ti, ci]
        video[f, rr, cc] = color[k]
        mask[f, rr, cc] = k + 1


def render(
    shape: np.ndarray,
    radius: np.ndarray,
    color: np.ndarray,
    position: np.ndarray,
    visible: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one video's ground truth to fresh ``(T, H, W, 3)`` frames and a ``(T, H, W)`` mask.

    Useful to re-render ground truth edited by hand (tests, galleries); :func:`simulate`
    renders batches in place with :func:`render_video`.
    """
    t_total = position.shape[1]
    video = np.zeros((t_total, size, size, 3), np.uint8)
    mask = np.zeros((t_total, size, size), np.uint8)
    render_video(video, mask, shape, radius, color, position, visible)
    return video, mask


def add_sensor_noise(video: np.ndarray, sigma: float, rng: np.random.Generator) -> None:
    """Add Gaussian noise of ``sigma`` grey levels in place, rounded and clipped to uint8.

    The frames are whole grey levels, so ``rint(pixel + n) == pixel + rint(n)``: the noise is
    drawn as 16-bit uniform integers mapped through a table of rounded normal quantiles
    (tails cut at 4.2 sigma). That is the same distribution as rounding float noise, at
    about half the cost, and comes from the video's own stream, so it is as reproducible as
    the ground truth.
    """
    table = _noise_table(float(sigma))
    out = video.astype(np.int16)
    out += table[rng.integers(0, _NOISE_LEVELS, size=video.shape, dtype=np.uint16)]
    np.clip(out, 0, 255, out=out)
    video[...] = out


_NOISE_LEVELS = 1 << 16


@functools.lru_cache(maxsize=8)
def _noise_table(sigma: float) -> np.ndarray:
    from scipy.special import ndtri  # only noisy datasets pay the import

    quantiles = ndtri((np.arange(_NOISE_LEVELS) + 0.5) / _NOISE_LEVELS)
    return np.clip(np.rint(sigma * quantiles), -255, 255).astype(np.int16)
