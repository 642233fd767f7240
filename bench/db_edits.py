"""How fast an edited annotation is saved, and how fast a big project opens.

Saving: p50/p95 of `Project.update_annotation` (one edit = one durable transaction) on a project holding
many annotations, against a raw sqlite3 UPDATE of the same columns of the same rows with the same pragmas
(WAL, synchronous=FULL). Goal: p95 < 5 ms with FULL. NORMAL is measured too and printed apart; Studio
itself always runs with FULL.

Opening: `Project.open` + what the window shows first (counts, first page of media, annotations per
label, the first image's annotations). Goal: < 1 s for
1M annotations (`--full`); the default size runs in well under a minute on 2 cores.

Last line: ratio = raw sqlite3 p50 / Studio p50 for saving an edit with FULL (higher is better).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

from studio.core import geometry
from studio.core.shapes import Box
from studio.core.types import Annotation, MediaInfo
from studio.db import Project
from studio.db.schema import AnnotationRow


def build(root: Path, *, annotations: int, per_image: int = 20) -> None:
    """A project of `annotations` boxes spread over images, written as one import."""
    images = max(1, annotations // per_image)
    with Project.create(root) as project, project.transaction():
        media = project.add_media(
            [MediaInfo(str(root / f"img{i:07d}.jpg"), "image", 1920, 1080, 1, 1) for i in range(images)]
        )
        labels = [project.ensure_label(f"class{i}").id for i in range(20)]

        def boxes() -> Iterator[Annotation]:
            rng = random.Random(0)
            for i in range(annotations):
                x, y = rng.uniform(0, 1800), rng.uniform(0, 1000)
                yield Annotation(media[i % images].id, labels[i % 20], Box(x, y, x + 60, y + 40))

        project.add_annotations(boxes(), batch_size=20_000)


def replicate(root: Path, *, times: int) -> None:
    """Copy every annotation `times - 1` more times with SQL: a 1M project in seconds, not the minutes an
    import through Project takes on 2 busy cores (what matters here is the size of the tables)."""
    columns = ", ".join(c.name for c in AnnotationRow.__table__.columns if c.name != "id")
    with sqlite3.connect(root / "studio.db") as conn:
        last = conn.execute("SELECT max(id) FROM annotations").fetchone()[0]
        for _ in range(times - 1):
            conn.execute(f"INSERT INTO annotations ({columns}) SELECT {columns} FROM annotations WHERE id <= ?", (last,))
    conn.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples), cuts[18]  # p50, p95


class StudioEditor:
    """Saves edits through Project, as the GUI does (it holds the annotations it shows)."""

    def __init__(self, root: Path, ids: list[int], *, synchronous: str) -> None:
        self.project = Project.open(root)
        if synchronous != "FULL":
            self.project.engine.dispose()  # connections made from now on get the weaker setting after Studio's

            @event.listens_for(self.project.engine, "connect")
            def _weaken(dbapi_connection: sqlite3.Connection, _record: object) -> None:
                dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")

        self.loaded = {ann_id: self.project.get_annotation(ann_id) for ann_id in ids}

    def save(self, ann_id: int) -> None:
        ann = self.loaded[ann_id]
        box = ann.shape
        assert isinstance(box, Box)
        self.loaded[ann_id] = self.project.update_annotation(
            dataclasses.replace(ann, shape=Box(box.x1 + 1, box.y1, box.x2 + 1, box.y2))
        )

    def close(self) -> None:
        self.project.close()


class RawEditor:
    """The same edit as plain SQL on one sqlite3 connection: the floor any layer above adds time to."""

    def __init__(self, root: Path, ids: list[int], *, synchronous: str) -> None:
        self.conn = sqlite3.connect(root / "studio.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        query = "SELECT x, y, x + w, y + h FROM annotations WHERE id = ?"
        self.shapes = {ann_id: Box(*self.conn.execute(query, (ann_id,)).fetchone()) for ann_id in ids}

    def save(self, ann_id: int) -> None:
        box = self.shapes[ann_id]
        moved = Box(box.x1 + 1, box.y1, box.x2 + 1, box.y2)
        x, y, w, h = moved.bbox()
        self.conn.execute("BEGIN")
        self.conn.execute(
            "UPDATE annotations SET geometry = ?, x = ?, y = ?, w = ?, h = ?, area = ?, updated_at = ? WHERE id = ?",
            (json.dumps(moved.to_json()), x, y, w, h, geometry.area(moved), datetime.now(UTC).isoformat(" "), ann_id),
        )
        self.conn.execute("COMMIT")
        self.shapes[ann_id] = moved

    def close(self) -> None:
        self.conn.close()


def time_edits(root: Path, ids: list[int], *, synchronous: str) -> tuple[list[float], list[float]]:
    """Milliseconds per saved edit, (raw, studio), taken in turns so both see the same disk and load."""
    raw, studio = RawEditor(root, ids, synchronous=synchronous), StudioEditor(root, ids, synchronous=synchronous)
    times: tuple[list[float], list[float]] = ([], [])
    try:
        for ann_id in ids:
            for editor, samples in zip((raw, studio), times, strict=True):
                start = time.perf_counter()
                editor.save(ann_id)
                samples.append((time.perf_counter() - start) * 1e3)
    finally:
        raw.close()
        studio.close()
    return times


def time_open(root: Path) -> float:
    start = time.perf_counter()
    with Project.open(root) as project:  # what the window asks for when it opens a project
        project.counts()
        project.count_media()
        first_page = project.list_media(limit=100)
        project.label_counts()
        project.annotations(first_page[0].id)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000,000 annotations (default 100,000)")
    parser.add_argument("--edits", type=int, default=200, help="edits timed per setting")
    args = parser.parse_args()
    size = 1_000_000 if args.full else 100_000

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        start = time.perf_counter()
        build(root, annotations=min(size, 100_000))
        if size > 100_000:
            replicate(root, times=size // 100_000)
        print(f"built a project of {size:,} annotations in {time.perf_counter() - start:.1f} s")

        opens = [time_open(root) for _ in range(3)]
        print(f"open + counts + first page + label counts + first image: best {min(opens) * 1e3:.0f} ms, first {opens[0] * 1e3:.0f} ms "
              f"(goal < 1000 ms at 1M)")

        ids = random.Random(1).sample(range(1, size + 1), args.edits)
        results = {}
        for synchronous in ("FULL", "NORMAL"):
            raw_times, studio_times = time_edits(root, ids, synchronous=synchronous)
            raw, ours = percentiles(raw_times), percentiles(studio_times)
            results[synchronous] = (raw, ours)
            print(f"save one edit, synchronous={synchronous:6}: studio p50 {ours[0]:.2f} ms p95 {ours[1]:.2f} ms | "
                  f"raw sqlite3 p50 {raw[0]:.2f} ms p95 {raw[1]:.2f} ms")
        full_p95 = results["FULL"][1][1]
        print(f"goal p95 < 5 ms with FULL: {'met' if full_p95 < 5 else 'NOT met'} ({full_p95:.2f} ms)")
        (raw_p50, _), (ours_p50, _) = results["FULL"]
        print(f"ratio={raw_p50 / ours_p50:.2f}")


if __name__ == "__main__":
    main()
