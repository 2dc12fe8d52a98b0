"""`tp bench online`: the online scorer's cost per frame and memory per live track, by age.

100 live tracks (random walks, all observed every frame), the untrained default model
(``--sequence`` picks the sequence model), 1 torch thread. At track ages 10, 200, 2,000
and 20,000 frames:

- p50 and p99 milliseconds of one ``OnlineScorer.update`` (one frame for all tracks) at
  that age, over ``--repeats`` frames each fed to a copy of the scorer taken at that age
  (so a cost that grows with age is not averaged over later ages; the model is shared);
- the floor, measured in the same run: the sequence model's bare ``step(x, cache)`` for
  the same number of tracks at the same age (its own cache, warmed by bare steps), and
  the ratio update / floor;
- memory per live track: the bytes of every tensor and array the scorer holds (the
  model's weights excluded; storage as allocated, views counted once), divided by the
  live tracks; also the sequence cache's alone. A bounded-state scorer shows the same
  number at every age;
- up to ``--rerun-max-age``, ``pipeline.score`` on the whole sequence so far (what a frame
  costs without the cache).

Ages are reached honestly, by feeding frames one by one (one scorer walks through the
ages in order; the time that takes is reported, and the warmed state is what is copied).
An age the model cannot reach (the transformer's positional encoding stops at
``max_len``), or that warming would not reach within ``--warm-budget`` seconds, is
reported as not reached with the reason.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.common import emit
from tp_models.core.batch import TrackBatch
from tp_models.model import ModelConfig, build_pipeline
from tp_models.serving.online import OnlineScorer

AGES = (10, 200, 2_000, 20_000)
FRAME = 128.0  # px, the walks' frame (the model's default frame_size)
TARGET_P50_MS, TARGET_P99_MS = 1.0, 3.0  # issue 20


def walks(n_tracks: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """(n_tracks, n_frames, 2) random-walk positions, reflected at the edges of a 128-px
    frame (so a walk of 20,000 frames stays in the frame)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 1.5, (n_tracks, n_frames, 2))
    free = rng.random((n_tracks, 1, 2)) * FRAME + np.cumsum(steps, axis=1)
    folded = np.mod(free, 2 * FRAME)
    return np.where(folded > FRAME, 2 * FRAME - folded, folded).astype(np.float32)


def as_batch(position: np.ndarray) -> TrackBatch:
    b, t = position.shape[:2]
    nan = np.full((b, t), np.nan, np.float32)
    return TrackBatch(
        position=position,
        observed=np.ones((b, t), dtype=bool),
        area=nan,
        color=np.full((b, t, 3), np.nan, np.float32),
        loglik=nan,
        label=np.full(b, -1, np.int8),
        video=np.zeros(b, np.int64),
    )


def ms(times: list[float], q: float) -> float:
    return round(float(np.percentile(times, q)) * 1e3, 3)


def state_bytes(obj: Any) -> int:
    """Bytes of every tensor and numpy array reachable from ``obj`` (attributes,
    containers), each storage counted once as allocated; ``nn.Module``s (the model's
    weights, shared by all tracks) are skipped."""
    seen_objects: set[int] = set()
    seen_storage: set[tuple[str, int]] = set()
    total = 0

    def visit(value: Any) -> None:
        nonlocal total
        if id(value) in seen_objects or isinstance(value, nn.Module | type):
            return
        seen_objects.add(id(value))
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            key = ("torch", storage.data_ptr())
            if key not in seen_storage:
                seen_storage.add(key)
                total += storage.nbytes()
        elif isinstance(value, np.ndarray):
            root = value
            while isinstance(root.base, np.ndarray):
                root = root.base
            key = ("numpy", root.__array_interface__["data"][0])
            if key not in seen_storage:
                seen_storage.add(key)
                total += root.nbytes
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                visit(item)
        elif hasattr(value, "__dict__") or hasattr(value, "__slots__"):
            for item in getattr(value, "__dict__", {}).values():
                visit(item)
            for name in getattr(type(value), "__slots__", ()):
                if hasattr(value, name):
                    visit(getattr(value, name))

    visit(obj)
    return total


