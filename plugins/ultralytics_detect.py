"""Ultralytics detectors: YOLO (v8, 11 and newer, any size), RT-DETR, and open-vocabulary YOLO-World / YOLOE.

A model is an official weights name (downloaded by Studio's weights manager on a user's machine), a local
.pt / .onnx file (e.g. one trained in the project), or a model .yaml (random init: tests, benchmarks).
Nothing reaches the network behind the user's back: before ultralytics is first imported, `configure_ultralytics`
(studio.models.offline) sets YOLO_OFFLINE=1 (no hub, no update checks) unless the user sets STUDIO_ULTRALYTICS_ONLINE=1, points
YOLO_CONFIG_DIR at Studio's data dir, and installs a bundled TTF as the Arial.ttf ultralytics would fetch.

YOLO-World / YOLOE detect the classes typed by the user. Their text embeddings come from a `TextEncoder`
seam: by default ultralytics' own text model (CLIP ViT-B/32 or MobileCLIP, downloaded on first use on a
user's machine: a clear WeightsError when it cannot be), or any encoder passed to `load(text_encoder=...)`,
such as `open_clip_text_encoder()` (the same CLIP architecture; tests use it with random weights). A
missing text model is an error, never a silent fall back to the model's built-in classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.device import use_half
from studio.models.offline import ONLINE_ENV, configure_ultralytics
from studio.models.protocols import Detection, PluginSpec, WeightsFile, check_classes
from studio.models.weights import (
    ULTRALYTICS_CHECKPOINT_GLOBALS,
    WeightsError,
    check_checkpoint_globals,
    resolve_weights,
)

if TYPE_CHECKING:
    import torch

RELEASES = "https://github.com/ultralytics/assets/releases/download/v8.3.0/"

TextEncoder = Callable[[Sequence[str]], "torch.Tensor"]
"""Class names -> (N, D) L2-normalised text embeddings on any device."""


def _ultralytics() -> Any:
    configure_ultralytics()
    import ultralytics

    return ultralytics


def ultralytics_text_encoder(name: str, device: str) -> TextEncoder:
    """ultralytics' own text model ("clip:ViT-B/32", "mobileclip:blt"); its weights download on first use."""
    _ultralytics()
    try:
        from ultralytics.nn.text_model import build_text_model  # imports the `clip` package, absent offline

        model = build_text_model(name, device=device)
    except Exception as exc:  # a missing package or failed download surfaces as many error types
        raise WeightsError(
            f"the text model {name} that turns class prompts into embeddings is not available ({exc}); "
            f"connect once to download it, or set {ONLINE_ENV}=1 if you disabled downloads"
        ) from exc

    def encode(names: Sequence[str]) -> torch.Tensor:
        return model.encode_text(model.tokenize(list(names)))

    return encode


def open_clip_text_encoder(model_name: str = "ViT-B-32", *, pretrained: str | None = None) -> TextEncoder:
    """open_clip's text tower (the same architecture as CLIP ViT-B/32); random weights when `pretrained` is None."""
    import open_clip
    import torch

    model = open_clip.create_model(model_name, pretrained=pretrained).eval()
    tokenizer = open_clip.get_tokenizer(model_name)

    def encode(names: Sequence[str]) -> torch.Tensor:
        with torch.no_grad():
            features = model.encode_text(tokenizer(list(names))).float()
        return features / features.norm(dim=-1, keepdim=True)

    return encode


