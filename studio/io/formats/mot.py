"""MOTChallenge `gt.txt`: `frame, id, left, top, width, height, conf, class, visibility`, frames from 1.

Read: every row is a box keyframe of the track `id` (frame - 1 in Studio's 0-based frames); frames without a
row, between rows or after the last, are outside ranges (the object is absent); `class` names
the label through a `labels.txt` beside the file (one name per line, class 1 first), else `class_<n>`, or
`object` when the column is absent (MOT15-style 7-column files) or -1; `conf` 0 (MOT's "ignore this
object") and `visibility` are kept as track attributes. Write: one row per frame where a track is
present, interpolated between keyframes (MOT has no keyframes), class = label index + 1, labels.txt beside.

The parser is written here rather than taken from `trackers.load_mot_file`: that one drops the
visibility column, and importing it costs seconds.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

from studio.core.errors import FormatError, InvalidShapeError
from studio.core.shapes import Box
from studio.core.tracks import normalize_ranges
from studio.io.formats.base import format_number, number, skip_or_raise
from studio.io.formats.video_tracks import TrackData, VideoAnnotations, track_frames

LABELS_FILE = "labels.txt"


def read(path: Path, *, skip_bad: bool = False) -> VideoAnnotations:
    gt = path / "gt" / "gt.txt" if path.is_dir() and (path / "gt" / "gt.txt").is_file() else path
    if gt.is_dir():
        gt = gt / "gt.txt"
    if not gt.is_file():
        raise FormatError(f"{path}: no gt.txt here")
    names_file = gt.parent / LABELS_FILE
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()] if names_file.is_file() else []
    data = VideoAnnotations(None, None, None, list(names), [])
    rows: dict[int, list[tuple[int, Box, float, float | None, str]]] = defaultdict(list)
    for number_, line in enumerate(gt.read_text(encoding="utf-8", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{gt}: line {number_}"
        try:
            fields = [field.strip() for field in line.split(",")]
            if len(fields) < 6:
                raise FormatError(f"expected at least 6 comma-separated values, got {len(fields)}")
            frame, track_id = (int(number(v, name)) for v, name in zip(fields[:2], ("frame", "id"), strict=True))
            left, top, width, height = (number(v, "box") for v in fields[2:6])
            conf = number(fields[6], "conf") if len(fields) > 6 else 1.0
            cls = int(number(fields[7], "class")) if len(fields) > 7 else -1
            visibility = number(fields[8], "visibility") if len(fields) > 8 else None
            if frame < 1:
                raise FormatError(f"frame {frame}: MOT frames start at 1")
            box = Box.from_xywh(left, top, width, height)
        except (FormatError, InvalidShapeError) as exc:
            skip_or_raise(data.problems, f"{where}: {exc}", skip_bad)
            continue
        label = names[cls - 1] if 1 <= cls <= len(names) else ("object" if cls < 0 else f"class_{cls}")
        rows[track_id].append((frame - 1, box, conf, visibility, label))
    for track_id, entries in sorted(rows.items()):
        entries.sort(key=lambda entry: entry[0])
        frames = [entry[0] for entry in entries]
        if len(set(frames)) != len(frames):
            skip_or_raise(data.problems, f"{gt}: track {track_id} has two rows on one frame", skip_bad)
            continue
        attributes: dict[str, object] = {"mot_id": track_id}
        if any(entry[2] == 0 for entry in entries):
            attributes["ignored"] = True  # MOT's conf 0 in gt: not counted by the benchmark
        visible = [entry[3] for entry in entries if entry[3] is not None]
        if visible:
            attributes["visibility"] = round(sum(visible) / len(visible), 4)
        # a frame with no row is a frame the object is absent from (MOT marks no gap otherwise)
        gaps = [(a + 1, b - 1) for a, b in itertools.pairwise(frames) if b - a > 1]
        data.tracks.append(TrackData(entries[0][4], [(e[0], e[1]) for e in entries], normalize_ranges(gaps),
                                     attributes, last_frame=frames[-1]))
    data.labels = list(dict.fromkeys([*names, *(t.label for t in data.tracks)]))
    return data


def write(data: VideoAnnotations, out: Path) -> None:
    frame_count = data.frame_count or 1 + max((f for t in data.tracks for f, _ in t.keyframes), default=0)
    lines = []
    for index, track in enumerate(data.tracks, start=1):
        cls = data.labels.index(track.label) + 1
        for frame, shape in track_frames(track, frame_count):
            x, y, w, h = shape.bbox()
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                continue
            values = (frame + 1, index, *(format_number(v) for v in (x, y, w, h)), 1, cls, 1)
            lines.append(",".join(str(v) for v in values))
    lines.sort(key=lambda line: tuple(int(v) for v in line.split(",")[:2]))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out.parent / LABELS_FILE).write_text("\n".join(data.labels) + "\n", encoding="utf-8")
