"""What a model plugin is: metadata plus one of a few typed capabilities.

A plugin module in plugins/ exposes a `PluginSpec` through the `studio.plugins` entry-point group; its
`load(weights=..., device=...)` returns an object implementing one of the protocols below. Images are
numpy arrays, BGR uint8 (H, W, 3) as OpenCV reads them; coordinates are pixels (x, y).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box

Task = Literal["detect", "segment", "embed", "ask"]
Device = Literal["cpu", "cuda", "mps"]


@dataclass(frozen=True, slots=True)
class WeightsFile:
    """A checkpoint a plugin can use: where it comes from and how to check it."""

    name: str
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    description: str = ""


@dataclass(frozen=True)
class PluginSpec:
    """What Studio knows about a plugin before importing any heavy library.

    `load` imports the model library and builds the model; it is called only when the model is used.
    """

    id: str
    family: str
    task: Task
    title: str
    load: Callable[..., Any]
    weights: tuple[WeightsFile, ...] = ()
    devices: tuple[Device, ...] = ("cpu",)
    needs_weights: bool = True
    """False when the plugin runs with no downloaded file at all (Haar cascades, GrabCut)."""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: a box with its class name and confidence, optionally a mask (H, W) bool."""

    box: Box
    label: str
    score: float
    mask: np.ndarray | None = None


@runtime_checkable
class Detector(Protocol):
    """Finds objects. `classes` restricts (closed-set) or defines (open-set, text prompts) the classes.

    A detector whose classes are typed prompts sets an attribute `open_vocabulary = True`; any other
    is asked only for names in `class_names` (see `check_classes`).
    """

    class_names: Sequence[str]

    def detect(
        self, images: Sequence[np.ndarray], *, classes: Sequence[str] | None = None, conf: float = 0.25, iou: float = 0.7
    ) -> list[list[Detection]]: ...


def check_classes(detector: Detector, classes: Sequence[str] | None) -> None:
    """StudioError naming the classes a closed-set detector does not know, before anything runs."""
    if not classes or getattr(detector, "open_vocabulary", False):
        return
    names = list(detector.class_names)
    unknown = [c for c in classes if c not in names]
    if unknown:
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise StudioError(f"this model has no class {', '.join(unknown)} (it knows: {shown})")


@dataclass(frozen=True, slots=True)
class MaskCandidate:
    """One proposed mask (H, W) bool with the model's own estimate of its quality (predicted IoU)."""

    mask: np.ndarray
    score: float


@runtime_checkable
class Segmenter(Protocol):
    """Click segmentation: an expensive `encode` once per image, then cheap `predict` per click."""

    def encode(self, image: np.ndarray) -> Any:
        """Image embedding (whatever the model needs); cached by Studio, so it must be picklable."""
        ...

    def predict(
        self,
        embedding: Any,
        *,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: Box | None = None,
        multimask: bool = True,
    ) -> list[MaskCandidate]:
        """Masks for prompts: points Nx2 (x, y), labels N (1 positive, 0 negative), optional box."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Joint image-text embeddings (CLIP): rows are L2-normalised float32 vectors."""

    dim: int

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class VisionQA(Protocol):
    """Answers a question about an image (or a region of it), streaming the answer in pieces."""

    def ask(self, image: np.ndarray, question: str, *, region: Box | None = None) -> Iterator[str]: ...
