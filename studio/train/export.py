"""Export a trained model to ONNX with ultralytics' exporter, and check the file against PyTorch.

The parity check feeds the same letterboxed validation images to the PyTorch model and to the ONNX file
in onnxruntime and reports the largest difference of the raw boxes (pixels of the network input) and class
scores. ultralytics' graph simplifier is off: it needs onnxslim, which ultralytics would pip-install at run
time; onnx and onnxruntime are declared dependencies, so the exporter never installs anything.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.db.project import Project
from studio.io.media import read_image
from studio.jobs.predict import trained_model_weights
from studio.models.offline import configure_ultralytics

PARITY_TOLERANCE = 1e-3
PARITY_IMAGES = 16
"""At most this many validation images are compared: enough to catch a wrong export, quick on a CPU."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    size_bytes: int
    images: int
    max_box_diff: float
    max_score_diff: float
    tolerance: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.images > 0 and max(self.max_box_diff, self.max_score_diff) <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "ok": self.ok}


@contextlib.contextmanager
def _logs_on_stderr() -> Iterator[None]:
    """ultralytics logs on stdout, which `--json` keeps for its document: send its handlers to stderr."""
    from ultralytics.utils import LOGGER

    handlers = [h for h in LOGGER.handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(sys.stderr) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


def _as_rows(output: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, 4), scores (N, classes)) from one image's raw output, channels first (YOLO) or last (RT-DETR)."""
    if output.shape[0] < output.shape[1] and output.shape[0] >= 4 + classes:
        output = output.T
    return output[:, :4], output[:, 4 : 4 + classes]


def export_onnx(project: Project, name: str, *, out: Path | None = None) -> ExportReport:
    """Write NAME's weights as ONNX (beside them, or to `out`) and measure torch/onnxruntime parity."""
    model = project.find_trained_model(name)
    weights = trained_model_weights(project, model)
    configure_ultralytics()
    import onnxruntime
    import torch
    import ultralytics
    from ultralytics.data.augment import LetterBox

    started = time.monotonic()
    loaded = getattr(ultralytics, "RTDETR" if model.plugin == "rtdetr" else "YOLO")(str(weights))
    imgsz = int(model.params.get("imgsz") or 640)
    try:
        with _logs_on_stderr():
            exported = Path(loaded.export(format="onnx", imgsz=imgsz, simplify=False, dynamic=False, device="cpu", verbose=False))
    except Exception as exc:  # the exporter raises many types (missing operator, bad opset, ...)
        raise StudioError(f"ONNX export of {name} failed ({type(exc).__name__}: {exc})") from exc
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), out)
        exported = out
    net = ultralytics.YOLO(str(weights)).model if model.plugin != "rtdetr" else loaded.model
    net = net.float().eval()
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    classes = len(model.params.get("labels") or net.names)
    letterbox = LetterBox((imgsz, imgsz), auto=False)
    val_images = [m for m in map(project.get_media, model.split.get("val") or []) if m.kind == "image"]
    box_diff = score_diff = 0.0
    for media in val_images[:PARITY_IMAGES]:
        image = letterbox(image=read_image(project.resolve(media)))
        tensor = np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        with torch.no_grad():
            reference = net(torch.from_numpy(tensor))
        reference = (reference[0] if isinstance(reference, list | tuple) else reference)[0].numpy()
        candidate = session.run(None, {input_name: tensor})[0][0]
        (ref_boxes, ref_scores), (onnx_boxes, onnx_scores) = _as_rows(reference, classes), _as_rows(candidate, classes)
        box_diff = max(box_diff, float(np.abs(ref_boxes - onnx_boxes).max()))
        score_diff = max(score_diff, float(np.abs(ref_scores - onnx_scores).max()))
    return ExportReport(
        path=exported, size_bytes=exported.stat().st_size, images=min(len(val_images), PARITY_IMAGES),
        max_box_diff=box_diff, max_score_diff=score_diff, tolerance=PARITY_TOLERANCE,
        seconds=round(time.monotonic() - started, 3),
    )
