"""Pure-PyTorch training loop and metrics for the tokenizer (no MLflow: callers log).

Metric conventions:

* PSNR is computed over whole frames (all pixels, frames and channels, background
  included) in ``[0, 255]`` units, i.e. after mapping model outputs back to pixel values and
  clamping. The videos are mostly black, so a whole-frame PSNR is lenient about the objects:
  30 dB is an RMS error of ~8 grey levels over the frame, which can hide a large error on
  the ~1-3 % of pixels that are objects. :func:`psnr` can restrict itself to a mask (e.g. the
  scene's object mask) for the strict view.
* Codebook usage is the fraction of the ``codebook_size`` entries that occur at least once
  in the given codes (e.g. all tokens of a held-out set).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from tp_models.core.device import resolve_device

# Re-exported: callers have always found it here.
from tp_models.magvit.config import TokenizerTrainConfig as TokenizerTrainConfig
from tp_models.magvit.tokenizer import MagVitTokenizer, to_model_input, to_uint8

ArrayLike = np.ndarray | torch.Tensor
LogCallback = Callable[[int, dict[str, float]], None]


# -- metrics --------------------------------------------------------------------------------


def _to_pixels(video: ArrayLike) -> torch.Tensor:
    """uint8 (any layout) -> float64 pixel values; float tensors are taken as [-1, 1]."""
    tensor = torch.as_tensor(video)
    if tensor.dtype == torch.uint8:
        return tensor.double()
    return (tensor.detach().double().clamp(-1.0, 1.0) + 1.0) * 127.5


def psnr(
    recon: ArrayLike,
    target: ArrayLike,
    reduction: Literal["pooled", "per_video"] = "pooled",
    mask: ArrayLike | None = None,
) -> float | np.ndarray:
    """PSNR in dB over whole frames in ``[0, 255]`` units (see the module docstring).

    ``recon`` and ``target`` share a layout with the batch first: uint8 pixel values, or
    float model outputs in ``[-1, 1]`` (both kinds may be mixed). ``"pooled"``: one number
    from the mean squared error over everything; ``"per_video"``: an array with one value
    per video (``inf`` for a perfect reconstruction). ``mask`` (broadcastable to the error,
    True = counted) restricts the error to some pixels.
    """
    a, b = _to_pixels(recon), _to_pixels(target)
    if a.shape != b.shape:
        raise ValueError(f"recon {tuple(a.shape)} and target {tuple(b.shape)} differ in shape.")
    err = (a - b).pow(2)
    if mask is not None:
        weight = torch.as_tensor(mask, dtype=torch.float64).expand_as(err)
    else:
        weight = torch.ones_like(err)
    if reduction == "pooled":
        mse = float((err * weight).sum() / weight.sum().clamp(min=1))
        return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
    if reduction == "per_video":
        dims = tuple(range(1, err.ndim))
        mse = (err * weight).sum(dims) / weight.sum(dims).clamp(min=1)
        return (10.0 * torch.log10(255.0**2 / mse)).cpu().numpy()
    raise ValueError(f"reduction must be 'pooled' or 'per_video', got {reduction!r}.")


def codebook_usage(codes: ArrayLike, codebook_size: int) -> float:
    """Fraction of the codebook's entries that occur at least once in ``codes``."""
    flat = torch.as_tensor(codes).reshape(-1).long()
    if flat.numel() and (flat.min() < 0 or flat.max() >= codebook_size):
        raise ValueError(f"codes fall outside [0, {codebook_size}).")
    return float(torch.unique(flat).numel()) / codebook_size


def codebook_perplexity(codes: ArrayLike, codebook_size: int) -> float:
    """exp(entropy) of the code histogram: the effective number of codes in use."""
    flat = torch.as_tensor(codes).reshape(-1).long()
    counts = torch.bincount(flat, minlength=codebook_size).double()
    prob = counts[counts > 0] / counts.sum()
    return float(torch.exp(-(prob * prob.log()).sum()))


