"""Training overhead: `studio train` (dataset export from the project, a spawned worker process, progress
and history stored per epoch, weights registered with their sha256) vs a plain `YOLO(cfg).train()` on the
same exported data with the same settings.

The plain run is a fresh Python process that imports ultralytics and trains, as `yolo train` would; Studio's
worker pays the same import. Both train from scratch on white squares on noise (tests/squares.py), on the CPU.
Default: a 1/8-width YOLO11 on 40 images of 64 px for 10 epochs (about a minute on 2 cores); --full: YOLO11n
on 80 images for 10 epochs. The validation run Studio makes after training is timed apart and not counted.

    .venv/bin/python bench/train_overhead.py [--full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from squares import FAST_RECIPE, IMAGE_SIZE, square_images, tiny_yolo_config

PLAIN = """
from ultralytics import YOLO
YOLO({model!r}).train(data={data!r}, project={project!r}, name="plain", exist_ok=True, **{settings!r})
"""


def main() -> None:
    # imported here, not at the top: the spawned worker re-imports this script, as it imports `studio` for the CLI
    from studio.core.types import Annotation
    from studio.db import Project
    from studio.io.media import add_paths
    from studio.models.offline import configure_ultralytics
    from studio.train.dataset import SplitChoice, build_training_set
    from studio.train.detector import TrainOptions, train_model, validation_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="YOLO11n on 80 images")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    configure_ultralytics()
    count = 80 if args.full else 40
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        project = Project.create(root)
        truth = square_images(root / "images", count, seed=0)
        media = add_paths(project, [root / "images"]).added
        label = project.ensure_label("square").id
        project.add_annotations([Annotation(m.id, label, box) for m in media for box in truth[m.name]])
        model = "yolo11n.yaml" if args.full else str(tiny_yolo_config(Path(tmp) / "yolo11t.yaml"))
        settings = {"epochs": args.epochs, "imgsz": IMAGE_SIZE, "batch": 8, "device": "cpu", "workers": 0, "seed": 0,
                    "plots": False, "verbose": False, **FAST_RECIPE}
        data = build_training_set(project, Path(tmp) / "plain-data", choice=SplitChoice(0.8, 0))

        started = time.perf_counter()
        script = PLAIN.format(model=model, data=str(data.data_yaml), project=str(Path(tmp) / "runs"), settings=settings)
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
        plain = time.perf_counter() - started

        options = TrainOptions(model=model, epochs=args.epochs, imgsz=IMAGE_SIZE, batch=8, device="cpu", workers=0,
                               overrides={k: v for k, v in settings.items() if k not in TrainOptions.__dataclass_fields__
                                          and k not in ("plots", "verbose")})
        started = time.perf_counter()
        result = train_model(project, options, validate=False)
        studio = time.perf_counter() - started

        started = time.perf_counter()
        validation_run(project, result.model, result.model.split["val"])
        validation = time.perf_counter() - started
        project.close()
    print(f"{count} images of {IMAGE_SIZE} px, {args.epochs} epochs, {Path(model).name}, CPU")
    print(f"plain YOLO.train() in a fresh process: {plain:.1f} s")
    print(f"studio train (export, worker, history, registration): {studio:.1f} s")
    print(f"validation run after training (not counted): {validation:.1f} s")
    print(f"ratio={plain / studio:.2f}")


if __name__ == "__main__":
    main()