def failure(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


class Walker:
    """Something stateful advanced one frame at a time (the scorer, or the bare sequence
    step on its own cache): brought to an age by feeding frames, then timed at that age.

    ``age`` is the number of frames fed; the next frame fed is the tracks' ``age + 1``-th.
    Once a frame fails, the walker is dead and says why; warming time is charged against
    ``budget_s``, shared by all ages.
    """

    def __init__(
        self,
        make: Callable[[], Any],
        frame: Callable[[Any, int], Any],
        budget_s: float,
        shared: nn.Module,
    ):
        self.make, self.frame, self.shared = make, frame, shared
        self.budget_s = budget_s
        self.warm_s = 0.0  # all warming so far
        self.state: Any = None
        self.age = 0
        self.dead: str | None = None
        self.last_p50_s: float | None = None

    def _start(self) -> None:
        self.state, self.age, self.dead = None, 0, None
        try:
            self.state = self.make()
        except Exception as error:  # noqa: BLE001 - reported, not raised
            self.dead = f"cannot be built: {failure(error)}"

    def warm(self, age: int) -> tuple[str | None, float, int]:
        """Feed frames until the next one is the tracks' ``age``-th: (why not, seconds,
        frames fed). Starts afresh if already past it."""
        if self.state is None or self.age > age - 1:
            self._start()
        if self.dead:
            return self.dead, 0.0, 0
        to_feed = age - 1 - self.age
        left = self.budget_s - self.warm_s
        if self.last_p50_s is not None and to_feed * self.last_p50_s > left:
            return (
                f"warming {to_feed:,} more frames would take ~{to_feed * self.last_p50_s:.0f} s "
                f"at {self.last_p50_s * 1e3:.2f} ms/frame; {left:.0f} s of --warm-budget left",
                0.0,
                0,
            )
        began, fed = time.perf_counter(), 0
        while self.age < age - 1:
            spent = time.perf_counter() - began
            if spent > left:
                self.warm_s += spent
                return (
                    f"--warm-budget {self.budget_s:g} s spent: warming stopped at age "
                    f"{self.age:,} ({fed / max(spent, 1e-9):.0f} frames/s)",
                    spent,
                    fed,
                )
            if not self._feed():
                spent = time.perf_counter() - began
                self.warm_s += spent
                return self.dead, spent, fed
            fed += 1
        spent = time.perf_counter() - began
        self.warm_s += spent
        return None, spent, fed

    def _feed(self) -> bool:
        try:
            self.frame(self.state, self.age)
        except Exception as error:  # noqa: BLE001 - reported, not raised
            self.dead = f"failed at track age {self.age + 1:,}: {failure(error)}"
            return False
        self.age += 1
        return True

    def time(self, repeats: int) -> tuple[list[float], str | None, str]:
        """Seconds of each of ``repeats`` frames, all at the same track age: each is fed to
        a copy of the state (the model's weights shared), so the walker stays where it
        is. A state that cannot be copied is timed over ``repeats`` consecutive frames
        instead. Also: why fewer (None when all ran) and how it was timed."""
        times: list[float] = []
        if self.dead:
            return times, self.dead, ""
        try:
            with torch.inference_mode():
                self._copy()
        except Exception as error:  # noqa: BLE001 - reported, the walk times it instead
            how = f"consecutive frames from this age on (state not copyable: {failure(error)})"
            for _ in range(repeats):
                began = time.perf_counter()
                if not self._feed():
                    return times, self.dead, how
                times.append(time.perf_counter() - began)
        else:
            how = "at this age (state copied before each frame)"
            for _ in range(repeats):
                with torch.inference_mode():
                    trial = self._copy()
                began = time.perf_counter()
                try:
                    self.frame(trial, self.age)
                except Exception as error:  # noqa: BLE001 - reported, not raised
                    return times, f"failed at track age {self.age + 1:,}: {failure(error)}", how
                times.append(time.perf_counter() - began)
                del trial
        self.last_p50_s = float(np.median(times))
        return times, None, how

    def _copy(self) -> Any:
        memo = {id(m): m for m in self.shared.modules()}
        return copy.deepcopy(self.state, memo)


def build_model(sequence: str | None, max_len: int | None):
    """The untrained pipeline of ``ModelConfig(sequence=..., max_len=...)``, the defaults
    for what is None. A ``ModelConfig`` without a ``sequence`` field only builds the
    transformer."""
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    options: dict[str, Any] = {}
    if max_len is not None:
        options["max_len"] = max_len
    if sequence is not None:
        if "sequence" in fields:
            options["sequence"] = sequence
        elif sequence != "transformer":
            raise SystemExit(
                f"--sequence {sequence}: this ModelConfig has no 'sequence' field (only the "
                "transformer can be built)"
            )
    config = ModelConfig(**options)
    return config, build_pipeline(config, seed=0).eval()


def run(
    model,
    n_tracks: int,
    ages: tuple[int, ...],
    repeats: int,
    warm_budget_s: float,
    rerun_max_age: int,
) -> list[dict[str, Any]]:
    position = walks(n_tracks, max(ages) + repeats)
    ids = np.arange(n_tracks)
    sequence = model.sequence
    x = torch.randn(n_tracks, sequence.input_dim, generator=torch.Generator().manual_seed(0))

    def update(scorer: OnlineScorer, t: int) -> None:
        rows = {"track_id": ids, "x": position[:, t, 0], "y": position[:, t, 1]}
        scorer.update(t + 1, rows)

    def new_cache():
        cache = sequence.new_cache()
        cache.add(n_tracks)
        return cache

    def bare_step(cache, t: int) -> None:
        with torch.inference_mode():
            sequence.step(x, cache)

    scorer = Walker(lambda: OnlineScorer(model), update, warm_budget_s, model)
    floor = Walker(new_cache, bare_step, warm_budget_s, model)
    rows = []
    for age in ages:
        row: dict[str, Any] = {"age": age}
        why, warm_s, fed = scorer.warm(age)
        row.update(warm_s=round(warm_s, 2), warm_frames=fed)
        if why is None:
            row["state_bytes"] = state_bytes(scorer.state)
            row["state_bytes_per_track"] = round(row["state_bytes"] / n_tracks)
            times, why, row["update_timed"] = scorer.time(repeats)
        if why is None:
            row.update(update_p50_ms=ms(times, 50), update_p99_ms=ms(times, 99))
        row["update_not_reached"] = why
        why, _, _ = floor.warm(age)
        if why is None:
            bytes_ = state_bytes(floor.state)
            row["sequence_cache_bytes_per_track"] = round(bytes_ / n_tracks)
            times, why, row["floor_timed"] = floor.time(repeats)
        if why is None:
            row.update(floor_p50_ms=ms(times, 50), floor_p99_ms=ms(times, 99))
        row["floor_not_reached"] = why
        if "update_p50_ms" in row and "floor_p50_ms" in row:
            row["ratio_update_to_floor"] = round(row["update_p50_ms"] / row["floor_p50_ms"], 2)
        if age <= rerun_max_age and row["update_not_reached"] is None:
            row["rerun_p50_ms"] = rerun_p50_ms(model, position[:, :age], min(repeats, 10))
        rows.append(row)
    return rows


def rerun_p50_ms(model, position: np.ndarray, repeats: int) -> float | None:
    batch = as_batch(position)
    try:
        model.score(batch)
    except Exception:  # noqa: BLE001 - the batch model cannot read that long a sequence
        return None
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        model.score(batch)
        times.append(time.perf_counter() - began)
    return ms(times, 50)


def memory_verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Is the scorer's memory per live track the same at every age reached?"""
    measured = [(r["age"], r["state_bytes_per_track"]) for r in rows if r.get("state_bytes")]
    if len(measured) < 2:
        return {"constant": None, "ages": [a for a, _ in measured]}
    values = [b for _, b in measured]
    return {
        "constant": min(values) == max(values),
        "ages": [a for a, _ in measured],
        "growth": round(values[-1] / values[0], 2),
    }


def lines_of(results: dict[str, Any]) -> list[str]:
    n = results["tracks"]
    out = [
        f"{n} live tracks, {results['threads']} torch thread(s), sequence "
        f"{results['sequence']} ({results['sequence_class']}), {results['repeats']} frames "
        f"per age (targets: p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms)"
    ]
    for r in results["ages"]:
        head = f"age {r['age']:>6,}:"
        if r["update_not_reached"]:
            out.append(f"{head} update not reached: {r['update_not_reached']}")
        else:
            text = (
                f"{head} update p50 {r['update_p50_ms']} ms, p99 {r['update_p99_ms']} ms; "
                f"state {r['state_bytes_per_track']:,} B/track"
            )
            if r.get("rerun_p50_ms") is not None:
                text += f"; re-running the sequence p50 {r['rerun_p50_ms']} ms"
            out.append(text + f" (warmed {r['warm_frames']:,} frames in {r['warm_s']} s)")
            if not r["update_timed"].startswith("at this age"):
                out.append(f"{'':8}timed over {r['update_timed']}")
        if r["floor_not_reached"]:
            out.append(f"{'':8}floor not reached: {r['floor_not_reached']}")
        else:
            text = (
                f"{'':8}floor (bare sequence step) p50 {r['floor_p50_ms']} ms, p99 "
                f"{r['floor_p99_ms']} ms; sequence cache "
                f"{r['sequence_cache_bytes_per_track']:,} B/track"
            )
            if "ratio_update_to_floor" in r:
                text += f"; ratio update/floor {r['ratio_update_to_floor']}"
            out.append(text)
    memory = results["memory_per_track"]
    if memory["constant"] is None:
        out.append("memory per live track: fewer than 2 ages reached, constancy not shown")
    else:
        verdict = "constant" if memory["constant"] else f"grows x{memory['growth']}"
        ages = ", ".join(f"{a:,}" for a in memory["ages"])
        out.append(f"memory per live track over ages {ages}: {verdict}")
    budget = results["warm_budget_s"]
    out.append(f"warming the scorer: {results['warm_s']} s in all (--warm-budget {budget:g} s)")
    return out


def parse_ages(text: str) -> tuple[int, ...]:
    ages = tuple(sorted({int(a) for a in text.split(",") if a.strip()}))
    if not ages or ages[0] < 1:
        raise argparse.ArgumentTypeError(f"ages must be positive integers, got {text!r}")
    return ages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench online", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument("--ages", type=parse_ages, default=AGES, help="track ages, comma-separated")
    parser.add_argument(
        "--repeats", type=int, default=200, help="frames timed per age (p99 needs ~100+)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--sequence",
        choices=("transformer", "gru"),
        default=None,
        help="sequence model (ModelConfig(sequence=...)); default: the config's default",
    )
    parser.add_argument(
        "--max-len", type=int, default=None, help="the transformer's max_len (config default)"
    )
    parser.add_argument(
        "--warm-budget",
        type=float,
        default=600.0,
        help="seconds the scorer may spend feeding frames to reach the ages (each of the "
        "scorer and the floor); ages beyond it are reported as not reached",
    )
    parser.add_argument(
        "--rerun-max-age",
        type=int,
        default=200,
        help="also time pipeline.score on the whole sequence up to this age",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config, model = build_model(args.sequence, args.max_len)
    began = time.perf_counter()
    rows = run(model, args.tracks, args.ages, args.repeats, args.warm_budget, args.rerun_max_age)
    results = {
        "tracks": args.tracks,
        "threads": args.threads,
        "repeats": args.repeats,
        "sequence": getattr(config, "sequence", "transformer"),
        "sequence_class": type(model.sequence).__name__,
        "max_len": getattr(model.sequence, "max_len", None),
        "warm_budget_s": args.warm_budget,
        "ages": rows,
        "memory_per_track": memory_verdict(rows),
        "warm_s": round(sum(r["warm_s"] for r in rows), 2),
        "wall_s": round(time.perf_counter() - began, 1),
    }
    emit("online", results, args.json, lines_of(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