def reconstruction_grid(
    video: ArrayLike,
    recon: ArrayLike,
    frames: Iterable[int] | None = None,
    max_videos: int = 4,
    gap: int = 2,
) -> np.ndarray:
    """An image ``uint8 (H', W', 3)`` to log: per video, a row of original frames above a
    row of reconstructed frames (columns = ``frames``, every 4th frame by default).

    Inputs: store layout uint8 ``(B, T, H, W, 3)`` / ``(T, H, W, 3)``, or model-layout float
    tensors ``(B, 3, T, H, W)`` in ``[-1, 1]``.
    """

    def store_layout(x: ArrayLike) -> np.ndarray:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return to_uint8(x)
        arr = np.asarray(x)
        if arr.dtype != np.uint8:
            raise TypeError("uint8 store-layout video or float model-layout tensor expected.")
        return arr[None] if arr.ndim == 4 else arr

    orig, rec = store_layout(video), store_layout(recon)
    if orig.shape != rec.shape:
        raise ValueError(f"video {orig.shape} and recon {rec.shape} differ in shape.")
    n_videos, n_frames, height, width, _ = orig.shape
    cols = list(frames) if frames is not None else list(range(0, n_frames, 4))
    rows = [part[v] for v in range(min(n_videos, max_videos)) for part in (orig, rec)]
    grid = np.full(
        (len(rows) * (height + gap) - gap, len(cols) * (width + gap) - gap, 3), 64, np.uint8
    )
    for i, row in enumerate(rows):
        for j, t in enumerate(cols):
            y, x = i * (height + gap), j * (width + gap)
            grid[y : y + height, x : x + width] = row[t]
    return grid


