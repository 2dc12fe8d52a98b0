"""Progress bars: drawn for the CLI on a terminal only, quiet in logs and CI."""

from __future__ import annotations

import fcntl
import io
import os
import select
import struct
import sys
import termios

from flows.progress import progress, show_progress_bars


def _draw(stream) -> None:
    previous, sys.stderr = sys.stderr, stream
    try:
        with show_progress_bars(), progress(4, "train-statistical", "epoch") as advance:
            advance(1, val_loss=0.25, val_f1_full=0.5)
    finally:
        sys.stderr = previous


def test_bar_shows_unit_and_latest_metrics_on_a_terminal():
    main, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # a real width
    with os.fdopen(child, "w", buffering=1) as terminal:
        _draw(terminal)
    text = ""
    while select.select([main], [], [], 0.5)[0]:
        try:
            text += os.read(main, 65536).decode()
        except OSError:  # the terminal's other end is closed: all read
            break
    os.close(main)
    assert "train-statistical" in text and "1/4" in text and "epoch" in text
    assert "val_loss=0.25" in text and "val_f1_full=0.5" in text


def test_no_bar_when_stderr_is_not_a_terminal_or_outside_the_cli():
    captured = io.StringIO()
    _draw(captured)
    assert captured.getvalue() == ""
    with progress(4, "train", "epoch") as advance:  # not in the CLI: nothing, on any stream
        advance(1, val_loss=0.25)
