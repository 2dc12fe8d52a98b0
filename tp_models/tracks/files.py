"""Read tracker output (MOTChallenge text or a plain CSV) and write it back with scores.

Formats
-------
MOTChallenge: no header, one row per line ``frame,id,bb_left,bb_top,bb_width,bb_height,
conf,x,y,z``; frames are 1-based, the box is in px (top-left corner and size), columns after
``bb_height`` are optional. In ground truth (MOT16/17 ``gt.txt``) column 7 is the "consider"
flag, 8 the class, 9 the visibility: ``read_ground_truth`` drops rows whose flag is 0, as
the MOTChallenge evaluation does. ``seqinfo.ini`` next to the file or in its parent folder
gives ``imWidth``, ``imHeight`` and ``seqLength``.

CSV: a header line, then comma-separated rows. Columns, by name (any order, extra columns
are kept and ignored):
    frame  int    1-based frame number              (required)
    id     int    track identity                    (required)
    x, y   float  box centre or point, px           (required)
    w, h   float  box width and height, px, > 0     (optional; both or neither)
    conf   float  detection confidence              (optional)

Rows may come in any order (files sorted by id are common); the rows keep the input order.
Without ``seqinfo.ini`` or an explicit ``frame_size``, the frame size is the extent of the
boxes (points) and the length is the largest frame. Ids are read exactly as 64-bit
integers; a box edge beyond ``MAX_COORDINATE`` (2**31 px) is refused. Every problem with a file is a
``TrackFileError`` (a ``ValueError``) naming the file, the line and the column.

Operating points (``read_operating_points``): a CSV with a header naming ``frame``,
``p_detect`` (the sensor's probability of detection, in (0, 1]) and ``clutter_rate`` (false
detections per frame over the whole frame, >= 0), one row for every frame of the sequence:
the truth a simulator knows (`tp simulate-tracker` writes ``operating_point.csv``), read
only by the parameter oracle.

``write_scored`` writes a scored copy: the original text of every row, unchanged, in input
order, with ``p_persistent`` and ``confirmed`` appended (the CSV header gains both names),
through a temporary file renamed into place, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import configparser
import decimal
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tp_models.tracks.table import TrackRows

MOT_COLUMNS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "conf", "x", "y", "z")
CSV_REQUIRED = ("frame", "id", "x", "y")
CSV_OPTIONAL = ("w", "h", "conf")
SCORE_COLUMNS = ("p_persistent", "confirmed")
OPERATING_POINT_COLUMNS = ("frame", "p_detect", "clutter_rate")

# Box edges beyond this many px (finite or not) are a broken row: real frames are far
# smaller, and stores keep positions and frame sizes as float32.
MAX_COORDINATE = 2.0**31


class TrackFileError(ValueError):
    """A track file (or its seqinfo.ini) that cannot be read as tracks."""


@dataclass(frozen=True)
class TrackFile:
    """One read track file: its rows, and its text to write scores back onto.

    format        "mot" or "csv"
    header        the CSV header line (None for MOTChallenge)
    lines         the original text of every row, in input order (len(rows) of them)
    line_numbers  (N,) 1-based line number of every row in the file
    """

    path: Path
    format: str
    rows: TrackRows
    header: str | None
    lines: list[str]
    line_numbers: np.ndarray


def _fail(path: Path, line: int | None, column: str | None, problem: str) -> TrackFileError:
    where = str(path)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column {column!r}"
    return TrackFileError(f"{where}: {problem}")


def _data_lines(path: Path, rows: str = "track row") -> tuple[list[str], np.ndarray]:
    """Non-blank lines (without line endings) and their 1-based line numbers."""
    if path.is_dir():
        raise _fail(path, None, None, "is a directory; pass the track file inside it")
    if not path.is_file():
        raise _fail(path, None, None, "does not exist; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text ({exc.reason}); pass a text file"
        raise _fail(path, None, None, problem) from None
    lines, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            lines.append(line)
            numbers.append(number)
    if not lines:
        raise _fail(path, 1, None, f"the file is empty; it must hold at least one {rows}")
    return lines, np.asarray(numbers, dtype=np.int64)


def _width(path: Path, lines: list[str], numbers: np.ndarray, names: tuple[str, ...], need: int):
    """How many of the first columns every row has; a short line names its first missing
    column."""
    counts = np.fromiter((line.count(",") + 1 for line in lines), np.int64, count=len(lines))
    short = np.flatnonzero(counts < need)
    if short.size:
        i = int(short[0])
        raise _fail(
            path,
            int(numbers[i]),
            names[int(counts[i])],
            f"missing: the row has {counts[i]} columns, at least {need} are needed "
            f"({', '.join(names[:need])})",
        )
    return min(len(names), int(counts.min()))


def _cells(lines: list[str], width: int) -> np.ndarray:
    """(N, width) str cells of the first columns."""
    return np.array([line.split(",")[:width] for line in lines], dtype=object)


def _parsed(lines: list[str], columns: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The named columns (name: index) parsed by NumPy's C reader, "id" as exact int64 and
    the rest as finite float64: the same numbers the cell-by-cell path gives, ~4x faster.
    None when any cell needs that path (it then names the bad cell)."""
    names = list(columns)
    dtype = [(name, np.int64 if name == "id" else np.float64) for name in names]
    try:
        table = np.loadtxt(
            lines,
            delimiter=",",
            usecols=[columns[name] for name in names],
            dtype=dtype,
            comments=None,
            ndmin=1,
        )
    except (ValueError, OverflowError, TypeError):
        return None
    values = {name: np.ascontiguousarray(table[name]) for name in names}
    if len(table) != len(lines):
        return None
    if not all(np.isfinite(v).all() for name, v in values.items() if name != "id"):
        return None
    return values


