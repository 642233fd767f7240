"""ONNX detectors run by onnxruntime: YOLO models exported by `studio export-model` (or ultralytics' exporter).

For deployment where PyTorch is too heavy: this plugin needs only onnxruntime, OpenCV and numpy. It runs on
the CPU, or on CUDA when onnxruntime-gpu provides it. Class names and the input size come from the
metadata ultralytics writes into the file. Pre- and post-processing follow ultralytics' (letterbox to the
square input with grey 114 padding, RGB in [0, 1]; per-class NMS), written here with OpenCV because the
point of the plugin is to run without ultralytics and torch.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

import numpy as np

from studio.core.shapes import Box
from studio.models.protocols import Detection, PluginSpec
from studio.models.weights import WeightsError, resolve_weights

PAD_VALUE = 114
MAX_DETECTIONS = 300


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """(1, 3, H, W) float32 RGB input in [0, 1], the scale and the (x, y) padding applied to `image` (BGR)."""
    import cv2

    height, width = image.shape[:2]
    scale = min(size[0] / height, size[1] / width)
    resized_w, resized_h = round(width * scale), round(height * scale)
    pad_x, pad_y = (size[1] - resized_w) / 2, (size[0] - resized_h) / 2
    if (resized_w, resized_h) != (width, height):
        image = cv2.resize(image, (resized_w, resized_h), interpolation=cv2.INTER_LINEAR)
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    bottom, right = round(pad_y + 0.1), round(pad_x + 0.1)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    tensor = image[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), scale, (left, top)


class OnnxDetector:
    """A YOLO detection export behind Studio's Detector protocol."""

    def __init__(self, session: Any) -> None:
        self.session = session
        metadata = session.get_modelmeta().custom_metadata_map
        if metadata.get("task", "detect") != "detect":
            raise WeightsError(f"this ONNX file is a {metadata['task']} model; the onnx plugin runs YOLO detectors")
        try:
            names = ast.literal_eval(metadata["names"])
            imgsz = ast.literal_eval(metadata["imgsz"])
        except (KeyError, ValueError, SyntaxError) as exc:
            raise WeightsError("this ONNX file lacks the class names and input size ultralytics' exporter writes") from exc
        self._names = [names[i] for i in sorted(names)]
        self.input_size = (int(imgsz[0]), int(imgsz[1]))
        self.input_name = session.get_inputs()[0].name

    @property
    def class_names(self) -> Sequence[str]:
        return self._names

    def raw(self, tensor: np.ndarray) -> np.ndarray:
        """The network's output for a letterboxed input: (N, 4 + classes) rows of cx, cy, w, h and scores."""
        output = self.session.run(None, {self.input_name: tensor})[0][0]
        return output.T

    def detect(
        self, images: Sequence[np.ndarray], *, classes: Sequence[str] | None = None, conf: float = 0.25, iou: float = 0.7
    ) -> list[list[Detection]]:
        import cv2

        wanted = None
        if classes:
            from studio.core.errors import StudioError

            unknown = [c for c in classes if c not in self._names]
            if unknown:
                raise StudioError(f"this model has no class {', '.join(unknown)} (it knows: {', '.join(self._names)})")
            wanted = np.array([self._names.index(c) for c in classes])
        results = []
        for image in images:
            tensor, scale, (left, top) = letterbox(image, self.input_size)
            rows = self.raw(tensor)
            scores = rows[:, 4:]
            class_ids = scores.argmax(axis=1)
            best = scores[np.arange(len(rows)), class_ids]
            keep = best >= conf
            if wanted is not None:
                keep &= np.isin(class_ids, wanted)
            boxes, best, class_ids = rows[keep, :4], best[keep], class_ids[keep]
            xywh = np.column_stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 2], boxes[:, 3]])
            kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), best.tolist(), class_ids.tolist(), conf, iou) if len(best) else []
            order = sorted(np.asarray(kept, dtype=int).reshape(-1).tolist(), key=lambda i: -best[i])[:MAX_DETECTIONS]
            height, width = image.shape[:2]
            found = []
            for i in order:
                x, y, w, h = xywh[i]
                x1, y1 = (x - left) / scale, (y - top) / scale
                x2, y2 = x1 + w / scale, y1 + h / scale
                box = Box(float(np.clip(x1, 0, width)), float(np.clip(y1, 0, height)),
                          float(np.clip(x2, 0, width)), float(np.clip(y2, 0, height)))
                found.append(Detection(box, self._names[int(class_ids[i])], float(best[i])))
            results.append(found)
        return results


def load(*, weights: str | None = None, device: str = "cpu") -> OnnxDetector:
    import onnxruntime

    path = resolve_weights(SPECS[0], weights)
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise WeightsError(f"{path} cannot be loaded as an ONNX model ({type(exc).__name__}: {exc})") from exc
    return OnnxDetector(session)


SPECS = (
    PluginSpec(
        id="onnx", family="onnxruntime", task="detect", title="ONNX detector (exported YOLO, onnxruntime)",
        load=load, devices=("cpu", "cuda"),
    ),
)
