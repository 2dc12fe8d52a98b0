"""Preview images: files are valid images PIL can read back, overlays land where asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tp_models.evaluation.visualize import contact_sheet, draw_positions, save_gif, save_png
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import simulate


@pytest.fixture(scope="module")
def videos() -> np.ndarray:
    # every object already there at frame 0, so the frames differ (a GIF merges equal frames)
    config = SceneConfig(frames=6, size=64, p_present_at_start=1.0)
    batch = simulate(config, np.array([0, 3], np.int8), np.arange(2), 2)
    return batch.videos


def test_contact_sheet_layout_and_labels(videos: np.ndarray) -> None:
    sheet = contact_sheet(videos, frames_per_row=4, labels=["persistent", "mixed"], gap=2)
    n, t, h, w, _ = videos.shape
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert sheet.shape[0] == n * 2 * (h + 2) + 2  # 6 frames at 4 per row: 2 rows per video
    left = sheet.shape[1] - (4 * (w + 2) + 2)
    assert left > 0
    assert (sheet[:, :left] > 160).any()  # label text drawn (white, anti-aliased)
    first_frame = sheet[2 : 2 + h, left + 2 : left + 2 + w]
    assert np.array_equal(first_frame, videos[0, 0])
    with pytest.raises(ValueError, match="labels must have one entry per video"):
        contact_sheet(videos, labels=["one"])


def test_draw_positions_marks_positions_and_keeps_input(videos: np.ndarray) -> None:
    frames = np.zeros_like(videos[0])
    positions = np.full((2, frames.shape[0], 2), np.nan)
    positions[0] = (20.0, 30.0)
    positions[1, 2:] = (50.0, 10.0)
    visible = np.ones((2, frames.shape[0]), bool)
    visible[1, 3] = False
    out = draw_positions(frames, positions, colors=[(255, 0, 0), (0, 255, 0)], visible=visible)
    assert not frames.any()
    assert out.shape == frames.shape
    red = (out[..., 0] == 255) & (out[..., 1] == 0)
    green = (out[..., 1] == 255) & (out[..., 0] == 0)
    assert red.any(axis=(1, 2)).all()
    assert green.any(axis=(1, 2)).tolist() == [False, False, True, True, True, True]
    ys, xs = np.nonzero(red[0])
    assert abs(xs.mean() - 20.0) < 1.5 and abs(ys.mean() - 30.0) < 1.5
    big = draw_positions(frames, positions, scale=3)
    assert big.shape == (frames.shape[0], 3 * frames.shape[1], 3 * frames.shape[2], 3)


def test_save_png_and_gif_read_back(videos: np.ndarray, tmp_path: Path) -> None:
    sheet = contact_sheet(videos)
    png = save_png(sheet, tmp_path / "sub" / "sheet.png", min_size=256)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert min(image.size) >= 256
        factor = image.size[0] // sheet.shape[1]
        assert image.size == (sheet.shape[1] * factor, sheet.shape[0] * factor)
        back = np.asarray(image)[::factor, ::factor]
    assert np.array_equal(back, sheet)

    gif = save_gif(videos[1], tmp_path / "video.gif", fps=10)
    with Image.open(gif) as image:
        assert image.format == "GIF"
        assert image.n_frames == videos.shape[1]
        assert min(image.size) >= 384
        assert image.info.get("duration") == 100
    with pytest.raises(ValueError, match="fps must be positive"):
        save_gif(videos[1], tmp_path / "bad.gif", fps=0)
