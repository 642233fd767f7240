"""Render docs/screenshots/compare.png: the comparison window on the demo project.

The two runs are honest about what they are: "haar-faces" is OpenCV's face cascade run for real (the demo
is labelled person/cat/cup..., so it scores poorly), and "jittered-gt" is the ground truth with its boxes
shifted by a few pixels, some dropped and a false box added (synthetic, named so). No trained detector
is available offline, hence the synthetic second run.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_compare.py [OUT.png]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from studio.core.shapes import Box
from studio.demo import create_demo
from studio.jobs.predict import run_detection
from studio.ui.app import application
from studio.ui.compare_window import CompareWindow


def main(out: Path) -> None:
    project = create_demo(Path(tempfile.mkdtemp()) / "demo")
    haar = run_detection(project, "opencv-haar", run_name="haar-faces")
    jittered = project.create_run("synthetic", name="jittered-gt", params={"jitter_px": 6, "drop": 0.25})
    rng = np.random.default_rng(7)
    predictions = []
    for ann in project.annotations(source="human"):
        if not isinstance(ann.shape, Box) or rng.random() < 0.25:
            continue
        x1, y1, x2, y2 = (v + rng.normal(0, 6) for v in (ann.shape.x1, ann.shape.y1, ann.shape.x2, ann.shape.y2))
        media = project.get_media(ann.media_id)
        box = Box(max(0.0, x1), max(0.0, y1), min(float(media.width), max(x1, x2)), min(float(media.height), max(y1, y2)))
        predictions.append(replace(ann, id=None, run_id=jittered.id, shape=box, score=float(rng.uniform(0.4, 0.95))))
    project.add_annotations(predictions)
    project.finish_run(jittered.id, "complete")

    app = application()
    window = CompareWindow(project, [jittered.id, haar.id])
    window.resize(1500, 860)
    window.show()
    deadline = time.monotonic() + 60
    while window.comparison is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots/compare.png"))
