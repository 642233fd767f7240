"""Detection throughput: plain ultralytics `model.predict` vs Studio's `run_detection` on the same images.

Both run the same YOLO11n (random init: no weights can be downloaded here, and speed does not depend on
the weights) on the same image files, in batches of 8, at the same confidence. Studio's time includes what
the plain call does not: reading media through the project, clipping, label lookup and writing every
prediction to the database. Default: 60 images of 320x240 (under a minute on 2 cores); --full: 200.
A random-init model finds nothing at the default confidence 0.05; `--conf 0` keeps its 300 boxes per image,
the worst case for Studio's database writes.

    .venv/bin/python bench/detect_throughput.py [--full] [--conf C]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from studio_plugins.ultralytics_detect import _ultralytics

from studio.db import Project
from studio.io.media import add_paths
from studio.jobs.predict import run_detection

MODEL, BATCH = "yolo11n.yaml", 8


def make_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        image = rng.integers(0, 80, (240, 320, 3), dtype=np.uint8)
        x, y = rng.integers(0, 250), rng.integers(0, 170)
        image[y : y + 60, x : x + 60] = 255
        path = folder / f"{i:04d}.jpg"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="200 images instead of 60")
    parser.add_argument("--conf", type=float, default=0.05, help="confidence threshold (default 0.05)")
    args = parser.parse_args()
    count, conf = (200 if args.full else 60), args.conf
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp) / "images", count)

        model = _ultralytics().YOLO(MODEL)
        model.predict([str(paths[0])], conf=conf, device="cpu", verbose=False)  # warm-up: fuse, first call
        started = time.perf_counter()
        plain = 0
        for i in range(0, count, BATCH):
            results = model.predict([str(p) for p in paths[i : i + BATCH]], conf=conf, device="cpu", verbose=False)
            plain += sum(len(r.boxes) for r in results)
        reference = time.perf_counter() - started

        with Project.create(Path(tmp) / "project") as project:
            media = add_paths(project, paths).added
            run_detection(project, "yolo", weights=MODEL, device="cpu", media_ids=[media[0].id], conf=conf)  # warm-up
            started = time.perf_counter()
            run = run_detection(project, "yolo", weights=MODEL, device="cpu", conf=conf, batch_size=BATCH)
            studio = time.perf_counter() - started

    print(f"images: {count} at 320x240, {MODEL} (random init), batch {BATCH}, conf {conf}, CPU")
    print(f"plain ultralytics predict: {reference:6.2f} s  {count / reference:6.1f} images/s  ({plain} boxes)")
    print(f"studio run_detection:      {studio:6.2f} s  {count / studio:6.1f} images/s  "
          f"({run.stats['predictions']} predictions stored)")
    print(f"ratio={reference / studio:.2f}")


if __name__ == "__main__":
    main()