@torch.no_grad()
def evaluate_tokenizer(
    model: MagVitTokenizer, videos: ArrayLike, batch_size: int = 8
) -> dict[str, float]:
    """PSNR (pooled, whole frames, [0, 255]), codebook usage and perplexity on videos
    (store layout uint8 ``(N, T, H, W, 3)``), computed where the model's weights are:
    each batch goes there once, the sums stay there, and the metrics come back at the end."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sq_err = torch.zeros((), dtype=torch.float64, device=device)
    count, all_codes = 0, []
    try:
        for start in range(0, len(videos), batch_size):
            batch = torch.as_tensor(np.asarray(videos[start : start + batch_size])).to(device)
            _, codes = model.encode(batch)
            recon = _to_pixels(model.decode(codes).permute(0, 2, 3, 4, 1))
            sq_err += (recon - batch.double()).pow(2).sum()
            count += batch.numel()
            all_codes.append(codes.reshape(-1))
    finally:
        model.train(was_training)
    codes = torch.cat(all_codes)
    mse = float(sq_err) / max(count, 1)
    size = model.config.codebook_size
    return {
        "psnr": float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse),
        "codebook_usage": codebook_usage(codes, size),
        "codebook_perplexity": codebook_perplexity(codes, size),
    }


# -- training -------------------------------------------------------------------------------


def _endless(batches: Iterable[ArrayLike]) -> Iterator[ArrayLike]:
    """Cycle over re-iterable inputs (lists, datasets); a one-shot iterator is used once."""
    if iter(batches) is batches:
        yield from batches  # type: ignore[misc]
        return
    yield from itertools.chain.from_iterable(itertools.repeat(batches))


def _crop_batch(
    video: torch.Tensor, config: TokenizerTrainConfig, align: int, gen: torch.Generator
) -> torch.Tensor:
    """Random sub-clip and object-centred crop of store-layout uint8 ``(B, T, H, W, 3)``.

    A fraction ``object_crop_fraction`` of crops is centred near a random lit pixel (the
    frames are mostly black: uniform crops alone would spend most of the budget on black),
    the rest is placed uniformly so the background is learned too.
    """
    n, frames, height, width, _ = video.shape
    if config.clip_frames is not None and config.clip_frames < frames:
        start = int(torch.randint(0, frames - config.clip_frames + 1, (1,), generator=gen))
        video = video[:, start : start + config.clip_frames]
    size = config.crop_size
    if size is None or (size >= height and size >= width):
        return video
    size = max(align, size - size % align)
    crops = []
    lit = video.amax(dim=(1, 4)) > 0  # (B, H, W)
    for i in range(n):
        rows, cols = torch.nonzero(lit[i], as_tuple=True)
        centred = float(torch.rand((), generator=gen)) < config.object_crop_fraction
        if rows.numel() and centred:
            k = int(torch.randint(0, rows.numel(), (1,), generator=gen))
            jitter = torch.randint(-size // 4, size // 4 + 1, (2,), generator=gen)
            cy, cx = int(rows[k] + jitter[0]), int(cols[k] + jitter[1])
        else:
            cy = int(torch.randint(0, height, (1,), generator=gen))
            cx = int(torch.randint(0, width, (1,), generator=gen))
        # Align crops to the latent grid so training sees the same cell phase as inference.
        y0 = min(max(cy - size // 2, 0), height - size) // align * align
        x0 = min(max(cx - size // 2, 0), width - size) // align * align
        crops.append(video[i, :, y0 : y0 + size, x0 : x0 + size])
    return torch.stack(crops)


def _lr_at(step: int, config: TokenizerTrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def fit_tokenizer(
    model: MagVitTokenizer,
    batches: Iterable[ArrayLike],
    config: TokenizerTrainConfig | None = None,
    on_log: LogCallback | None = None,
    device: str | torch.device | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``config.steps`` steps; returns the logged history.

    ``device``: where to train (a name ``resolve_device`` accepts); the model is moved
    there and stays there. None trains where the model's weights already are. Crops are
    drawn on the CPU from a seeded generator, so they do not depend on the device.

    ``batches`` yields store-layout uint8 videos ``(B, T, H, W, 3)`` (numpy or torch); lists
    and other re-iterables are cycled, a one-shot iterator ends training early when it runs
    out. ``on_log(step, metrics)`` is called every ``log_every`` steps and at the last step
    with: loss, recon, entropy, commitment, psnr (this batch, clamped, whole frames),
    batch_codebook_usage, lr, seconds (since start). For a progress bar: the step is
    ``step + 1`` of ``config.steps``. Nothing is printed.
    """
    config = config or TokenizerTrainConfig()
    if device is not None:  # first, so a missing GPU fails before anything has changed
        model.to(resolve_device(device))
    device = next(model.parameters()).device
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay
    )
    recon_fn = F.l1_loss if config.recon_loss == "l1" else F.mse_loss
    model.train()
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for step, raw in enumerate(_endless(batches)):
        if step >= config.steps:
            break
        video = torch.as_tensor(np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw)
        video = _crop_batch(video, config, model.config.spatial_downsample, gen)
        x = to_model_input(video, device)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)

        out = model(x)
        recon = recon_fn(out.recon, x)
        entropy_weight = config.entropy_weight
        if config.entropy_fade_steps:
            entropy_weight *= max(0.0, 1.0 - step / config.entropy_fade_steps)
        loss = (
            config.recon_weight * recon
            + entropy_weight * out.entropy_loss
            + config.commitment_weight * out.commitment_loss
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()

        if step % config.log_every == 0 or step == config.steps - 1:
            metrics = {
                "loss": float(loss.detach()),
                "recon": float(recon.detach()),
                "entropy": float(out.entropy_loss.detach()),
                "commitment": float(out.commitment_loss.detach()),
                "psnr": float(psnr(out.recon, x)),
                "batch_codebook_usage": codebook_usage(out.codes, model.config.codebook_size),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - started,
            }
            history.append({"step": float(step), **metrics})
            if on_log is not None:
                on_log(step, metrics)
    model.eval()
    return history


@torch.no_grad()
def measure_encoding_speed(
    model: MagVitTokenizer,
    videos: ArrayLike,
    batch_size: int = 8,
    repeats: int = 5,
    num_threads: int | None = 2,
) -> dict[str, float]:
    """Videos encoded per second (median over ``repeats`` passes over ``videos``, after a
    warm-up pass), for benchmarks; ``videos`` is store-layout uint8 ``(N, T, H, W, 3)``."""
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    model.eval()
    device = next(model.parameters()).device
    try:
        timings = []
        for repeat in range(repeats + 1):
            started = time.perf_counter()
            for start in range(0, len(videos), batch_size):
                model.encode(np.asarray(videos[start : start + batch_size]))
            if device.type == "cuda":  # kernels run asynchronously: wait before reading time
                torch.cuda.synchronize(device)
            if repeat:  # the first pass pays for allocator and kernel warm-up
                timings.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
    seconds = float(np.median(timings))
    return {
        "videos_per_second": len(videos) / seconds,
        "seconds_per_pass": seconds,
        "fastest_videos_per_second": len(videos) / min(timings),
    }