def _numbers(path: Path, cells: np.ndarray, numbers: np.ndarray, name: str) -> np.ndarray:
    """One column as float64; a non-numeric or non-finite cell is an error naming it."""
    try:
        values = cells.astype(np.float64)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        for i, cell in enumerate(cells):
            try:
                ok = np.isfinite(float(cell))
            except ValueError:
                ok = False
            if not ok:
                raise _fail(path, int(numbers[i]), name, f"{cell.strip()!r} is not a finite number")
    return values


def _whole_numbers(path: Path, cells: np.ndarray, numbers: np.ndarray, name: str) -> np.ndarray:
    """One column as exact int64 (never through float64, which merges ids above 2**53); a
    cell that is not a whole number, or does not fit 64 bits, is an error naming it."""
    try:
        return cells.astype(np.int64)
    except (ValueError, OverflowError):
        pass
    values = np.empty(len(cells), dtype=np.int64)
    info = np.iinfo(np.int64)
    for i, cell in enumerate(cells):
        try:
            number = decimal.Decimal(cell.strip())  # "7.0" is 7; "1e3" is 1000
            whole = number.is_finite() and number == number.to_integral_value()
        except decimal.InvalidOperation:
            whole = False
        if not whole:
            raise _fail(path, int(numbers[i]), name, f"{cell.strip()!r} is not a whole number")
        if not info.min <= number <= info.max:
            raise _fail(
                path,
                int(numbers[i]),
                name,
                f"{cell.strip()!r} does not fit a 64-bit integer ({info.min} to {info.max})",
            )
        values[i] = int(number)
    return values


def _integers(path: Path, values: np.ndarray, numbers: np.ndarray, name: str, low: int):
    bad = np.flatnonzero((values != np.round(values)) | (values < low))
    if bad.size:
        i = int(bad[0])
        raise _fail(path, int(numbers[i]), name, f"{values[i]:g} is not a whole number >= {low}")
    return values.astype(np.int64)