class UltralyticsDetector:
    """A loaded ultralytics model behind Studio's Detector protocol."""

    def __init__(
        self,
        model: Any,
        *,
        device: str,
        open_vocabulary: bool,
        text_encoder: TextEncoder | None,
        imgsz: int | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.imgsz = imgsz
        """Inference size (ultralytics' default 640 when None); smaller is faster but misses small objects."""
        self.open_vocabulary = open_vocabulary
        self.text_encoder = text_encoder
        self._prompt: tuple[str, ...] | None = None

    @property
    def class_names(self) -> Sequence[str]:
        names = self.model.names
        return list(names.values()) if isinstance(names, dict) else list(names)

    def _class_indices(self, classes: Sequence[str] | None) -> list[int] | None:
        if not classes:
            return None
        check_classes(self, classes)
        names = self.class_names
        return [names.index(c) for c in classes]

    def _set_prompt(self, classes: Sequence[str]) -> None:
        """Point an open-vocabulary model at the typed classes through the text-encoder seam."""
        prompt = tuple(c.strip() for c in classes if c.strip())
        if prompt == self._prompt:
            return
        if self.text_encoder is None:
            text_model = "clip:ViT-B/32" if _is_world(self.model) else getattr(self.model.model, "text_model", "mobileclip:blt")
            self.text_encoder = ultralytics_text_encoder(text_model, self.device)
        import torch

        net = self.model.model
        with torch.no_grad():
            features = self.text_encoder(prompt).detach().float()
            embeddings = features.reshape(1, len(prompt), -1).to(next(net.parameters()).device)
            if _is_world(self.model):
                net.txt_feats = embeddings
                net.model[-1].nc = len(prompt)
                net.names = list(prompt)
                self.model.predictor = None
            else:
                self.model.set_classes(list(prompt), net.model[-1].get_tpe(embeddings))
        self._prompt = prompt

    def detect(
        self, images: Sequence[np.ndarray], *, classes: Sequence[str] | None = None, conf: float = 0.25, iou: float = 0.7
    ) -> list[list[Detection]]:
        import supervision as sv

        indices = None
        if self.open_vocabulary:
            if not classes:
                raise StudioError("an open-vocabulary model needs the classes to look for, e.g. --classes person,car")
            self._set_prompt(classes)
        else:
            indices = self._class_indices(classes)
        options: dict[str, Any] = {"half": True} if use_half(self.device) else {}
        if self.imgsz is not None:
            options["imgsz"] = self.imgsz
        results = self.model.predict(
            list(images), conf=conf, iou=iou, classes=indices, device=self.device, verbose=False,
            batch=max(1, len(images)), **options,
        )
        converted = []
        for result in results:
            found = sv.Detections.from_ultralytics(result)
            height, width = result.orig_shape
            found.xyxy = np.clip(found.xyxy, 0, [width, height, width, height])  # RT-DETR boxes may overhang
            names = found.data.get("class_name", np.array([self.class_names[int(c)] for c in found.class_id]))
            converted.append(
                [
                    Detection(
                        Box(*(float(v) for v in found.xyxy[i])),
                        str(names[i]),
                        float(found.confidence[i]) if found.confidence is not None else 1.0,
                        found.mask[i] if found.mask is not None else None,
                    )
                    for i in range(len(found))
                ]
            )
        return converted


def _is_world(model: Any) -> bool:
    return type(model).__name__ == "YOLOWorld"


def _loader(model_class: str, plugin_id: str, *, open_vocabulary: bool) -> Callable[..., UltralyticsDetector]:
    def load(
        *,
        weights: str | None = None,
        device: str = "cpu",
        text_encoder: TextEncoder | None = None,
        imgsz: int | None = None,
    ) -> UltralyticsDetector:
        spec = next(s for s in SPECS if s.id == plugin_id)
        source = weights or spec.weights[0].name
        if source.endswith((".yaml", ".yml")):
            location = source  # a model config: ultralytics' bundled ones by name, or a local file
        else:
            path = resolve_weights(spec, source)
            if path.suffix == ".pt":
                check_checkpoint_globals(path, allowed_prefixes=ULTRALYTICS_CHECKPOINT_GLOBALS)
            location = str(path)
        cls = getattr(_ultralytics(), model_class)
        try:
            model = cls(location)
        except Exception as exc:  # ultralytics raises many types for a bad file or config name
            raise WeightsError(f"{source} cannot be loaded as a {spec.title} model ({type(exc).__name__}: {exc})") from exc
        return UltralyticsDetector(
            model, device=device, open_vocabulary=open_vocabulary, text_encoder=text_encoder, imgsz=imgsz
        )

    return load


def _official(*names: str) -> tuple[WeightsFile, ...]:
    return tuple(WeightsFile(name, url=RELEASES + name, description="official Ultralytics release") for name in names)


DEVICES = ("cpu", "cuda", "mps")
SPECS = (
    PluginSpec(
        id="yolo", family="ultralytics", task="detect", title="YOLO (v8, 11, newer)",
        load=_loader("YOLO", "yolo", open_vocabulary=False), devices=DEVICES,
        weights=_official("yolo11n.pt", "yolo11s.pt", "yolo11m.pt", "yolo11l.pt", "yolo11x.pt", "yolov8n.pt", "yolov8s.pt"),
    ),
    PluginSpec(
        id="rtdetr", family="ultralytics", task="detect", title="RT-DETR",
        load=_loader("RTDETR", "rtdetr", open_vocabulary=False), devices=DEVICES,
        weights=_official("rtdetr-l.pt", "rtdetr-x.pt"),
    ),
    PluginSpec(
        id="yolo-world", family="ultralytics", task="detect", title="YOLO-World (text prompts)",
        load=_loader("YOLOWorld", "yolo-world", open_vocabulary=True), devices=DEVICES,
        weights=_official("yolov8s-worldv2.pt", "yolov8m-worldv2.pt", "yolov8l-worldv2.pt"),
        options={"text_prompt": True},
    ),
    PluginSpec(
        id="yoloe", family="ultralytics", task="detect", title="YOLOE (text prompts)",
        load=_loader("YOLOE", "yoloe", open_vocabulary=True), devices=DEVICES,
        weights=_official("yoloe-11s-seg.pt", "yoloe-11m-seg.pt", "yoloe-11l-seg.pt"),
        options={"text_prompt": True},
    ),
)
