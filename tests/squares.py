"""Generated detection data a tiny YOLO learns in seconds: white squares on dark noise, two per image.

Shared by the tests that need a model that really works (prediction end to end, training, ONNX export).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from studio.core.shapes import Box

IMAGE_SIZE = 64
FAST_RECIPE = {
    "optimizer": "Adam", "lr0": 0.01, "warmup_epochs": 1, "amp": False, "mosaic": 0.0, "close_mosaic": 0,
    "hsv_h": 0, "hsv_s": 0, "hsv_v": 0, "scale": 0.0, "translate": 0.0,
}
"""ultralytics training settings under which the tiny model learns the squares in a few dozen epochs."""


def square_images(folder: Path, count: int, *, seed: int) -> dict[str, list[Box]]:
    """`count` 64x64 dark-noise images with two white squares each (one per half); returns the true boxes."""
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[Box]] = {}
    for i in range(count):
        image = rng.integers(0, 60, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        boxes = []
        for half in range(2):
            side = int(rng.integers(12, 22))
            x = int(rng.integers(0, IMAGE_SIZE // 2 - side)) + half * IMAGE_SIZE // 2
            y = int(rng.integers(0, IMAGE_SIZE - side))
            image[y : y + side, x : x + side] = 255
            boxes.append(Box(x, y, x + side, y + side))
        cv2.imwrite(str(folder / f"{i}.png"), image)
        truth[f"{i}.png"] = boxes
    return truth


def tiny_yolo_config(path: Path, *, classes: int = 1) -> Path:
    """A YOLO11 config scaled down to 1/8 of the nano width, written to `path` (its name sets scale "t")."""
    import ultralytics

    base = Path(ultralytics.__file__).parent / "cfg" / "models" / "11" / "yolo11.yaml"
    config = re.sub(r"scales:.*?\n(?=\S)", "scales:\n  t: [0.33, 0.125, 256]\n", base.read_text(), flags=re.S)
    path.write_text(config.replace("nc: 80", f"nc: {classes}"))
    return path