def _positive(path: Path, values: np.ndarray, numbers: np.ndarray, name: str) -> None:
    bad = np.flatnonzero(values <= 0)
    if bad.size:
        i = int(bad[0])
        raise _fail(path, int(numbers[i]), name, f"box size {values[i]:g} must be > 0")


def _edges_within_bounds(
    path: Path,
    numbers: np.ndarray,
    start: tuple[str, np.ndarray],
    size: tuple[str, np.ndarray],
    centre: np.ndarray,
) -> None:
    """Both edges of every box (centre -/+ size/2) within MAX_COORDINATE px; a row beyond
    names its start column if that is itself beyond, else its size column."""
    with np.errstate(over="ignore", invalid="ignore"):
        half = np.nan_to_num(size[1]) / 2
        beyond = ~(np.maximum(np.abs(centre - half), np.abs(centre + half)) <= MAX_COORDINATE)
    if beyond.any():
        i = int(np.flatnonzero(beyond)[0])
        name, value = start if not abs(start[1][i]) <= MAX_COORDINATE else size
        raise _fail(
            path,
            int(numbers[i]),
            name,
            f"{value[i]:g} puts the box beyond {MAX_COORDINATE:.0f} px from the origin; "
            "fix the row",
        )


def _no_duplicates(path: Path, frame: np.ndarray, ids: np.ndarray, numbers: np.ndarray) -> None:
    order = np.lexsort((numbers, ids, frame))
    same = (np.diff(frame[order]) == 0) & (np.diff(ids[order]) == 0)
    if same.any():
        repeats = order[1:][same]
        i = int(repeats[np.argmin(numbers[repeats])])
        raise _fail(
            path,
            int(numbers[i]),
            "id",
            f"track {ids[i]} already has a row in frame {frame[i]}; a track has one row per frame",
        )


@dataclass(frozen=True)
class SequenceInfo:
    """What ``seqinfo.ini`` says (None: the file does not say)."""

    path: Path
    frame_size: tuple[int, int] | None
    n_frames: int | None


def read_seqinfo(track_path: str | os.PathLike[str]) -> SequenceInfo | None:
    """``seqinfo.ini`` next to the track file or in its parent folder, if there is one."""
    track_path = Path(track_path)
    for folder in (track_path.parent, track_path.parent.parent):
        ini = folder / "seqinfo.ini"
        if ini.is_file():
            break
    else:
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
    except configparser.Error as exc:
        problem = f"is not a valid ini file ({exc.message.splitlines()[0]})"
        raise _fail(ini, None, None, problem) from None
    section = parser["Sequence"] if parser.has_section("Sequence") else {}

    def value(key: str) -> int | None:
        if key not in section:
            return None
        try:
            number = int(section[key])
        except ValueError:
            number = 0
        if number <= 0:
            raise _fail(ini, None, key, f"{section[key]!r} must be a whole number > 0")
        return number

    width, height = value("imWidth"), value("imHeight")
    size = (height, width) if width and height else None
    return SequenceInfo(ini, size, value("seqLength"))


def _sequence_shape(
    path: Path,
    columns: dict[str, np.ndarray],
    numbers: np.ndarray,
    frame_size: tuple[int, int] | None,
    n_frames: int | None,
) -> tuple[tuple[int, int], int]:
    """Frame size and length from the arguments, seqinfo.ini or the rows (in that order);
    the rows' frames must lie within the length. Rows outside the frame are kept as the
    tracker reported them (a target leaving the view); `TrackRows.within_frame` applies a
    policy to them."""
    info = read_seqinfo(path)
    if frame_size is None and info is not None and info.frame_size is not None:
        frame_size = info.frame_size
    length_source = "the given n_frames"
    if n_frames is None and info is not None and info.n_frames is not None:
        n_frames, length_source = info.n_frames, str(info.path)
    frame = columns["frame"]
    if n_frames is None:
        n_frames = int(frame.max())
    elif (beyond := np.flatnonzero(frame > n_frames)).size:
        i = int(beyond[0])
        raise _fail(
            path,
            int(numbers[i]),
            "frame",
            f"frame {frame[i]} is beyond the sequence length {n_frames} from {length_source}",
        )
    half_w = np.nan_to_num(columns["w"]) / 2
    half_h = np.nan_to_num(columns["h"]) / 2
    if frame_size is None:
        right, bottom = columns["x"] + half_w, columns["y"] + half_h
        return (max(1, int(np.ceil(bottom.max()))), max(1, int(np.ceil(right.max())))), n_frames
    height, width = frame_size
    return (int(height), int(width)), int(n_frames)


