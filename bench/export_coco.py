"""COCO export speed: Studio's export_dataset (from a project database) vs supervision's as_coco.

Both write the same boxes on the same images. Studio's time runs from its SQLite project to the file, as
`studio export` does; supervision's from numpy arrays to the file (building sv.Detections and the
DetectionDataset, then as_coco), with its fastest path: images held in memory (zero-copy arrays of the
right shape), so it reads no file headers.

    .venv/bin/python bench/export_coco.py         # 3,000 images / 30,000 boxes (under a minute)
    .venv/bin/python bench/export_coco.py --full  # 10,000 images / 100,000 boxes

Each export runs 3 times; the best wall time counts (the machine may be shared). CPU times are shown
too. Last line: ratio=R, R = supervision time / Studio time (higher is better for Studio).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studio.core.shapes import Box
from studio.core.types import Annotation, MediaInfo
from studio.db.project import Project
from studio.io.formats.transfer import export_dataset

WIDTH, HEIGHT = 640, 480
LABELS = [f"class{i}" for i in range(10)]


def random_boxes(images: int, per_image: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images, per_image, 4) xyxy boxes inside a 640x480 image, and their class ids."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [WIDTH - 50, HEIGHT - 50], size=(images, per_image, 2))
    wh = rng.uniform(2, 50, size=(images, per_image, 2))
    return np.concatenate([xy, xy + wh], axis=-1), rng.integers(0, len(LABELS), size=(images, per_image))


def build_project(root: Path, boxes: np.ndarray, classes: np.ndarray) -> Project:
    project = Project.create(root)
    infos = [MediaInfo(str(root / f"img{i:06d}.jpg"), "image", WIDTH, HEIGHT, 1, 0) for i in range(len(boxes))]
    media = project.add_media(infos)
    label_ids = [project.ensure_label(name).id for name in LABELS]
    project.add_annotations(
        Annotation(media_id=m.id, label_id=label_ids[c], shape=Box(*map(float, box)))
        for m, image_boxes, image_classes in zip(media, boxes, classes, strict=True)
        for box, c in zip(image_boxes, image_classes, strict=True)
    )
    return project


REPEATS = 3


def best_of(run: Callable[[], object]) -> tuple[float, float]:
    """(best wall time, CPU time of that run) over REPEATS runs."""
    timings = []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(timings)


def studio_export(project: Project, out: Path) -> tuple[float, float]:
    return best_of(lambda: export_dataset(project, "coco", out, copy_images=False))


def supervision_export(root: Path, boxes: np.ndarray, classes: np.ndarray, out: Path) -> tuple[float, float]:
    import supervision as sv

    pixels = np.broadcast_to(np.zeros((1, 1, 3), dtype=np.uint8), (HEIGHT, WIDTH, 3))  # shape only, no memory
    paths = [str(root / f"img{i:06d}.jpg") for i in range(len(boxes))]
    warnings.filterwarnings("ignore", message=".*Dict.*deprecated")  # in-memory images: its fastest path

    def export() -> None:  # from arrays to file, as Studio goes from its database to file
        dataset = sv.DetectionDataset(
            classes=LABELS,
            images=dict.fromkeys(paths, pixels),
            annotations={p: sv.Detections(xyxy=b, class_id=c) for p, b, c in zip(paths, boxes, classes, strict=True)},
        )
        dataset.as_coco(annotations_path=str(out / "annotations.json"))

    return best_of(export)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="10,000 images / 100,000 boxes")
    args = parser.parse_args()
    images = 10_000 if args.full else 3_000
    boxes, classes = random_boxes(images, 10)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        start = time.perf_counter()
        project = build_project(tmp_path / "project", boxes, classes)
        print(f"setup: project with {images} images / {boxes.shape[0] * boxes.shape[1]} boxes in {time.perf_counter() - start:.1f} s")
        studio_time, studio_cpu = studio_export(project, tmp_path / "studio")
        project.close()
        sv_time, sv_cpu = supervision_export(tmp_path / "project", boxes, classes, tmp_path / "sv")
        counts = [
            len(json.loads((tmp_path / name / "annotations.json").read_text())["annotations"]) for name in ("studio", "sv")
        ]
        assert counts[0] == counts[1] == boxes.shape[0] * boxes.shape[1], counts
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print(f"studio export_dataset (coco, no images): {studio_time:.3f} s wall, {studio_cpu:.3f} s cpu")
    print(f"supervision DetectionDataset.as_coco:     {sv_time:.3f} s wall, {sv_cpu:.3f} s cpu")
    print(f"ratio={sv_time / studio_time:.2f}")


if __name__ == "__main__":
    main()
