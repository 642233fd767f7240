"""What a model plugin is: metadata plus one of a few typed capabilities.

A plugin module in plugins/ exposes a `PluginSpec` through the `studio.plugins` entry-point group; its
`load(weights=..., device=...)` returns an object implementing one of the protocols below. Images are
numpy arrays, BGR uint8 (H, W, 3) as OpenCV reads them; coordinates are pixels (x, y).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
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


RegionView = Literal["crop", "draw"]
"""How a region is shown to a vision-language model: the crop with some context around it, or the whole
image with the box drawn on it (better when the answer depends on the surroundings)."""


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One earlier question and its answer: follow-up questions carry the conversation so far."""

    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class AskParams:
    """Generation and region settings, stored with every answer so it can be reproduced."""

    temperature: float = 0.0
    """0 is greedy decoding (the same answer every time); above 0 samples."""
    seed: int | None = None
    max_tokens: int = 256
    region_view: RegionView = "crop"
    context: float = 0.25
    """Crop padding on each side, as a fraction of the region's width and height."""

    def __post_init__(self) -> None:
        from studio.core.errors import StudioError

        if not 0.0 <= self.temperature <= 2.0:
            raise StudioError(f"temperature must lie in 0..2, got {self.temperature}")
        if self.max_tokens < 1:
            raise StudioError(f"max tokens must be 1 or more, got {self.max_tokens}")
        if self.region_view not in ("crop", "draw"):
            raise StudioError(f"region view must be crop or draw, got {self.region_view!r}")
        if not 0.0 <= self.context <= 4.0:
            raise StudioError(f"region context must lie in 0..4 (a fraction of the box), got {self.context}")


DEFAULT_ASK_PARAMS = AskParams()


@runtime_checkable
class VisionQA(Protocol):
    """Answers a question about an image (or a region of it), streaming the answer in pieces.

    `ask` returns a generator: closing it (or dropping it after leaving a for loop) stops the work, the
    model's generation or the HTTP stream, within one token. `history` holds the earlier turns of the same
    conversation, oldest first; the image goes with the first question. `model_name` is what gets recorded.
    """

    model_name: str

    def ask(
        self,
        image: np.ndarray,
        question: str,
        *,
        region: Box | None = None,
        history: Sequence[ChatTurn] = (),
        params: AskParams = DEFAULT_ASK_PARAMS,
    ) -> Generator[str, None, None]: ...