def _to_rows(
    path: Path,
    columns: dict[str, np.ndarray],
    numbers: np.ndarray,
    frame_size: tuple[int, int] | None,
    n_frames: int | None,
) -> TrackRows:
    frame = _integers(path, columns["frame"], numbers, "frame", 1)
    ids = columns["id"]  # exact int64 already (`_whole_numbers`)
    _no_duplicates(path, frame, ids, numbers)
    columns = {**columns, "frame": frame}
    size, length = _sequence_shape(path, columns, numbers, frame_size, n_frames)
    return TrackRows(
        frame=frame,
        track_id=ids,
        x=columns["x"],
        y=columns["y"],
        w=columns["w"],
        h=columns["h"],
        conf=columns["conf"],
        frame_size=size,
        n_frames=length,
    )


def _read_mot(
    path: Path,
    lines: list[str],
    numbers: np.ndarray,
    frame_size: tuple[int, int] | None,
    n_frames: int | None,
    ground_truth: bool,
) -> TrackFile:
    width = _width(path, lines, numbers, MOT_COLUMNS, 6)
    used = MOT_COLUMNS[: min(width, 7)]
    values = _parsed(lines, {name: j for j, name in enumerate(used)})
    if values is None:
        cells = _cells(lines, len(used))
        values = {
            name: (_whole_numbers if name == "id" else _numbers)(path, cells[:, j], numbers, name)
            for j, name in enumerate(used)
        }
    n = len(lines)
    conf = values.pop("conf", np.full(n, np.nan))
    if ground_truth and width > 6:
        keep = conf != 0  # column 7 of MOTChallenge ground truth: the "consider" flag
        lines = [line for line, k in zip(lines, keep, strict=True) if k]
        numbers, conf = numbers[keep], conf[keep]
        values = {name: v[keep] for name, v in values.items()}
        if not lines:
            raise _fail(path, None, "conf", "every ground-truth row has consider flag 0")
    _positive(path, values["bb_width"], numbers, "bb_width")
    _positive(path, values["bb_height"], numbers, "bb_height")
    with np.errstate(over="ignore"):  # an infinite centre is refused just below
        x = values["bb_left"] + values["bb_width"] / 2
        y = values["bb_top"] + values["bb_height"] / 2
    for start, size, centre in (("bb_left", "bb_width", x), ("bb_top", "bb_height", y)):
        _edges_within_bounds(path, numbers, (start, values[start]), (size, values[size]), centre)
    columns = {
        "frame": values["frame"],
        "id": values["id"],
        "x": x,
        "y": y,
        "w": values["bb_width"],
        "h": values["bb_height"],
        "conf": conf,
    }
    rows = _to_rows(path, columns, numbers, frame_size, n_frames)
    return TrackFile(path, "mot", rows, None, lines, numbers)


def _read_csv(
    path: Path,
    lines: list[str],
    numbers: np.ndarray,
    frame_size: tuple[int, int] | None,
    n_frames: int | None,
) -> TrackFile:
    header, lines, header_line = lines[0], lines[1:], int(numbers[0])
    numbers = numbers[1:]
    names = tuple(name.strip().lower() for name in header.split(","))
    for name in CSV_REQUIRED:
        if name not in names:
            raise _fail(
                path,
                header_line,
                name,
                f"missing from the header; a CSV needs columns {', '.join(CSV_REQUIRED)} "
                f"(and optionally {', '.join(CSV_OPTIONAL)})",
            )
    if ("w" in names) != ("h" in names):
        missing = "h" if "w" in names else "w"
        raise _fail(path, header_line, missing, "missing: give both w and h, or neither")
    if not lines:
        raise _fail(path, header_line + 1, None, "the file has a header but no track rows")
    _width(path, lines, numbers, names, len(names))
    n = len(lines)
    given = {name: names.index(name) for name in CSV_REQUIRED + CSV_OPTIONAL if name in names}
    columns = _parsed(lines, given)
    if columns is None:
        cells = _cells(lines, len(names))
        columns = {
            name: (_whole_numbers if name == "id" else _numbers)(
                path, cells[:, index], numbers, name
            )
            for name, index in given.items()
        }
    columns = {name: columns.get(name, np.full(n, np.nan)) for name in CSV_REQUIRED + CSV_OPTIONAL}
    if "w" in names:
        _positive(path, columns["w"], numbers, "w")
        _positive(path, columns["h"], numbers, "h")
    for start, size in (("x", "w"), ("y", "h")):
        pair = ((start, columns[start]), (size, columns[size]))
        _edges_within_bounds(path, numbers, *pair, columns[start])
    rows = _to_rows(path, columns, numbers, frame_size, n_frames)
    return TrackFile(path, "csv", rows, header, lines, numbers)


def _is_header(line: str) -> bool:
    """A first line of names, not one number among them, is a CSV header; a row with a bad
    cell among numbers is a row (its error then names that cell)."""

    def number(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return True

    return not any(number(cell) for cell in line.split(","))


def _read(
    path: str | os.PathLike[str],
    frame_size: tuple[int, int] | None,
    n_frames: int | None,
    ground_truth: bool,
) -> TrackFile:
    path = Path(path)
    lines, numbers = _data_lines(path)
    if _is_header(lines[0]):
        return _read_csv(path, lines, numbers, frame_size, n_frames)
    return _read_mot(path, lines, numbers, frame_size, n_frames, ground_truth)


def read_tracks(
    path: str | os.PathLike[str],
    frame_size: tuple[int, int] | None = None,
    n_frames: int | None = None,
) -> TrackFile:
    """A tracker output file, MOTChallenge or CSV (told apart by the CSV header).

    ``frame_size`` (height, width) and ``n_frames`` override seqinfo.ini and the rows.
    """
    return _read(path, frame_size, n_frames, ground_truth=False)


def read_ground_truth(
    path: str | os.PathLike[str],
    frame_size: tuple[int, int] | None = None,
    n_frames: int | None = None,
) -> TrackFile:
    """Ground truth, MOTChallenge (rows with consider flag 0 in column 7 dropped) or CSV."""
    return _read(path, frame_size, n_frames, ground_truth=True)


def read_operating_points(path: str | os.PathLike[str], n_frames: int) -> np.ndarray:
    """(n_frames, 2) float64 (P_D, clutter rate) of frames 1..n_frames from an operating-point
    CSV (module docstring); frames after n_frames are ignored. A missing or repeated frame
    or a value out of range is an error naming the file, line and column."""
    path = Path(path)
    lines, numbers = _data_lines(path, "frame")
    names = tuple(name.strip().lower() for name in lines[0].split(","))
    for name in OPERATING_POINT_COLUMNS:
        if name not in names:
            raise _fail(
                path,
                int(numbers[0]),
                name,
                f"missing from the header; an operating-point file needs columns "
                f"{', '.join(OPERATING_POINT_COLUMNS)}",
            )
    if len(lines) == 1:
        raise _fail(path, int(numbers[0]) + 1, None, "the file has a header but no frame rows")
    lines, numbers = lines[1:], numbers[1:]
    _width(path, lines, numbers, names, len(names))
    cells = _cells(lines, len(names))
    frame, p_detect, rate = (
        _numbers(path, cells[:, names.index(name)], numbers, name)
        for name in OPERATING_POINT_COLUMNS
    )
    frame = _integers(path, frame, numbers, "frame", 1)
    for name, values, bad, allowed in (
        ("p_detect", p_detect, (p_detect <= 0) | (p_detect > 1), "in (0, 1]"),
        ("clutter_rate", rate, rate < 0, ">= 0"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(path, int(numbers[i]), name, f"{values[i]:g} must be {allowed}")
    keep = np.flatnonzero(frame <= n_frames)
    keep = keep[np.argsort(frame[keep], kind="stable")]  # by frame, then line
    repeated = np.flatnonzero(np.diff(frame[keep]) == 0)
    if repeated.size:
        i = int(keep[repeated[0] + 1])
        raise _fail(path, int(numbers[i]), "frame", f"frame {frame[i]} has a row already")
    gap = np.flatnonzero(frame[keep] != np.arange(1, keep.size + 1))
    if gap.size or keep.size < n_frames:
        missing = int(gap[0]) + 1 if gap.size else keep.size + 1
        raise _fail(
            path,
            None,
            "frame",
            f"frame {missing} has no row; give one for every frame 1 to {n_frames}",
        )
    out = np.column_stack([p_detect[keep], rate[keep]])
    return out


_WRITE_BLOCK = 65_536  # rows written at a time


def write_scored(
    track_file: TrackFile,
    p_persistent: np.ndarray,
    confirmed: np.ndarray,
    out: str | os.PathLike[str],
) -> Path:
    """``out`` (a file, or a folder to write the input's file name into): every row of
    ``track_file`` in input order with ``p_persistent`` and ``confirmed`` (0/1) appended."""
    p_persistent = np.asarray(p_persistent, dtype=np.float64)
    confirmed = np.asarray(confirmed, dtype=bool)
    n = len(track_file.lines)
    if p_persistent.shape != (n,) or confirmed.shape != (n,):
        raise ValueError(
            f"write_scored needs one p_persistent and one confirmed per row ({n}), got "
            f"{p_persistent.shape} and {confirmed.shape}"
        )
    out = Path(out)
    if out.is_dir():
        out = out / track_file.path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            if track_file.header is not None:
                stream.write(f"{track_file.header},{','.join(SCORE_COLUMNS)}\n")
            for start in range(0, n, _WRITE_BLOCK):  # the output is never whole in memory
                stop = start + _WRITE_BLOCK
                block = zip(
                    track_file.lines[start:stop],
                    p_persistent[start:stop].tolist(),
                    confirmed[start:stop].tolist(),
                    strict=True,
                )
                stream.write("".join(f"{line},{p:.6f},{int(c)}\n" for line, p, c in block))
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


def write_points(path: str | os.PathLike[str], table: np.ndarray) -> Path:
    """A CSV of point rows (``CSV_REQUIRED``: frame, id, x, y; no boxes) from an (N, 4) table,
    the form point tracks and their ground truth are read back in and matched by distance."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(CSV_REQUIRED)] + [
        f"{int(frame)},{int(ident)},{x:.3f},{y:.3f}" for frame, ident, x, y in table
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_seqinfo(
    folder: str | os.PathLike[str], name: str, frame_size: tuple[int, int], n_frames: int
) -> Path:
    """MOTChallenge's ``seqinfo.ini`` for a sequence: its name, frame size and length."""
    height, width = frame_size
    ini = Path(folder) / "seqinfo.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.write_text(
        f"[Sequence]\nname={name}\nseqLength={n_frames}\nimWidth={width}\nimHeight={height}\n",
        encoding="utf-8",
    )
    return ini
